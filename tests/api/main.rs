//! The HTTP API over real HTTP, on SQLite and (when configured) PostgreSQL.

#[path = "../support/mod.rs"]
mod support;

mod appraisal;
mod appraisal_ledger;
mod attachments;
mod authz;
mod compression;
mod concurrency;
mod conventions;
mod dispatch;
mod errors;
mod facts;
mod feed;
mod hardening;
mod helpers;
mod idempotency_slim;
mod lifecycle;
mod masking;
mod metrics;
mod open311;
mod openapi;
mod queue;
mod session;
mod similar;
mod sla;
mod stats_evidence;
