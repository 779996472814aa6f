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
//!      `body`, `stream_id`, `created_at`), so a client's retry after a restore still
//!      gets the original answer;
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
//! stay valid. After the commit the chains are verified as `yiwang verify` does; a
//! log that was tampered with before the export is restored as it is and reported
//! (the ticket views travel with it, so a cut tail stays visible), and `yiwang
//! restore` then exits non-zero. (To load a damaged log as it is, SQLite's trigger
//! that wants each new event at its stream's head + 1 is dropped for the length of
//! the transaction and created again before it commits.) The log tally
//! (`log_tally`, which verification compares the log with) is not in the archive:
//! restore counts the restored events into it, in the same transaction.
//!
//! The archive holds personal data (contacts) and the token hashes: keep it as the
//! database is kept.
//!
//! On PostgreSQL a position is `(xid << 10) + n` of the appending transaction (see
//! `store/postgres.rs`), so positions restored from elsewhere may lie above those the
//! target cluster would give next. Before the transaction, restore advances the
//! cluster's transaction counter past the archive's highest position (by committing
//! empty transactions, about 100,000 a second), at most [`MAX_XID_ADVANCE`]; further
//! than that it refuses and says how to set the counter on a new cluster. The ticket
//! serial sequence is set past the highest ticket number. SQLite continues after the
//! highest position by itself (AUTOINCREMENT).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use sqlx::Row;
use uuid::Uuid;

use crate::store::{self, Pool};

/// The `format` of the header.
pub const FORMAT: &str = "yiwang-export";
/// The version of the archive format this binary writes and reads.
pub const VERSION: u32 = 1;
/// Rows per insert statement on PostgreSQL.
const BATCH: usize = 1000;

/// Rows per insert statement on SQLite: 200, or fewer for wide tables so that a
/// statement stays far below SQLite's limit of 32,766 parameters.
fn sqlite_batch(t: &Table) -> usize {
    (8_000 / t.cols.len()).min(200)
}
/// The most transaction ids restore consumes on PostgreSQL to put new positions
/// above the archive's (about eight minutes' worth).
pub const MAX_XID_ADVANCE: i64 = 50_000_000;

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

/// How a column travels: its type in the archive and in each engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    /// A JSON integer; BIGINT / INTEGER.
    Int,
    /// A string; TEXT.
    Text,
    /// A string; UUID on PostgreSQL, text on SQLite.
    Uuid,
    /// An RFC 3339 string; TIMESTAMPTZ on PostgreSQL, text on SQLite.
    Time,
    /// JSON written in place; JSON on PostgreSQL, text on SQLite.
    Json,
    /// An array of strings; TEXT[] on PostgreSQL, a JSON array as text on SQLite.
    List,
}

#[derive(Debug)]
struct Col {
    /// The name in the archive.
    field: &'static str,
    column: &'static str,
    ty: Ty,
    nullable: bool,
    /// A column added after format version 1 was first written: an archive from
    /// an older yiwang has no such field, which restores as null.
    added: bool,
}

const fn col(field: &'static str, column: &'static str, ty: Ty) -> Col {
    Col {
        field,
        column,
        ty,
        nullable: false,
        added: false,
    }
}

const fn opt(field: &'static str, column: &'static str, ty: Ty) -> Col {
    Col {
        field,
        column,
        ty,
        nullable: true,
        added: false,
    }
}

/// A nullable column that older archives do not carry (see [`Col::added`]).
const fn added(field: &'static str, column: &'static str, ty: Ty) -> Col {
    Col {
        field,
        column,
        ty,
        nullable: true,
        added: true,
    }
}

/// One table and the record kind its rows travel as.
#[derive(Debug)]
struct Table {
    kind: &'static str,
    table: &'static str,
    order_by: &'static str,
    cols: &'static [Col],
    /// What an insert does with a row the target already has (reference data and
    /// tokens may be there before a restore: `org load`, `token create`).
    on_conflict: &'static str,
}

/// Every table the archive carries, in archive order.
const TABLES: &[Table] = &[
    Table {
        kind: "reference",
        table: "reference_data",
        order_by: "kind",
        cols: &[
            col("name", "kind", Ty::Text),
            col("source", "source", Ty::Text),
            col("doc", "doc", Ty::Text),
            col("loaded_at", "loaded_at", Ty::Time),
        ],
        on_conflict: "ON CONFLICT (kind) DO UPDATE SET source = excluded.source, \
                      doc = excluded.doc, loaded_at = excluded.loaded_at",
    },
    Table {
        kind: "token",
        table: "tokens",
        order_by: "id",
        cols: &[
            col("id", "id", Ty::Text),
            col("token_hash", "token_hash", Ty::Text),
            col("user", "user_name", Ty::Text),
            col("role", "role", Ty::Text),
            col("unit", "unit", Ty::Text),
            col("created_at", "created_at", Ty::Time),
            opt("revoked_at", "revoked_at", Ty::Time),
            // Schema 9 (token expiry).
            added("expires_at", "expires_at", Ty::Time),
        ],
        on_conflict: "ON CONFLICT DO NOTHING",
    },
    Table {
        kind: "event",
        table: "events",
        order_by: "position",
        cols: &[
            col("position", "position", Ty::Int),
            col("stream_id", "stream_id", Ty::Uuid),
            col("version", "version", Ty::Int),
            col("type", "event_type", Ty::Text),
            col("schema_version", "schema_version", Ty::Int),
            col("data", "data", Ty::Json),
            col("metadata", "metadata", Ty::Json),
            col("occurred_at", "occurred_at", Ty::Time),
            col("recorded_at", "recorded_at", Ty::Time),
            col("prev_hash", "prev_hash", Ty::Text),
            col("hash", "hash", Ty::Text),
        ],
        on_conflict: "",
    },
    Table {
        kind: "ticket_view",
        table: "ticket_view",
        order_by: "id",
        cols: &[
            col("id", "id", Ty::Uuid),
            col("number", "number", Ty::Text),
            col("state", "state", Ty::Text),
            opt("unit", "unit", Ty::Text),
            col("centre", "centre", Ty::Text),
            col("category", "category", Ty::Text),
            opt("grid", "grid", Ty::Text),
            col("co_units", "co_units", Ty::List),
            col("version", "version", Ty::Int),
            col("created_at", "created_at", Ty::Time),
            col("updated_at", "updated_at", Ty::Time),
            col("doc", "doc", Ty::Text),
            col("head_hash", "head_hash", Ty::Text),
        ],
        on_conflict: "",
    },
    Table {
        kind: "contact",
        table: "contacts",
        order_by: "id",
        cols: &[
            col("id", "id", Ty::Uuid),
            opt("name", "name", Ty::Text),
            opt("phone", "phone", Ty::Text),
            col("created_at", "created_at", Ty::Time),
            opt("purged_at", "purged_at", Ty::Time),
        ],
        on_conflict: "",
    },
    Table {
        kind: "idempotency",
        table: "idempotency_keys",
        order_by: "scope, key",
        cols: &[
            col("scope", "scope", Ty::Text),
            col("key", "key", Ty::Text),
            col("request_hash", "request_hash", Ty::Text),
            col("status", "status", Ty::Int),
            col("body", "body", Ty::Text),
            col("stream_id", "stream_id", Ty::Uuid),
            col("created_at", "created_at", Ty::Time),
        ],
        on_conflict: "",
    },
    Table {
        kind: "attachment",
        table: "attachments",
        order_by: "hash, uploaded_by",
        cols: &[
            col("hash", "hash", Ty::Text),
            col("content_type", "content_type", Ty::Text),
            col("size", "size", Ty::Int),
            col("uploaded_by", "uploaded_by", Ty::Text),
            col("created_at", "created_at", Ty::Time),
        ],
        on_conflict: "ON CONFLICT DO NOTHING",
    },
];

/// The tables a fresh target must have empty (they are written with the log).
const MUST_BE_EMPTY: &[&str] = &["events", "ticket_view", "contacts", "idempotency_keys"];

/// One value of a row.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Val {
    Int(i64),
    /// Text, a time, a uuid, JSON text or a JSON array of strings.
    Text(Option<String>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    Postgres,
    Sqlite,
}

impl Engine {
    fn of(pool: &Pool) -> Engine {
        match pool {
            Pool::Postgres(_) => Engine::Postgres,
            Pool::Sqlite(_) => Engine::Sqlite,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Sqlite => "sqlite",
        }
    }

    /// The last migration this binary knows for the engine.
    fn latest_schema(self) -> i64 {
        let m = match self {
            Engine::Postgres => &store::postgres::MIGRATOR,
            Engine::Sqlite => &store::sqlite::MIGRATOR,
        };
        m.iter().map(|m| m.version).max().unwrap_or(0)
    }
}

/// `SELECT` of a table's columns, each as an integer or text.
fn select_sql(t: &Table, engine: Engine) -> String {
    let exprs: Vec<String> = t
        .cols
        .iter()
        .map(|c| match (engine, c.ty) {
            (Engine::Sqlite, _) => c.column.to_string(),
            (Engine::Postgres, Ty::Int) => format!("{}::bigint", c.column),
            (Engine::Postgres, Ty::Text) => c.column.to_string(),
            (Engine::Postgres, Ty::Uuid | Ty::Json) => format!("{}::text", c.column),
            (Engine::Postgres, Ty::Time) => format!(
                "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
                c.column
            ),
            (Engine::Postgres, Ty::List) => format!("array_to_json({})::text", c.column),
        })
        .collect();
    format!(
        "SELECT {} FROM {} ORDER BY {}",
        exprs.join(", "),
        t.table,
        t.order_by
    )
}

/// A row's values, by the table's columns.
fn row_values<R: Row>(row: &R, cols: &[Col]) -> Result<Vec<Val>, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database>,
    i64: sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database>,
    String: sqlx::Type<R::Database>,
{
    cols.iter()
        .enumerate()
        .map(|(i, c)| match c.ty {
            Ty::Int => row.try_get::<i64, _>(i).map(Val::Int),
            _ => row.try_get::<Option<String>, _>(i).map(Val::Text),
        })
        .collect()
}

/// Writes lines, hashing and counting them.
struct LineWriter<W: Write> {
    out: W,
    hasher: Sha256,
    records: u64,
    events: u64,
    buf: Vec<u8>,
}

impl<W: Write> LineWriter<W> {
    fn new(out: W) -> LineWriter<W> {
        LineWriter {
            out,
            hasher: Sha256::new(),
            records: 0,
            events: 0,
            buf: Vec::with_capacity(4096),
        }
    }

    fn header(&mut self, h: &Header) -> anyhow::Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, h)?;
        self.buf.push(b'\n');
        self.emit()
    }

    /// One row of `t` as a record line.
    fn record(&mut self, t: &Table, vals: &[Val]) -> anyhow::Result<()> {
        self.buf.clear();
        self.buf.extend_from_slice(b"{\"kind\":");
        serde_json::to_writer(&mut self.buf, t.kind)?;
        for (c, v) in t.cols.iter().zip(vals) {
            let key = |buf: &mut Vec<u8>, name: &str| -> anyhow::Result<()> {
                buf.push(b',');
                serde_json::to_writer(&mut *buf, name)?;
                buf.push(b':');
                Ok(())
            };
            match (c.ty, v) {
                (_, Val::Int(n)) => {
                    key(&mut self.buf, c.field)?;
                    self.buf.extend_from_slice(n.to_string().as_bytes());
                }
                (_, Val::Text(None)) => {
                    key(&mut self.buf, c.field)?;
                    self.buf.extend_from_slice(b"null");
                }
                (Ty::Json, Val::Text(Some(text))) => {
                    if fits_in_place(text) {
                        key(&mut self.buf, c.field)?;
                        self.buf.extend_from_slice(text.as_bytes());
                    } else {
                        key(&mut self.buf, &format!("{}_text", c.field))?;
                        serde_json::to_writer(&mut self.buf, text)?;
                    }
                }
                (Ty::List, Val::Text(Some(text))) => {
                    let items: Vec<String> = serde_json::from_str(text).with_context(|| {
                        format!(
                            "a {} row's {} is not a list of strings: {text:?}",
                            t.table, c.column
                        )
                    })?;
                    key(&mut self.buf, c.field)?;
                    serde_json::to_writer(&mut self.buf, &items)?;
                }
                (_, Val::Text(Some(text))) => {
                    key(&mut self.buf, c.field)?;
                    serde_json::to_writer(&mut self.buf, text)?;
                }
            }
        }
        self.buf.extend_from_slice(b"}\n");
        self.records += 1;
        if t.kind == "event" {
            self.events += 1;
        }
        self.emit()
    }

    fn emit(&mut self) -> anyhow::Result<()> {
        self.hasher.update(&self.buf);
        self.out.write_all(&self.buf)?;
        Ok(())
    }

    /// Writes the trailer and hands back the output and the checksum.
    fn finish(mut self) -> anyhow::Result<(W, Trailer)> {
        let trailer = Trailer {
            kind: "end".into(),
            events: self.events,
            records: self.records,
            sha256: hex::encode(self.hasher.finalize_reset()),
        };
        let mut line = serde_json::to_vec(&trailer)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.out.flush()?;
        Ok((self.out, trailer))
    }
}

/// Whether stored JSON text can be written in place on one line and read back
/// byte for byte.
fn fits_in_place(text: &str) -> bool {
    !text.contains(['\n', '\r'])
        && serde_json::from_str::<&RawValue>(text).is_ok_and(|raw| raw.get() == text)
}

/// Where an export goes.
enum Output {
    Stdout,
    /// The temporary file and the name it gets when complete.
    File {
        tmp: PathBuf,
        dest: PathBuf,
    },
}

impl Output {
    fn open(path: &Path) -> anyhow::Result<(Output, Box<dyn Write + Send>)> {
        if path == Path::new("-") {
            return Ok((Output::Stdout, Box::new(std::io::stdout())));
        }
        let name = path
            .file_name()
            .with_context(|| format!("--out {} names no file", path.display()))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.partial", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let file = std::fs::File::create(&tmp).with_context(|| {
            format!(
                "cannot write {} (as {} until it is complete)",
                path.display(),
                tmp.display()
            )
        })?;
        Ok((
            Output::File {
                tmp,
                dest: path.to_path_buf(),
            },
            Box::new(file),
        ))
    }

    fn describe(&self) -> String {
        match self {
            Output::Stdout => "standard output".into(),
            Output::File { dest, .. } => dest.display().to_string(),
        }
    }

    /// Puts a complete file in place.
    fn commit(&self) -> anyhow::Result<()> {
        if let Output::File { tmp, dest } = self {
            std::fs::File::open(tmp)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot sync {}", tmp.display()))?;
            std::fs::rename(tmp, dest).with_context(|| {
                format!("cannot rename {} to {}", tmp.display(), dest.display())
            })?;
        }
        Ok(())
    }

    fn abandon(&self) {
        if let Output::File { tmp, .. } = self {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// "12 events, 3 tokens, …": the kinds that have records, in archive order.
fn describe_counts(by_kind: &BTreeMap<&'static str, u64>) -> String {
    let parts: Vec<String> = TABLES
        .iter()
        .filter_map(|t| {
            let n = by_kind.get(t.kind).copied().unwrap_or(0);
            let (one, many) = match t.kind {
                "reference" => ("reference document", "reference documents"),
                "token" => ("token", "tokens"),
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

/// Opens an existing database without creating or migrating anything.
async fn connect_existing(url: &str) -> anyhow::Result<Pool> {
    use sqlx::ConnectOptions;
    // An export reads each table with one long statement: not a slow query to warn of.
    let quiet = (
        tracing::log::LevelFilter::Off,
        std::time::Duration::from_secs(1),
    );
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let opts: sqlx::postgres::PgConnectOptions = url
            .parse()
            .with_context(|| format!("bad database URL {}", crate::config::redact_url(url)))?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(opts.log_slow_statements(quiet.0, quiet.1))
            .await
            .with_context(|| format!("cannot connect to {}", crate::config::redact_url(url)))?;
        Ok(Pool::Postgres(pool))
    } else if url.starts_with("sqlite:") {
        let opts = store::sqlite::connect_options(url)?
            .create_if_missing(false)
            .log_slow_statements(quiet.0, quiet.1);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(opts)
            .await
            .with_context(|| format!("cannot open {url}"))?;
        Ok(Pool::Sqlite(pool))
    } else {
        bail!("unsupported database URL {url:?}: use postgres://… or sqlite://PATH")
    }
}

/// What one export wrote.
#[derive(Clone, Debug)]
pub struct Exported {
    pub events: u64,
    pub records: u64,
    pub sha256: String,
    pub by_kind: BTreeMap<&'static str, u64>,
}

/// `yiwang export`: the database behind `url` to `args.out`, with a summary on
/// standard error (standard output may be the archive).
pub async fn export(url: &str, args: &ExportArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let pool = connect_existing(url).await?;
    let (output, sink) = Output::open(&args.out)?;
    let result = export_to(&pool, BufWriter::with_capacity(1 << 20, sink)).await;
    let done = match result {
        Ok(e) => output.commit().map(|_| e),
        Err(e) => Err(e),
    };
    let e = match done {
        Ok(e) => e,
        Err(err) => {
            output.abandon();
            return Err(err.context("export failed; no archive was written"));
        }
    };
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "exported {} events ({} records: {}) to {} in {secs:.2} s; sha256 {}",
        e.events,
        e.records,
        describe_counts(&e.by_kind),
        output.describe(),
        e.sha256
    );
    eprintln!(
        "the archive holds no photos: copy the attachment directory too (README, \"Backup and restore\")"
    );
    Ok(())
}

/// Writes the whole database to `out` from one read transaction.
pub async fn export_to<W: Write>(pool: &Pool, out: W) -> anyhow::Result<Exported> {
    let engine = Engine::of(pool);
    let mut w = LineWriter::new(out);
    let mut by_kind = BTreeMap::new();
    macro_rules! dump {
        ($tx:expr) => {{
            let tx = &mut $tx;
            let schema: Option<i64> = sqlx::query_scalar(
                "SELECT MAX(version) FROM _sqlx_migrations WHERE success",
            )
            .fetch_one(&mut **tx)
            .await
            .context("not a yiwang database (no migrations were applied to it)")?;
            let schema = schema.unwrap_or(0);
            let latest = engine.latest_schema();
            ensure!(
                schema == latest,
                "the database is at schema version {schema} and this yiwang writes version {latest}: {}",
                if schema < latest {
                    "run `yiwang migrate` first"
                } else {
                    "export it with the yiwang that migrated it"
                }
            );
            let max_position: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
                    .fetch_one(&mut **tx)
                    .await?;
            w.header(&Header {
                format: FORMAT.into(),
                version: VERSION,
                engine: engine.name().into(),
                exported_at: store::hash::rfc3339(Utc::now()),
                schema_version: schema,
                max_position,
                yiwang: env!("CARGO_PKG_VERSION").into(),
            })?;
            for t in TABLES {
                let sql = select_sql(t, engine);
                let mut rows = sqlx::query(&sql).fetch(&mut **tx);
                let mut n = 0u64;
                while let Some(row) = rows.try_next().await? {
                    let vals = row_values(&row, t.cols)?;
                    w.record(t, &vals)?;
                    n += 1;
                }
                by_kind.insert(t.kind, n);
            }
        }};
    }
    match pool {
        Pool::Postgres(p) => {
            let mut tx = p
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?;
            dump!(tx);
            tx.commit().await?;
        }
        Pool::Sqlite(p) => {
            // A read transaction: every read sees the snapshot of its first one.
            let mut tx = p.begin().await?;
            dump!(tx);
            tx.commit().await?;
        }
    }
    let (_, trailer) = w.finish()?;
    Ok(Exported {
        events: trailer.events,
        records: trailer.records,
        sha256: trailer.sha256,
        by_kind,
    })
}

/// Reads an archive line by line, hashing what precedes the trailer.
struct LineReader {
    inner: Box<dyn BufRead + Send>,
    /// The 1-based number of the last line read.
    line: usize,
    hasher: Sha256,
}

impl LineReader {
    /// The next line with its newline; None at the end.
    fn next_line(&mut self, buf: &mut Vec<u8>) -> anyhow::Result<Option<bool>> {
        buf.clear();
        let n = self
            .inner
            .read_until(b'\n', buf)
            .with_context(|| format!("cannot read line {} of the archive", self.line + 1))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        let complete = buf.last() == Some(&b'\n');
        if complete {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                bail!(
                    "line {}: ends with CR LF: the archive was converted as text; use the file exactly as written",
                    self.line
                );
            }
        }
        Ok(Some(complete))
    }
}

fn open_input(path: &Path) -> anyhow::Result<Box<dyn BufRead + Send>> {
    if path == Path::new("-") {
        return Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            std::io::stdin(),
        )));
    }
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Box::new(BufReader::with_capacity(1 << 20, f)))
}

/// Reads and checks the header (before anything is written anywhere).
fn read_header(r: &mut LineReader) -> anyhow::Result<Header> {
    let mut buf = Vec::new();
    if r.inner.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
        bail!(
            "the archive is gzip-compressed: decompress it first (gunzip -c FILE | yiwang restore -)"
        );
    }
    let complete = r
        .next_line(&mut buf)?
        .context("the archive is empty: no header")?;
    ensure!(complete, "the archive ends inside its header: truncated");
    let h: Header = serde_json::from_slice(&buf).map_err(|e| {
        anyhow::anyhow!("line 1 is not the header of a yiwang export archive ({e})")
    })?;
    ensure!(
        h.format == FORMAT,
        "not a yiwang export archive: the header's format is {:?}, not {FORMAT:?}",
        h.format
    );
    ensure!(
        h.version == VERSION,
        "the archive is format version {} and this yiwang reads version {VERSION}",
        h.version
    );
    r.hasher.update(&buf);
    r.hasher.update(b"\n");
    Ok(h)
}

/// A record line's values for its table, checked field by field.
fn parse_record(line: usize, fields: &BTreeMap<&str, &RawValue>) -> anyhow::Result<Parsed> {
    let kind_raw = fields
        .get("kind")
        .with_context(|| format!("line {line}: a record without a \"kind\""))?;
    let kind: String = serde_json::from_str(kind_raw.get())
        .with_context(|| format!("line {line}: \"kind\" is not a string"))?;
    if kind == "end" {
        let trailer: Trailer = serde_json::from_str(&serde_json::to_string(fields)?)
            .with_context(|| format!("line {line}: a bad trailer"))?;
        return Ok(Parsed::End(trailer));
    }
    let table = TABLES
        .iter()
        .find(|t| t.kind == kind)
        .with_context(|| format!("line {line}: unknown record kind {kind:?}"))?;
    let mut known = 1;
    let mut vals = Vec::with_capacity(table.cols.len());
    for c in table.cols {
        let what =
            |e: &dyn std::fmt::Display| format!("line {line}: {kind} field {:?}: {e}", c.field);
        let raw = match fields.get(c.field) {
            Some(r) => {
                known += 1;
                Some(*r)
            }
            None => None,
        };
        let val = match (c.ty, raw) {
            (Ty::Json, None) => {
                let alt = format!("{}_text", c.field);
                let raw = fields
                    .get(alt.as_str())
                    .with_context(|| format!("line {line}: {kind} record without {:?}", c.field))?;
                known += 1;
                let text: String =
                    serde_json::from_str(raw.get()).map_err(|e| anyhow::anyhow!(what(&e)))?;
                Val::Text(Some(text))
            }
            (Ty::Json, Some(raw)) => {
                ensure!(
                    !fields.contains_key(format!("{}_text", c.field).as_str()),
                    "line {line}: {kind} record with both {:?} and {:?}",
                    c.field,
                    format!("{}_text", c.field)
                );
                Val::Text(Some(raw.get().to_string()))
            }
            (_, None) if c.added => Val::Text(None),
            (_, None) => bail!("line {line}: {kind} record without {:?}", c.field),
            (Ty::Int, Some(raw)) => {
                Val::Int(serde_json::from_str(raw.get()).map_err(|e| anyhow::anyhow!(what(&e)))?)
            }
            (Ty::List, Some(raw)) => {
                let items: Vec<String> =
                    serde_json::from_str(raw.get()).map_err(|e| anyhow::anyhow!(what(&e)))?;
                Val::Text(Some(serde_json::to_string(&items)?))
            }
            (ty, Some(raw)) => {
                let s: Option<String> =
                    serde_json::from_str(raw.get()).map_err(|e| anyhow::anyhow!(what(&e)))?;
                match &s {
                    None if !c.nullable => bail!(what(&"is null")),
                    Some(s) if ty == Ty::Uuid => {
                        Uuid::parse_str(s).map_err(|e| anyhow::anyhow!(what(&e)))?;
                    }
                    Some(s) if ty == Ty::Time => {
                        DateTime::parse_from_rfc3339(s).map_err(|e| anyhow::anyhow!(what(&e)))?;
                    }
                    _ => {}
                }
                Val::Text(s)
            }
        };
        vals.push(val);
    }
    if fields.len() != known {
        let extra: Vec<&str> = fields
            .keys()
            .copied()
            .filter(|k| {
                *k != "kind"
                    && !table.cols.iter().any(|c| {
                        c.field == *k || (c.ty == Ty::Json && *k == format!("{}_text", c.field))
                    })
            })
            .collect();
        bail!(
            "line {line}: {kind} record with fields this format does not have: {}",
            extra.join(", ")
        );
    }
    Ok(Parsed::Row(table, vals))
}

enum Parsed {
    Row(&'static Table, Vec<Val>),
    End(Trailer),
}

/// The open restore transaction.
enum Tx {
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

/// Rows waiting for a batched insert, by table.
#[derive(Default)]
struct Pending {
    rows: BTreeMap<&'static str, (&'static Table, Vec<Vec<Val>>)>,
}

impl Tx {
    /// Which of the tables written with the log already hold rows (looked at again
    /// under the lock: nothing appended since the first look).
    async fn occupied(&mut self) -> anyhow::Result<Vec<(&'static str, i64)>> {
        let mut out = Vec::new();
        for table in MUST_BE_EMPTY {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let n: i64 = match self {
                Tx::Postgres(t) => sqlx::query_scalar(&sql).fetch_one(&mut **t).await?,
                Tx::Sqlite(t) => sqlx::query_scalar(&sql).fetch_one(&mut **t).await?,
            };
            if n > 0 {
                out.push((*table, n));
            }
        }
        Ok(out)
    }

    /// Queues a row; writes the table's queue when it is full.
    async fn insert(
        &mut self,
        pending: &mut Pending,
        t: &'static Table,
        vals: Vec<Val>,
    ) -> anyhow::Result<()> {
        let full = match self {
            Tx::Postgres(_) => BATCH,
            Tx::Sqlite(_) => sqlite_batch(t),
        };
        let entry = pending.rows.entry(t.kind).or_insert((t, Vec::new()));
        entry.1.push(vals);
        if entry.1.len() >= full {
            let rows = std::mem::take(&mut entry.1);
            self.write(t, rows).await?;
        }
        Ok(())
    }

    /// Writes every queued row.
    async fn flush(&mut self, pending: &mut Pending) -> anyhow::Result<()> {
        for (_, (t, rows)) in std::mem::take(&mut pending.rows) {
            if !rows.is_empty() {
                self.write(t, rows).await?;
            }
        }
        Ok(())
    }

    async fn write(&mut self, t: &Table, rows: Vec<Vec<Val>>) -> anyhow::Result<()> {
        match self {
            Tx::Postgres(_) => self.write_pg(t, rows).await,
            Tx::Sqlite(tx) => {
                // One statement of many rows: SQLite's cost is per statement.
                let cols: Vec<&str> = t.cols.iter().map(|c| c.column).collect();
                let one = format!("({})", vec!["?"; cols.len()].join(", "));
                let sql = format!(
                    "INSERT INTO {} ({}) VALUES {} {}",
                    t.table,
                    cols.join(", "),
                    vec![one.as_str(); rows.len()].join(", "),
                    t.on_conflict
                );
                let mut q = sqlx::query(&sql);
                for v in rows.into_iter().flatten() {
                    q = match v {
                        Val::Int(n) => q.bind(n),
                        Val::Text(s) => q.bind(s),
                    };
                }
                q.execute(&mut **tx)
                    .await
                    .with_context(|| format!("cannot insert {} records", t.kind))?;
                Ok(())
            }
        }
    }

    /// One `INSERT … SELECT … FROM unnest(…)` of up to [`BATCH`] rows.
    async fn write_pg(&mut self, t: &Table, rows: Vec<Vec<Val>>) -> anyhow::Result<()> {
        let Tx::Postgres(tx) = self else {
            return Ok(());
        };
        let n = t.cols.len();
        let mut ints: Vec<Vec<i64>> = vec![Vec::new(); n];
        let mut texts: Vec<Vec<Option<String>>> = vec![Vec::new(); n];
        for row in rows {
            for (i, v) in row.into_iter().enumerate() {
                match v {
                    Val::Int(x) => ints[i].push(x),
                    Val::Text(s) => texts[i].push(s),
                }
            }
        }
        let mut params = Vec::with_capacity(n);
        let mut exprs = Vec::with_capacity(n);
        for (i, c) in t.cols.iter().enumerate() {
            let v = format!("c{i}");
            params.push(format!(
                "${}::{}[]",
                i + 1,
                if c.ty == Ty::Int { "bigint" } else { "text" }
            ));
            exprs.push(match c.ty {
                Ty::Int | Ty::Text => v,
                Ty::Uuid => format!("{v}::uuid"),
                Ty::Time => format!("{v}::timestamptz"),
                Ty::Json => format!("{v}::json"),
                Ty::List => format!("ARRAY(SELECT json_array_elements_text({v}::json))"),
            });
        }
        let aliases: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        let cols: Vec<&str> = t.cols.iter().map(|c| c.column).collect();
        let sql = format!(
            "INSERT INTO {} ({}) SELECT {} FROM unnest({}) AS u({}) {}",
            t.table,
            cols.join(", "),
            exprs.join(", "),
            params.join(", "),
            aliases.join(", "),
            t.on_conflict
        );
        let mut q = sqlx::query(&sql);
        for (i, c) in t.cols.iter().enumerate() {
            q = if c.ty == Ty::Int {
                q.bind(std::mem::take(&mut ints[i]))
            } else {
                q.bind(std::mem::take(&mut texts[i]))
            };
        }
        q.execute(&mut **tx)
            .await
            .with_context(|| format!("cannot insert {} records", t.kind))?;
        Ok(())
    }
}

/// Which of the tables written with the log already hold rows.
async fn occupied(pool: &Pool) -> anyhow::Result<Vec<(&'static str, i64)>> {
    let mut out = Vec::new();
    for table in MUST_BE_EMPTY {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let n: i64 = match pool {
            Pool::Postgres(p) => sqlx::query_scalar(&sql).fetch_one(p).await?,
            Pool::Sqlite(p) => sqlx::query_scalar(&sql).fetch_one(p).await?,
        };
        if n > 0 {
            out.push((*table, n));
        }
    }
    Ok(out)
}

fn refuse_occupied(url: &str, found: &[(&str, i64)]) -> anyhow::Result<()> {
    if found.is_empty() {
        return Ok(());
    }
    let what: Vec<String> = found.iter().map(|(t, n)| format!("{n} in {t}")).collect();
    bail!(
        "{} is not a fresh database ({} rows: {}): restore only into an empty database; nothing was written",
        crate::config::redact_url(url),
        found.iter().map(|(_, n)| n).sum::<i64>(),
        what.join(", ")
    )
}

/// Puts the cluster's next transaction id past the archive's positions, so that
/// positions appended after the restore come after every restored one.
async fn advance_xids(pool: &sqlx::PgPool, max_position: i64) -> anyhow::Result<()> {
    let per_xid = store::postgres::MAX_EVENTS_PER_APPEND as i64;
    let need = max_position / per_xid + 1;
    let next: i64 =
        sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
            .fetch_one(pool)
            .await?;
    let gap = need - next;
    if gap <= 0 {
        return Ok(());
    }
    ensure!(
        gap <= MAX_XID_ADVANCE,
        "the archive's positions reach {max_position}, but this PostgreSQL cluster's next \
         transaction id is {next} and new positions come from transaction ids (position = xid × 1024 + n): \
         the cluster would need {gap} more transactions first (more than the {MAX_XID_ADVANCE} restore \
         will spend). Restore into the cluster the archive came from, or into a new cluster whose \
         transaction counter is set past {need} before its first start \
         (`pg_resetwal -e {} -x {} DATADIR`); nothing was written",
        need >> 32,
        (need & 0xffff_ffff).max(3)
    );
    eprintln!(
        "advancing the cluster's transaction counter by {gap} (from {next} to {need}) so new positions come after the archive's"
    );
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql("SET synchronous_commit = off")
        .execute(&mut *conn)
        .await?;
    let mut left = gap;
    while left > 0 {
        let n = left.min(1_000_000);
        // Each iteration takes a transaction id and commits: nothing is written.
        sqlx::raw_sql(&format!(
            "DO $$ BEGIN FOR i IN 1..{n} LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$"
        ))
        .execute(&mut *conn)
        .await
        .context("cannot advance the transaction counter")?;
        left -= n;
    }
    sqlx::raw_sql("RESET synchronous_commit")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What a restore did.
#[derive(Clone, Debug)]
pub struct Restored {
    pub header: Header,
    pub events: u64,
    pub records: u64,
    pub by_kind: BTreeMap<&'static str, u64>,
    /// The verification of the restored log.
    pub verify: crate::verify::Report,
}

/// `yiwang restore`: the archive at `args.file` into the fresh database at `url`.
/// Prints a summary and the verification of the restored log; the projections are
/// the caller's (cli.rs rebuilds them). Err when nothing was restored.
pub async fn restore(url: &str, args: &RestoreArgs) -> anyhow::Result<Restored> {
    let started = Instant::now();
    let mut reader = LineReader {
        inner: open_input(&args.file)?,
        line: 0,
        hasher: Sha256::new(),
    };
    let header = read_header(&mut reader)?;
    // Both engines have the same migrations, numbered alike.
    let latest = Engine::Sqlite
        .latest_schema()
        .min(Engine::Postgres.latest_schema());
    ensure!(
        header.schema_version <= latest,
        "the archive was made at schema version {} and this yiwang knows up to {latest}: restore it with a newer yiwang",
        header.schema_version,
    );
    let s = store::open(url, true).await?;
    let pool = s.pool();
    let engine = Engine::of(&pool);
    refuse_occupied(url, &occupied(&pool).await?)?;
    if let Pool::Postgres(p) = &pool {
        advance_xids(p, header.max_position).await?;
    }
    let mut tx = match &pool {
        Pool::Postgres(p) => {
            let mut tx = p.begin().await?;
            // Appends take ROW EXCLUSIVE: none can slip in while the log is restored.
            sqlx::query("SET LOCAL lock_timeout = '10s'")
                .execute(&mut *tx)
                .await?;
            sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .context("cannot lock the events table (is a service writing to it?)")?;
            Tx::Postgres(tx)
        }
        Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
    };
    let result = match tx.occupied().await {
        Ok(found) if found.is_empty() => load_counted(&mut reader, &mut tx, &header).await,
        Ok(found) => refuse_occupied(url, &found).map(|_| Default::default()),
        Err(e) => Err(e),
    };
    let (events, records, by_kind) = match result {
        Ok(x) => x,
        Err(e) => {
            match tx {
                Tx::Postgres(t) => t.rollback().await.ok(),
                Tx::Sqlite(t) => t.rollback().await.ok(),
            };
            return Err(e.context(format!(
                "restore refused: {} was left without anything from the archive",
                crate::config::redact_url(url)
            )));
        }
    };
    match tx {
        Tx::Postgres(mut t) => {
            // The ticket serials continue after the highest number restored.
            sqlx::query(
                "SELECT setval('ticket_serial_seq', GREATEST( \
                   COALESCE((SELECT MAX(substring(number from 10)::bigint) FROM ticket_view \
                             WHERE number ~ '^[0-9]{8}-[0-9]{1,18}$'), 0) + 1, \
                   (SELECT CASE WHEN is_called THEN last_value + 100 ELSE last_value END FROM ticket_serial_seq)), \
                 false)",
            )
            .execute(&mut *t)
            .await?;
            t.commit().await?;
        }
        Tx::Sqlite(t) => t.commit().await?,
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "restored {events} events ({records} records: {}) from {} ({} archive of {}) into {} ({}) in {secs:.2} s",
        describe_counts(&by_kind),
        args.file.display(),
        header.engine,
        header.exported_at,
        crate::config::redact_url(url),
        engine.name()
    );
    let verify = crate::verify::run(&pool).await?;
    for p in &verify.problems {
        println!("{p}");
    }
    println!("{}", verify.summary());
    Ok(Restored {
        header,
        events,
        records,
        by_kind,
        verify,
    })
}

type Counts = (u64, u64, BTreeMap<&'static str, u64>);

/// [`load`], with the SQLite trigger that wants each event at its stream's head + 1
/// dropped meanwhile (an archive is restored as it is, a damaged log included; the
/// verification after the restore reports what is wrong with it), and the log
/// tally then set from the events restored.
async fn load_counted(r: &mut LineReader, tx: &mut Tx, header: &Header) -> anyhow::Result<Counts> {
    if let Tx::Sqlite(t) = tx {
        sqlx::query("DROP TRIGGER IF EXISTS events_version_follows_head")
            .execute(&mut **t)
            .await?;
    }
    let counts = load(r, tx, header).await?;
    if let Tx::Sqlite(t) = tx {
        sqlx::query(store::sqlite::VERSION_TRIGGER)
            .execute(&mut **t)
            .await?;
    }
    set_tally(tx).await?;
    Ok(counts)
}

/// Sets the log tally (table `log_tally`) from the events in the database: one row,
/// slot 0. On SQLite also where positions are dense from: 0 when the restored ones
/// run 1, 2, … without a hole (an archive of a SQLite log), else the highest (the
/// sparse positions of a PostgreSQL log; new ones count up from there).
async fn set_tally(tx: &mut Tx) -> anyhow::Result<()> {
    let mut tally = store::hash::Tally::default();
    let mut max = 0;
    match tx {
        Tx::Postgres(t) => {
            let mut rows = sqlx::query_as::<_, (i64, Uuid, i64)>(
                "SELECT position, stream_id, version FROM events ORDER BY position",
            )
            .fetch(&mut **t);
            while let Some((position, stream, version)) = rows.try_next().await? {
                tally.add(position, &stream.to_string(), version);
            }
        }
        Tx::Sqlite(t) => {
            let mut rows = sqlx::query_as::<_, (i64, String, i64)>(
                "SELECT position, stream_id, version FROM events ORDER BY position",
            )
            .fetch(&mut **t);
            while let Some((position, stream, version)) = rows.try_next().await? {
                let stream = Uuid::parse_str(&stream).map_or(stream, |u| u.to_string());
                tally.add(position, &stream, version);
                max = position;
            }
        }
    }
    let dense_after = (tally.events != max).then_some(max);
    let sql = "INSERT INTO log_tally (slot, events, streams, digest, dense_after) VALUES (0, $1, $2, $3, $4)";
    match tx {
        Tx::Postgres(t) => {
            sqlx::query("DELETE FROM log_tally")
                .execute(&mut **t)
                .await?;
            sqlx::query(sql)
                .bind(tally.events)
                .bind(tally.streams)
                .bind(tally.digest)
                .bind(None::<i64>)
                .execute(&mut **t)
                .await?;
        }
        Tx::Sqlite(t) => {
            sqlx::query("DELETE FROM log_tally")
                .execute(&mut **t)
                .await?;
            sqlx::query(&sql.replace('$', "?"))
                .bind(tally.events)
                .bind(tally.streams)
                .bind(tally.digest)
                .bind(dense_after.unwrap_or(0))
                .execute(&mut **t)
                .await?;
        }
    }
    Ok(())
}

/// Inserts every record, then checks the trailer; Err leaves the transaction to be
/// rolled back.
async fn load(r: &mut LineReader, tx: &mut Tx, header: &Header) -> anyhow::Result<Counts> {
    let mut pending = Pending::default();
    let mut by_kind: BTreeMap<&'static str, u64> = TABLES.iter().map(|t| (t.kind, 0)).collect();
    let (mut events, mut records, mut max_position) = (0u64, 0u64, 0i64);
    let mut buf = Vec::with_capacity(4096);
    let trailer = loop {
        let Some(complete) = r.next_line(&mut buf)? else {
            bail!(
                "the archive ends after line {} without its trailer: it is truncated",
                r.line
            );
        };
        let line = r.line;
        let fields: BTreeMap<&str, &RawValue> = serde_json::from_slice(&buf).map_err(|e| {
            if complete {
                anyhow::anyhow!("line {line} is not a valid record ({e}): the archive is damaged")
            } else {
                anyhow::anyhow!("the archive ends in the middle of line {line}: it is truncated")
            }
        })?;
        match parse_record(line, &fields)? {
            Parsed::End(t) => break t,
            Parsed::Row(table, vals) => {
                ensure!(
                    complete,
                    "the archive ends in the middle of line {line}: it is truncated"
                );
                if table.kind == "event" {
                    events += 1;
                    if let Some(Val::Int(p)) = vals.first() {
                        max_position = max_position.max(*p);
                    }
                }
                records += 1;
                *by_kind.entry(table.kind).or_default() += 1;
                r.hasher.update(&buf);
                r.hasher.update(b"\n");
                tx.insert(&mut pending, table, vals).await?;
            }
        }
    };
    let trailer_line = r.line;
    if r.next_line(&mut buf)?.is_some() {
        bail!(
            "line {}: more after the trailer (line {trailer_line}): the archive is damaged",
            r.line
        );
    }
    let sha = hex::encode(r.hasher.finalize_reset());
    ensure!(
        trailer.sha256 == sha,
        "the archive's checksum does not match: the trailer says sha256 {} but lines 1 to {} hash to {sha}: \
         the archive was changed or damaged",
        trailer.sha256,
        trailer_line - 1
    );
    ensure!(
        trailer.records == records && trailer.events == events,
        "the trailer counts {} records and {} events, the archive holds {records} and {events}",
        trailer.records,
        trailer.events
    );
    ensure!(
        max_position <= header.max_position,
        "an event at position {max_position} is past the header's max_position {}",
        header.max_position
    );
    tx.flush(&mut pending).await?;
    Ok((events, records, by_kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_json_goes_in_place_only_when_it_reads_back_the_same() {
        assert!(fits_in_place(r#"{"a":1,"b":[1.5,"二"]}"#));
        assert!(!fits_in_place("{\"a\":\n1}"));
        assert!(!fits_in_place(" {\"a\":1}"));
        assert!(!fits_in_place("{\"a\":"));
    }

    fn event_line(vals: &[Val]) -> Vec<u8> {
        let mut w = LineWriter::new(Vec::new());
        w.record(&TABLES[2], vals).unwrap();
        w.out
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let vals = vec![
            Val::Int(7),
            Val::Text(Some(Uuid::nil().to_string())),
            Val::Int(1),
            Val::Text(Some("TicketAccepted".into())),
            Val::Int(1),
            Val::Text(Some(r#"{"z":1,"a":"引号\"x"}"#.into())),
            Val::Text(Some("not json".into())),
            Val::Text(Some("2026-10-01T02:00:00.000001Z".into())),
            Val::Text(Some("2026-10-01T02:00:00.123Z".into())),
            Val::Text(Some("0".repeat(64))),
            Val::Text(Some("f".repeat(64))),
        ];
        let line = event_line(&vals);
        assert!(line.ends_with(b"}\n"));
        let text = std::str::from_utf8(&line).unwrap();
        assert!(
            text.starts_with(r#"{"kind":"event","position":7,"#),
            "{text}"
        );
        assert!(text.contains(r#""data":{"z":1,"a":"引号\"x"}"#), "{text}");
        assert!(text.contains(r#""metadata_text":"not json""#), "{text}");
        let fields: BTreeMap<&str, &RawValue> =
            serde_json::from_slice(&line[..line.len() - 1]).unwrap();
        match parse_record(2, &fields).unwrap() {
            Parsed::Row(t, back) => {
                assert_eq!(t.kind, "event");
                assert_eq!(back, vals);
            }
            Parsed::End(_) => panic!("not the trailer"),
        }
    }

    #[test]
    fn bad_records_are_named_by_line() {
        let parse = |s: &str| {
            let fields: BTreeMap<&str, &RawValue> = serde_json::from_str(s).unwrap();
            parse_record(9, &fields)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        assert!(parse(r#"{"kind":"nope"}"#).contains("line 9: unknown record kind"));
        assert!(parse(r#"{"kind":"contact","id":"x"}"#).contains("line 9: contact field \"id\""));
        let e = parse(
            r#"{"kind":"contact","id":"00000000-0000-0000-0000-000000000000","name":null,"phone":null,"created_at":"2026-01-01T00:00:00Z","purged_at":null,"extra":1}"#,
        );
        assert!(e.contains("fields this format does not have: extra"), "{e}");
        let e = parse(
            r#"{"kind":"contact","id":"00000000-0000-0000-0000-000000000000","name":null,"phone":null,"created_at":null,"purged_at":null}"#,
        );
        assert!(e.contains("\"created_at\": is null"), "{e}");
    }
}
