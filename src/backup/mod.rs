//! `yiwang export` and `yiwang restore`: the whole database as one portable archive,
//! from either engine into either engine.
//!
//! ## The archive (format `yiwang-export`, version 1)
//!
//! NDJSON: one JSON object per line, every line ending in `\n`, UTF-8.
//!
//! 1. The header:
//!    `{"format":"yiwang-export","version":1,"engine":"sqlite","exported_at":"<RFC 3339>",
//!    "schema_version":5,"max_position":N,"yiwang":"<version of the binary>"}`.
//!    `schema_version` is the last migration the source had applied; `max_position`
//!    the highest event position in the archive (0 without events).
//! 2. One line per stored row, its `"kind"` first, then one field per column:
//!    - `reference`: a row of `reference_data` (the organisation and catalogue in
//!      force): `name` (the row's kind, e.g. `org`), `source`, `doc` (the document as
//!      loaded, verbatim), `loaded_at`;
//!    - `token`: `id`, `token_hash`, `user`, `role`, `unit`, `created_at`, `revoked_at`,
//!      `expires_at` (null: never; an archive made before schema 9 has no such field,
//!      and its tokens restore as not expiring).
//!      Tokens travel as the SHA-256 hashes the database holds, never in clear (the
//!      secrets were never stored), so every token keeps working after a move;
//!    - `user`: the people who sign in with a password (schema 13): `user`, `role`,
//!      `unit`, `password_hash` (argon2id's PHC string, as stored), `created_at` and
//!      `updated_at` (unix seconds), `locked` (a boolean), `device_id` (the grid
//!      worker's bound device, or null). Sessions and failed sign-ins do not travel:
//!      after a restore people sign in again;
//!    - `event`: every column of `events`: `position`, `stream_id`, `version`, `type`,
//!      `schema_version`, `data`, `metadata`, `occurred_at`, `recorded_at`,
//!      `prev_hash`, `hash`. `data` and `metadata` are the stored JSON text written
//!      in place, byte for byte (a stored text that is not a single line of valid JSON
//!      goes as a string in `data_text` / `metadata_text` instead, so a damaged log is
//!      carried as it is). In position order;
//!    - `ticket_view`: the ticket view written with each append (`id`, `number`,
//!      `state`, `unit`, `centre`, `category`, `grid`, `co_units`, `version`,
//!      `created_at`, `updated_at`, `doc`, `head_hash`). It is kept rather than
//!      rebuilt because `yiwang verify` checks each stream's last hash against it: a
//!      view folded again from the events would hide a stream whose tail was cut;
//!    - `contact`: reporters' contact details (personal data, kept out of the log):
//!      `id`, `name`, `phone`, `created_at`, `purged_at`;
//!    - `idempotency`: stored first answers (`scope`, `key`, `request_hash`, `status`,
//!      `body`, `stream_id`, `created_at`, `version`), so a client's retry after a
//!      restore still gets the original answer: its `body`, or (a ticket command's
//!      since schema 16, `body` null) the ticket rendered from its stream at
//!      `version`. An archive made before schema 16 has no `version` field; its
//!      records restore with their bodies, which answer as before;
//!    - `attachment`: the records of uploaded photos (`hash`, `content_type`, `size`,
//!      `uploaded_by`, `created_at`). **The photos themselves are not in the archive**:
//!      copy the attachment directory alongside (its files never change once written).
//! 3. The trailer: `{"kind":"end","events":N,"records":M,"sha256":"<hex>"}`, `M`
//!    counting the lines between the header and the trailer and `sha256` the hash of
//!    every byte before the trailer (the header and every record line, newlines
//!    included).
//!
//! Times are RFC 3339 in UTC (from PostgreSQL with microseconds; from SQLite as
//! stored). Not in the archive: the projections (`unit_stats` and its tables, their
//! checkpoints and leases), which are rebuilt from the log.
//!
//! ## Export
//!
//! Reads every table inside one read transaction (PostgreSQL: `REPEATABLE READ`;
//! SQLite: one WAL snapshot), so the archive is the database at one instant while
//! services keep running. Rows are streamed from the database through a cursor and
//! written as they come: memory stays flat whatever the size of the log. A file is
//! written under a temporary name, synced, and renamed into place only when complete.
//!
//! ## Restore
//!
//! Into a fresh database only: a target that holds events, ticket views, contacts or
//! idempotency records is refused before anything is written. The header is checked
//! first (format, version, a schema no newer than this binary's), then the target is
//! migrated and every record is inserted in one transaction, which commits only after
//! the trailer's counts and checksum match: a truncated, damaged or edited archive
//! leaves nothing behind. Positions, hashes and times are kept as they are, so the
//! hash chains verify and clients' positions (SSE `Last-Event-ID`, the catch-up feed)
//! stay valid. While loading, every event's hash chain is checked (content against
//! hash, links, versions, and a ticket's last event against its view's recorded
//! head): the trailer is a plain SHA-256 anyone can recompute after editing an
//! event, the chain is not. A log that does not verify (edited in the archive, or
//! tampered with before the export) is refused before the commit, naming each
//! stream and version, unless `--keep-damaged` asks to load it as it is, for
//! inspection; after the commit the whole log is verified as `yiwang verify` does,
//! and `yiwang restore` exits non-zero if it does not. (To load a damaged log as it is, SQLite's trigger
//! that wants each new event at its stream's head + 1 is dropped for the length of
//! the transaction and created again before it commits.) The log tally
//! (`log_tally`, which verification compares the log with) is not in the archive:
//! restore counts the restored events into it, in the same transaction.
//!
//! The archive holds personal data (contacts), the token hashes and the password
//! hashes: keep it as the database is kept.
//!
//! On PostgreSQL a position is `(xid << 10) + n` of the appending transaction (see
//! `store/postgres.rs`), so positions restored from elsewhere may lie above those the
//! target cluster would give next. Before the transaction, restore advances the
//! cluster's transaction counter past the archive's highest position (by committing
//! empty transactions, about 100,000 a second), at most [`MAX_XID_ADVANCE`]; further
//! than that it refuses and says how to set the counter on a new cluster. The ticket
//! serial sequence is set past the highest ticket number. SQLite continues after the
//! highest position by itself (AUTOINCREMENT).
//!
//! ## Where the code is
//!
//! This module holds the format (header, trailer, the tables in archive order);
//! `export.rs` writes an archive, `restore.rs` reads one back. The copy itself, on
//! either engine, is in the storage layer: `store/dump.rs` (the column types, the
//! log's tables, the read snapshot, the restore transaction) and `repo/dump.rs`
//! (the read models' and reference data's tables).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::repo::dump::{ATTACHMENTS, CONTACTS, REFERENCE, TICKET_VIEW, TOKENS, USERS};
use crate::store::dump::{EVENTS, IDEMPOTENCY, Table};

mod export;
mod restore;

pub use crate::store::dump::MAX_XID_ADVANCE;
pub use export::{Exported, export, export_to};
pub use restore::{Restored, restore};

/// The `format` of the header.
pub const FORMAT: &str = "yiwang-export";
/// The version of the archive format this binary writes and reads.
pub const VERSION: u32 = 1;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The archive to write; `-` (the default) writes to standard output.
    #[arg(long, default_value = "-")]
    pub out: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The archive written by `yiwang export`; `-` reads standard input.
    pub file: PathBuf,
    /// Leave the projections empty (the next `serve` or `yiwang replay` rebuilds
    /// them) instead of rebuilding them now.
    #[arg(long)]
    pub skip_projections: bool,
    /// Directory of calendar year files for the projections' rebuild; default: the
    /// calendar built into the binary. Use the same as `serve`.
    #[arg(long, env = "YIWANG_CALENDAR_DIR")]
    pub calendar_dir: Option<PathBuf>,
    /// Load an archive whose log does not verify (an event edited, cut or put in)
    /// as it is, for inspection, instead of refusing it; the restore then reports
    /// the problems and exits non-zero.
    #[arg(long)]
    pub keep_damaged: bool,
}

/// The first line of an archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub engine: String,
    pub exported_at: String,
    pub schema_version: i64,
    pub max_position: i64,
    #[serde(default)]
    pub yiwang: String,
}

/// The last line of an archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Trailer {
    kind: String,
    events: u64,
    records: u64,
    sha256: String,
}

/// Every table the archive carries, in archive order.
const TABLES: &[Table] = &[
    REFERENCE,
    TOKENS,
    USERS,
    EVENTS,
    TICKET_VIEW,
    CONTACTS,
    IDEMPOTENCY,
    ATTACHMENTS,
];

/// The tables a fresh target must have empty (they are written with the log).
const MUST_BE_EMPTY: &[&str] = &[
    EVENTS.table,
    TICKET_VIEW.table,
    CONTACTS.table,
    IDEMPOTENCY.table,
];

/// "12 events, 3 tokens, …": the kinds that have records, in archive order.
fn describe_counts(by_kind: &BTreeMap<&'static str, u64>) -> String {
    let parts: Vec<String> = TABLES
        .iter()
        .filter_map(|t| {
            let n = by_kind.get(t.kind).copied().unwrap_or(0);
            let (one, many) = match t.kind {
                "reference" => ("reference document", "reference documents"),
                "token" => ("token", "tokens"),
                "user" => ("user", "users"),
                "event" => ("event", "events"),
                "ticket_view" => ("ticket view", "ticket views"),
                "contact" => ("contact", "contacts"),
                "idempotency" => ("idempotency record", "idempotency records"),
                "attachment" => ("attachment record", "attachment records"),
                other => (other, other),
            };
            (n > 0).then(|| format!("{n} {}", if n == 1 { one } else { many }))
        })
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests;
