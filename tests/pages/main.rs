//! The web pages: served with their headers (`web`), and driven in Debian's headless
//! Chromium (`browser`). One test binary so the crate is linked once for both.

#[path = "../support/mod.rs"]
mod support;

mod browser;
mod web;
