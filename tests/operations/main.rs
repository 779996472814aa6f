//! The operator's commands, run as an operator runs them (the real binary where it
//! matters): export and restore, upgrades from every earlier schema, verify, the
//! import of legacy history, the CLI, and the configuration check. One test binary
//! (rather than one per file) so the crate is linked once for all of them.

#[path = "../support/mod.rs"]
mod support;

mod appraisal;
mod backup;
mod backup_users;
mod cli;
mod config;
mod import;
mod shutdown;
mod upgrades;
mod users;
mod verify;
