//! The HTTP API over real HTTP, on SQLite and (when configured) PostgreSQL.

#[path = "../support/mod.rs"]
mod support;

mod appraisal;
mod authz;
mod concurrency;
mod dispatch;
mod errors;
mod feed;
mod lifecycle;
mod sla;
