//! Read models and reference data: the tables next to the log, and their SQL.
//!
//! `store/` is the event log alone (append, streams, the feed and its head,
//! idempotency); everything else the service keeps in the database is read and
//! written here, on either engine ([`crate::store::Pool`]):
//!
//! - `tickets`: the ticket view (written with the events, as the append's view
//!   handler), the ticket queue, the ticket serial numbers;
//! - `contacts`: reporters' contact details (written with the events too) and their
//!   purge;
//! - `tokens`: bearer tokens; `users` and `sessions`: password sign-in; `org`: the stored organisation document;
//!   `attachments`: the photos' records;
//! - `projections`: the projections' leases and the gauges' reads; `people`: the
//!   tables of the per-person figures (`projections::people`);
//! - `dump`: the export and restore of these tables (the log's own in
//!   `store::dump`); `audit`: verify's reads of the ticket view.

pub mod appraisal;
pub mod attachments;
pub mod audit;
pub mod contacts;
pub mod dump;
pub mod org;
pub mod people;
pub mod projections;
pub mod sessions;
pub mod similar;
pub mod tickets;
pub mod tokens;
pub mod users;
