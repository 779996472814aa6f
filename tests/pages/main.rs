//! The web pages: served with their headers (`web`), and driven in Debian's headless
//! Chromium (`browser`; the appraisal pages in `appraisal`). One test binary so the
//! crate is linked once for both.

#[path = "../support/mod.rs"]
mod support;

mod appraisal;
mod browser;
mod dashboard;
mod dashboard_history;
mod desk;
mod grid;
mod helpers;
mod i18n;
mod intake;
mod live;
mod signin;
mod web;
