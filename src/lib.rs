//! yiwang (一网): event-sourced ticket dispatch for grid governance and the 12345 hotline.
//!
//! Layout by concern: `store` (the event log), `repo` (read models and reference
//! data: ticket views, contacts, tokens, the organisation), `domain` (the pure ticket aggregate),
//! `sla` (calendar and deadlines), `org` (organisation and catalogue), `auth` (tokens
//! and who may do what), `app` (commands: load, decide, append), `views` (the
//! ticket's JSON and the masking of personal data), `http` (the API), `backup`
//! (export and restore), `cli` (the one binary's subcommands).

pub mod app;
pub mod appraisal;
pub mod attachments;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cpu;
pub mod domain;
pub mod error;
pub mod http;
pub mod import;
pub mod metrics;
pub mod org;
pub mod projections;
pub mod repo;
pub mod sla;
pub mod store;
pub mod verify;
pub mod views;
pub mod web;
