//! The running service beyond single API answers: connections and limits, hostile
//! clients, the projections and their takeover between instances, the SLA watcher's
//! processes, and the statistics. One test binary (rather than one per file) so the
//! crate is linked once for all of them.

#[path = "../support/mod.rs"]
mod support;

mod connections;
mod hostile;
mod limits;
mod observability;
mod projection_takeover;
mod projections;
mod sla_processes;
mod statistics;
mod stats_history;
mod stats_total;
