//! `profile`: where one command's cost goes (issue 24, point 1).
//!
//! One command kind at a time (create, the idempotent replay of a create, then each
//! lifecycle step in order) at N clients against one `yiwang serve`, and for each
//! phase, per command: the service's CPU (`/proc/PID/stat`), PostgreSQL's CPU (the
//! postmaster and all its children, `/proc`, including children that exited during
//! the phase through the postmaster's cutime/cstime), bytes of WAL (the
//! `pg_current_wal_lsn()` difference) with `pg_stat_wal`'s records, full-page images
//! and syncs, transactions committed (`pg_stat_database`), statements executed
//! (`pg_stat_statements`, where the server preloads it), rows inserted / updated /
//! HOT-updated per table (`pg_stat_user_tables`), and an estimate of index entries
//! written: rows inserted × the table's indexes + non-HOT updates × the table's
//! indexes. On SQLite: the service's CPU, its bytes written (`/proc/PID/io`) and the
//! rows added per table (`count(*)` differences).
//!
//! The create phase runs for `--duration` seconds; every later phase acts once on
//! each ticket that phase created, so all phases carry the same number of commands.
//! PostgreSQL's cumulative statistics reach the views only when a backend flushes
//! them (at most every second while busy, 10 s after it goes idle), so after each
//! phase the profiler waits `--settle` seconds before reading them; the CPU, the WAL
//! position and `pg_stat_statements` are read at the phase's ends.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use crate::ceiling::{self, Engine};
use crate::lifecycle::{self, Reply, Role, STEPS, Target, Tokens};
use crate::service;
use crate::stats::{self, Latency, f1, f2, print_table};

/// How many failing responses are printed in full.
const PRINTED_ERRORS: usize = 5;
/// Statements listed per phase in the printed report (all of them go to the JSON).
const PRINTED_STATEMENTS: usize = 12;

#[derive(Args, Debug)]
pub struct ProfileArgs {
    /// The service binary, e.g. target/release/yiwang.
    #[arg(long)]
    bin: PathBuf,
    /// sqlite:///path/yiwang.db or postgres://user@127.0.0.1:5432/db (loopback only; a
    /// fresh database: the profiler migrates it and loads the demo organisation).
    #[arg(long)]
    database_url: String,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    clients: u32,
    /// Seconds of creates; every later phase acts once on each ticket created then.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    duration: u64,
    /// Seconds of whole lifecycles before the first phase, not measured.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=600))]
    warmup: u64,
    /// Seconds to wait after each phase before reading PostgreSQL's cumulative
    /// statistics (an idle backend flushes its pending counts 10 s after it went idle).
    #[arg(long, default_value_t = 11, value_parser = clap::value_parser!(u64).range(0..=120))]
    settle: u64,
    /// The phases, in order: create, then optionally replay, then the lifecycle steps
    /// from the first one on (assign, sign, handle, verify, feedback, close).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "create,replay,assign,sign,handle,verify,feedback,close"
    )]
    kinds: Vec<String>,
    /// PostgreSQL: do not run CHECKPOINT between phases (by default each phase starts
    /// right after one, so each starts from the same state and full-page images count
    /// alike in every phase).
    #[arg(long)]
    no_checkpoint: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// One kind of command the profiler drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Create,
    /// The same POST as a create, with the same Idempotency-Key: the stored answer.
    Replay,
    /// `STEPS[i]`.
    Step(usize),
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Replay => "replay",
            Kind::Step(i) => STEPS.get(i).map_or("?", |s| s.action),
        }
    }
}

/// `create[,replay],assign,sign,…`: create first, the steps in lifecycle order from
/// the first, since each step needs the state the previous one left.
fn parse_kinds(names: &[String]) -> Result<Vec<Kind>> {
    let mut kinds = Vec::new();
    let mut next_step = 0;
    for (i, raw) in names.iter().enumerate() {
        let name = raw.trim();
        let kind = match name {
            "create" if i == 0 => Kind::Create,
            "replay" if i == 1 => Kind::Replay,
            _ => match STEPS.iter().position(|s| s.action == name) {
                Some(p) if p == next_step && i > 0 => {
                    next_step += 1;
                    Kind::Step(p)
                }
                _ => bail!(
                    "--kinds: {name:?} out of place; give create first, then optionally replay, then steps in order from {:?}: {}",
                    STEPS[0].action,
                    STEPS.iter().map(|s| s.action).collect::<Vec<_>>().join(",")
                ),
            },
        };
        kinds.push(kind);
    }
    if kinds.first() != Some(&Kind::Create) {
        bail!("--kinds must start with create");
    }
    Ok(kinds)
}

// ---------------------------------------------------------------------------------
// /proc

/// The CPU fields of `/proc/PID/stat`, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ProcStat {
    ppid: u32,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
}

/// Parses a `/proc/PID/stat` line; the command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(line: &str) -> Option<ProcStat> {
    let rest = &line[line.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok());
    Some(ProcStat {
        ppid: f.get(1)?.parse().ok()?,
        utime: num(11)?,
        stime: num(12)?,
        cutime: num(13)?,
        cstime: num(14)?,
    })
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn self_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat(&s))
        .map_or(0, |s| s.utime + s.stime)
}

/// The children of `parent` (any process whose ppid it is), with their CPU.
fn children(parent: u32) -> BTreeMap<u32, u64> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(s) = proc_stat(pid)
            && s.ppid == parent
        {
            out.insert(pid, s.utime + s.stime);
        }
    }
    out
}

/// `/proc/stat`'s first line: (busy, total) ticks of the whole machine; idle and
/// iowait are not busy.
fn parse_machine(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().next()?;
    let mut f = line.split_whitespace();
    if f.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = f.filter_map(|s| s.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest and guest_nice are
    // already inside user and nice).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

fn machine() -> (u64, u64) {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| parse_machine(&s))
        .unwrap_or((0, 0))
}

/// `/proc/PID/io`: bytes sent to the storage layer, bytes passed to write(2)-like
/// calls, and their count.
#[derive(Clone, Copy, Debug, Default)]
struct ProcIo {
    write_bytes: u64,
    wchar: u64,
    syscw: u64,
}

fn proc_io(pid: u32) -> Option<ProcIo> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.trim().parse::<u64>().ok())
    };
    Some(ProcIo {
        write_bytes: get("write_bytes:")?,
        wchar: get("wchar:")?,
        syscw: get("syscw:")?,
    })
}

/// The load average, as `uptime` prints it.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Clock ticks per second of the `/proc` CPU fields (USER_HZ).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        // USER_HZ is 100 on every Linux architecture this runs on.
        .unwrap_or(100.0)
}

/// CPU at one instant: the service, the PostgreSQL cluster (when it is local), this
/// load tool, the machine.
#[derive(Clone, Debug, Default)]
struct Cpu {
    service: u64,
    /// Postmaster (with its exited children) + every live child.
    pg_total: Option<u64>,
    /// Per live child of the postmaster.
    pg_children: BTreeMap<u32, u64>,
    load_tool: u64,
    machine_busy: u64,
    machine_total: u64,
}

fn cpu_now(service: u32, postmaster: Option<u32>) -> Cpu {
    let service = proc_stat(service).map_or(0, |s| s.utime + s.stime);
    let (pg_total, pg_children) = match postmaster.and_then(|p| Some((p, proc_stat(p)?))) {
        Some((pm, s)) => {
            let kids = children(pm);
            let total = s.utime + s.stime + s.cutime + s.cstime + kids.values().sum::<u64>();
            (Some(total), kids)
        }
        None => (None, BTreeMap::new()),
    };
    let (machine_busy, machine_total) = machine();
    Cpu {
        service,
        pg_total,
        pg_children,
        load_tool: self_ticks(),
        machine_busy,
        machine_total,
    }
}

// ---------------------------------------------------------------------------------
// PostgreSQL's and SQLite's counters

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct TableCounts {
    ins: i64,
    upd: i64,
    hot: i64,
    del: i64,
    indexes: i64,
}

/// Cumulative counters read after the previous phase settled.
#[derive(Clone, Debug, Default)]
struct PgCounters {
    wal_records: i64,
    wal_fpi: i64,
    wal_bytes: i64,
    wal_write: i64,
    wal_sync: i64,
    xact_commit: i64,
    xact_rollback: i64,
    checkpoints: i64,
    tables: BTreeMap<String, TableCounts>,
}

#[derive(Clone, Debug)]
struct Statement {
    query: String,
    calls: i64,
    rows: i64,
    total_ms: f64,
    /// WAL this statement wrote (pg_stat_statements 1.8+).
    wal_bytes: i64,
    wal_fpi: i64,
}

/// Index entries written, estimated: every inserted row and every non-HOT update
/// writes one entry into each index of its table (a HOT update writes none).
/// Partial indexes are left out of the count on PostgreSQL (whether a row enters one
/// depends on its predicate), and a GIN index counts as one entry per row although
/// it writes one per key, so this is a floor for tables with either.
fn index_entries(t: &TableCounts) -> i64 {
    (t.ins + (t.upd - t.hot)) * t.indexes
}

fn table_delta(a: &TableCounts, b: &TableCounts) -> TableCounts {
    TableCounts {
        ins: b.ins - a.ins,
        upd: b.upd - a.upd,
        hot: b.hot - a.hot,
        del: b.del - a.del,
        indexes: b.indexes,
    }
}

struct PgProbe {
    /// One connection to the service's database (per-database views).
    target: PgPool,
    /// One connection to the `postgres` database (cluster-wide views and
    /// `pg_stat_statements`, so that these queries do not count against the service's
    /// database).
    admin: PgPool,
    db_oid: i64,
    postmaster: Option<u32>,
    statements: bool,
}

impl PgProbe {
    async fn connect(url: &str) -> Result<Self> {
        let opts = PgConnectOptions::from_str(url).context("parsing the PostgreSQL URL")?;
        let one = || PgPoolOptions::new().max_connections(1).min_connections(1);
        let target = one()
            .connect_with(opts.clone())
            .await
            .context("connecting to the service's database")?;
        let admin = one()
            .connect_with(opts.database("postgres"))
            .await
            .context("connecting to the postgres database")?;
        let db_oid: i64 = sqlx::query_scalar(
            "SELECT oid::bigint FROM pg_database WHERE datname = current_database()",
        )
        .fetch_one(&target)
        .await?;
        // The postmaster is the parent of our own backend, when the server runs here.
        let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&admin)
            .await?;
        let postmaster = u32::try_from(backend)
            .ok()
            .and_then(proc_stat)
            .map(|s| s.ppid)
            .filter(|pm| {
                std::fs::read_to_string(format!("/proc/{pm}/comm"))
                    .is_ok_and(|c| c.trim().starts_with("postgres"))
            });
        if postmaster.is_none() {
            eprintln!(
                "profile: the PostgreSQL server's processes are not visible here; no PostgreSQL CPU"
            );
        }
        // pg_stat_statements only where the server already preloads it: the profiler
        // never asks for a restart, and creates the extension in `postgres` only then.
        let preload: String =
            sqlx::query_scalar("SELECT current_setting('shared_preload_libraries')")
                .fetch_one(&admin)
                .await?;
        let statements = preload.contains("pg_stat_statements")
            && sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                .execute(&admin)
                .await
                .is_ok()
            && sqlx::query("SELECT pg_stat_statements_reset()")
                .execute(&admin)
                .await
                .is_ok();
        if !statements {
            eprintln!(
                "profile: pg_stat_statements is not preloaded on this server; statements per command are not counted (commits per command are)"
            );
        }
        Ok(PgProbe {
            target,
            admin,
            db_oid,
            postmaster,
            statements,
        })
    }

    /// Client backends of the service's database on TLS, of all of them (sqlx's
    /// default `sslmode=prefer` takes TLS whenever the server offers it).
    async fn tls(&self) -> Result<(i64, i64)> {
        let r = sqlx::query(
            "SELECT count(*) FILTER (WHERE s.ssl) AS tls, count(*) AS all \
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.datid = $1::bigint::oid AND a.backend_type = 'client backend'",
        )
        .bind(self.db_oid)
        .fetch_one(&self.admin)
        .await?;
        Ok((r.try_get("tls")?, r.try_get("all")?))
    }

    async fn checkpoint(&self) -> Result<()> {
        sqlx::query("CHECKPOINT").execute(&self.admin).await?;
        Ok(())
    }

    async fn lsn(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
                .fetch_one(&self.admin)
                .await?,
        )
    }

    /// Client backends of other databases: others' work on the same cluster, whose
    /// CPU and WAL would be counted here too.
    async fn other_backends(&self) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
             AND datid IS DISTINCT FROM $1::bigint::oid AND pid <> pg_backend_pid()",
        )
        .bind(self.db_oid)
        .fetch_one(&self.admin)
        .await?)
    }

    /// pid → backend type, for the processes of this cluster.
    async fn backend_types(&self) -> Result<HashMap<u32, String>> {
        let rows = sqlx::query(
            "SELECT pid, CASE WHEN backend_type = 'client backend' AND datid = $1::bigint::oid \
             THEN 'service backend' ELSE backend_type END AS kind FROM pg_stat_activity",
        )
        .bind(self.db_oid)
        .fetch_all(&self.admin)
        .await?;
        let mut out = HashMap::new();
        for r in rows {
            let pid: i32 = r.try_get("pid")?;
            let kind: Option<String> = r.try_get("kind")?;
            if let Ok(pid) = u32::try_from(pid) {
                out.insert(pid, kind.unwrap_or_default());
            }
        }
        Ok(out)
    }

    async fn counters(&self) -> Result<PgCounters> {
        let w = sqlx::query(
            "SELECT wal_records, wal_fpi, wal_bytes::bigint AS wal_bytes, wal_write, wal_sync \
             FROM pg_stat_wal",
        )
        .fetch_one(&self.admin)
        .await?;
        let d = sqlx::query(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datid = $1::bigint::oid",
        )
        .bind(self.db_oid)
        .fetch_one(&self.admin)
        .await?;
        let checkpoints: i64 =
            sqlx::query_scalar("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
                .fetch_one(&self.admin)
                .await?;
        let rows = sqlx::query(
            "SELECT CASE WHEN t.schemaname = 'public' THEN t.relname \
             ELSE t.schemaname || '.' || t.relname END AS name, \
             t.n_tup_ins, t.n_tup_upd, t.n_tup_hot_upd, t.n_tup_del, \
             (SELECT count(*) FROM pg_index i WHERE i.indrelid = t.relid AND i.indpred IS NULL) \
             AS indexes \
             FROM pg_stat_user_tables t",
        )
        .fetch_all(&self.target)
        .await?;
        let mut tables = BTreeMap::new();
        for r in rows {
            tables.insert(
                r.try_get::<String, _>("name")?,
                TableCounts {
                    ins: r.try_get("n_tup_ins")?,
                    upd: r.try_get("n_tup_upd")?,
                    hot: r.try_get("n_tup_hot_upd")?,
                    del: r.try_get("n_tup_del")?,
                    indexes: r.try_get("indexes")?,
                },
            );
        }
        Ok(PgCounters {
            wal_records: w.try_get("wal_records")?,
            wal_fpi: w.try_get("wal_fpi")?,
            wal_bytes: w.try_get("wal_bytes")?,
            wal_write: w.try_get("wal_write")?,
            wal_sync: w.try_get("wal_sync")?,
            xact_commit: d.try_get("xact_commit")?,
            xact_rollback: d.try_get("xact_rollback")?,
            checkpoints,
            tables,
        })
    }

    async fn reset_statements(&self) -> Result<()> {
        if self.statements {
            sqlx::query("SELECT pg_stat_statements_reset()")
                .execute(&self.admin)
                .await?;
        }
        Ok(())
    }

    /// The service database's statements since the last reset, most called first.
    async fn statements(&self) -> Result<Vec<Statement>> {
        if !self.statements {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT query, calls, rows, total_exec_time, wal_bytes::bigint AS wal_bytes, wal_fpi \
             FROM pg_stat_statements \
             WHERE dbid = $1::bigint::oid ORDER BY total_exec_time DESC",
        )
        .bind(self.db_oid)
        .fetch_all(&self.admin)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Statement {
                    query: r.try_get("query")?,
                    calls: r.try_get("calls")?,
                    rows: r.try_get("rows")?,
                    total_ms: r.try_get("total_exec_time")?,
                    wal_bytes: r.try_get("wal_bytes")?,
                    wal_fpi: r.try_get("wal_fpi")?,
                })
            })
            .collect()
    }
}

/// Rows and indexes per table of the SQLite database.
struct SqliteProbe {
    pool: SqlitePool,
}

impl SqliteProbe {
    async fn connect(url: &str) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .context("parsing the SQLite URL")?
            .read_only(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .context("opening the SQLite database read-only")?;
        Ok(SqliteProbe { pool })
    }

    /// table → (rows, indexes). Virtual tables are left out (their shadow tables are
    /// ordinary tables and counted).
    async fn tables(&self) -> Result<BTreeMap<String, TableCounts>> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL%'",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = BTreeMap::new();
        for name in names {
            let quoted = name.replace('"', "\"\"");
            let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM \"{quoted}\""
            )))
            .fetch_one(&self.pool)
            .await?;
            let indexes: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 \
                 AND coalesce(upper(sql), '') NOT LIKE '% WHERE %'",
            )
            .bind(&name)
            .fetch_one(&self.pool)
            .await?;
            out.insert(
                name,
                TableCounts {
                    ins: rows,
                    indexes,
                    ..TableCounts::default()
                },
            );
        }
        Ok(out)
    }
}

enum Probe {
    Pg(PgProbe),
    Sqlite(SqliteProbe),
}

#[derive(Clone, Debug, Default)]
struct Counters {
    pg: Option<PgCounters>,
    tables: BTreeMap<String, TableCounts>,
}

impl Probe {
    async fn counters(&self) -> Result<Counters> {
        match self {
            Probe::Pg(p) => {
                let c = p.counters().await?;
                Ok(Counters {
                    tables: c.tables.clone(),
                    pg: Some(c),
                })
            }
            Probe::Sqlite(s) => Ok(Counters {
                pg: None,
                tables: s.tables().await?,
            }),
        }
    }
}

// ---------------------------------------------------------------------------------
// Driving one kind

struct Ticket {
    id: String,
    key: String,
    n: u64,
    /// False once a command on it failed: later phases skip it.
    alive: AtomicBool,
}

struct Driven {
    histogram: Histogram<u64>,
    errors: u64,
}

impl Driven {
    fn new() -> Self {
        Driven {
            histogram: stats::new_histogram(),
            errors: 0,
        }
    }

    fn merge(&mut self, o: &Driven) {
        stats::merge(&mut self.histogram, &o.histogram);
        self.errors += o.errors;
    }

    fn fail(&mut self, printed: &AtomicUsize, what: &str) {
        self.errors += 1;
        if printed.fetch_add(1, Ordering::Relaxed) < PRINTED_ERRORS {
            eprintln!("profile error: {what}");
        }
    }
}

fn token(t: &Tokens, r: Role) -> &str {
    match r {
        Role::Hotline => &t.hotline,
        Role::Dispatcher => &t.dispatcher,
        Role::Handler => &t.handler,
    }
}

/// Creates until `deadline`; the tickets created and the tally.
async fn create_client(
    http: reqwest::Client,
    target: Arc<Target>,
    deadline: Instant,
    counter: Arc<AtomicU64>,
    printed: Arc<AtomicUsize>,
) -> (Vec<Ticket>, Driven) {
    let url = format!("{}/api/v1/tickets", target.base);
    let mut d = Driven::new();
    let mut tickets = Vec::new();
    while Instant::now() < deadline {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let key = uuid::Uuid::new_v4().to_string();
        let body = lifecycle::create_body(&target.org, n);
        let t0 = Instant::now();
        let reply = lifecycle::post(&http, &url, &target.tokens.hotline, &key, &body).await;
        let took = t0.elapsed();
        match reply {
            Reply::Ok(v) => match (
                v.get("id").and_then(Value::as_str),
                lifecycle::state_is(&v, "accepted"),
            ) {
                (Some(id), Ok(())) => {
                    stats::record(&mut d.histogram, took);
                    tickets.push(Ticket {
                        id: id.to_string(),
                        key,
                        n,
                        alive: AtomicBool::new(true),
                    });
                }
                (None, _) => d.fail(&printed, "create: response has no \"id\""),
                (_, Err(e)) => d.fail(&printed, &format!("create: {e}")),
            },
            Reply::Failed(e) => d.fail(&printed, &format!("create: {e}")),
        }
    }
    (tickets, d)
}

/// Takes the next ticket until none is left and sends it the `kind` command.
async fn ticket_client(
    http: reqwest::Client,
    target: Arc<Target>,
    tickets: Arc<Vec<Ticket>>,
    next: Arc<AtomicUsize>,
    kind: Kind,
    printed: Arc<AtomicUsize>,
) -> Driven {
    let base = format!("{}/api/v1/tickets", target.base);
    let mut d = Driven::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(t) = tickets.get(i) else { break };
        if !t.alive.load(Ordering::Relaxed) {
            continue;
        }
        let t0 = Instant::now();
        let outcome = match kind {
            Kind::Create => Err("create is not a per-ticket phase".to_string()),
            Kind::Replay => {
                let body = lifecycle::create_body(&target.org, t.n);
                match lifecycle::post(&http, &base, &target.tokens.hotline, &t.key, &body).await {
                    Reply::Ok(v) if v.get("id").and_then(Value::as_str) == Some(&t.id) => Ok(()),
                    Reply::Ok(v) => Err(format!(
                        "replay with key {}: id {}, expected {:?}",
                        t.key,
                        v.get("id").cloned().unwrap_or(Value::Null),
                        t.id
                    )),
                    Reply::Failed(e) => Err(format!("replay with key {}: {e}", t.key)),
                }
            }
            Kind::Step(s) => match STEPS.get(s) {
                Some(step) => {
                    let url = format!("{base}/{}/{}", t.id, step.action);
                    let key = uuid::Uuid::new_v4().to_string();
                    let body = (step.body)(&target.org);
                    let tok = token(&target.tokens, step.role);
                    match lifecycle::post(&http, &url, tok, &key, &body).await {
                        Reply::Ok(v) => lifecycle::state_is(&v, step.state)
                            .map_err(|e| format!("{} {}: {e}", step.action, t.id)),
                        Reply::Failed(e) => Err(format!("{} {}: {e}", step.action, t.id)),
                    }
                }
                None => Err(format!("no step {s}")),
            },
        };
        let took = t0.elapsed();
        match outcome {
            Ok(()) => stats::record(&mut d.histogram, took),
            Err(e) => {
                t.alive.store(false, Ordering::Relaxed);
                d.fail(&printed, &e);
            }
        }
    }
    d
}

// ---------------------------------------------------------------------------------
// One phase's figures

#[derive(Clone, Debug)]
struct PhaseReport {
    kind: Kind,
    commands: u64,
    errors: u64,
    seconds: f64,
    latency: Latency,
    loadavg_start: String,
    loadavg_end: String,
    /// Milliseconds of CPU per command.
    service_ms: f64,
    pg_ms: Option<f64>,
    /// PostgreSQL CPU by process kind (service backend, walwriter, checkpointer, …,
    /// "postmaster and exited" for the rest), ms per command.
    pg_ms_by_kind: BTreeMap<String, f64>,
    load_tool_ms: f64,
    /// The machine's busy CPU not accounted to the service, PostgreSQL or this tool.
    rest_ms: f64,
    machine_busy_percent: f64,
    wal_bytes: Option<i64>,
    pg: Option<PgDelta>,
    /// Per table: the counters' difference over the phase.
    tables: BTreeMap<String, TableCounts>,
    statements: Vec<Statement>,
    other_backends: Option<i64>,
    service_io: Option<ProcIo>,
}

#[derive(Clone, Debug, Default)]
struct PgDelta {
    wal_records: i64,
    wal_fpi: i64,
    wal_bytes_stat: i64,
    wal_write: i64,
    wal_sync: i64,
    xact_commit: i64,
    xact_rollback: i64,
    checkpoints: i64,
}

impl PhaseReport {
    fn per(&self, x: f64) -> f64 {
        if self.commands > 0 {
            x / self.commands as f64
        } else {
            0.0
        }
    }

    fn rows(&self) -> (i64, i64, i64, i64) {
        self.tables.values().fold((0, 0, 0, 0), |a, t| {
            (
                a.0 + t.ins,
                a.1 + t.upd,
                a.2 + t.hot,
                a.3 + index_entries(t),
            )
        })
    }

    fn statement_calls(&self) -> i64 {
        self.statements.iter().map(|s| s.calls).sum()
    }

    fn json(&self) -> Value {
        let per = |x: i64| stats::round3(self.per(x as f64));
        let (ins, upd, hot, idx) = self.rows();
        let tables: serde_json::Map<String, Value> = self
            .tables
            .iter()
            .filter(|(_, t)| t.ins != 0 || t.upd != 0 || t.del != 0)
            .map(|(name, t)| {
                (
                    name.clone(),
                    json!({
                        "inserted": t.ins, "updated": t.upd, "hot_updated": t.hot, "deleted": t.del,
                        "indexes": t.indexes, "index_entries_estimated": index_entries(t),
                        "inserted_per_command": per(t.ins), "updated_per_command": per(t.upd),
                        "hot_updated_per_command": per(t.hot),
                        "index_entries_per_command": per(index_entries(t)),
                    }),
                )
            })
            .collect();
        let statements: Vec<Value> = self
            .statements
            .iter()
            .map(|s| {
                json!({
                    "query": s.query, "calls": s.calls, "rows": s.rows,
                    "total_ms": stats::round3(s.total_ms),
                    "calls_per_command": per(s.calls),
                    "wal_bytes": s.wal_bytes, "wal_fpi": s.wal_fpi,
                    "wal_bytes_per_command": per(s.wal_bytes),
                })
            })
            .collect();
        json!({
            "kind": self.kind.name(),
            "commands": self.commands,
            "errors": self.errors,
            "seconds": stats::round3(self.seconds),
            "commands_per_s": stats::round3(stats::rate(self.commands, self.seconds)),
            "latency": self.latency.json(),
            "loadavg_start": self.loadavg_start,
            "loadavg_end": self.loadavg_end,
            "cpu_ms_per_command": {
                "service": stats::round3(self.service_ms),
                "postgres": self.pg_ms.map(stats::round3),
                "postgres_by_process": self.pg_ms_by_kind.iter()
                    .map(|(k, v)| (k.clone(), json!(stats::round3(*v)))).collect::<serde_json::Map<_, _>>(),
                "load_tool": stats::round3(self.load_tool_ms),
                "rest_of_machine": stats::round3(self.rest_ms),
            },
            "machine_busy_percent": stats::round3(self.machine_busy_percent),
            "wal_bytes": self.wal_bytes,
            "wal_bytes_per_command": self.wal_bytes.map(per),
            "postgres": self.pg.as_ref().map(|p| json!({
                "wal_records": p.wal_records, "wal_fpi": p.wal_fpi,
                "wal_bytes_pg_stat_wal": p.wal_bytes_stat, "wal_write": p.wal_write, "wal_sync": p.wal_sync,
                "xact_commit": p.xact_commit, "xact_rollback": p.xact_rollback,
                "checkpoints": p.checkpoints,
                "wal_records_per_command": per(p.wal_records), "wal_fpi_per_command": per(p.wal_fpi),
                "wal_sync_per_command": per(p.wal_sync), "commits_per_command": per(p.xact_commit),
                "statements_per_command": if self.statements.is_empty() { Value::Null } else { json!(per(self.statement_calls())) },
                "other_client_backends": self.other_backends,
            })),
            "rows_inserted_per_command": per(ins),
            "rows_updated_per_command": per(upd),
            "rows_hot_updated_per_command": per(hot),
            "index_entries_per_command": per(idx),
            "tables": tables,
            "statements": statements,
            "service_io": self.service_io.map(|io| json!({
                "write_bytes": io.write_bytes, "wchar": io.wchar, "syscw": io.syscw,
                "write_bytes_per_command": per(i64::try_from(io.write_bytes).unwrap_or(i64::MAX)),
                "wchar_per_command": per(i64::try_from(io.wchar).unwrap_or(i64::MAX)),
                "syscw_per_command": per(i64::try_from(io.syscw).unwrap_or(i64::MAX)),
            })),
        })
    }
}

fn sub_io(a: Option<ProcIo>, b: Option<ProcIo>) -> Option<ProcIo> {
    let (a, b) = (a?, b?);
    Some(ProcIo {
        write_bytes: b.write_bytes.saturating_sub(a.write_bytes),
        wchar: b.wchar.saturating_sub(a.wchar),
        syscw: b.syscw.saturating_sub(a.syscw),
    })
}

/// Everything the phases share.
struct Bench<'a> {
    a: &'a ProfileArgs,
    engine: Engine,
    http: reqwest::Client,
    target: Arc<Target>,
    probe: Probe,
    service_pid: u32,
    ticks_per_s: f64,
    printed: Arc<AtomicUsize>,
}

impl Bench<'_> {
    fn postmaster(&self) -> Option<u32> {
        match &self.probe {
            Probe::Pg(p) => p.postmaster,
            Probe::Sqlite(_) => None,
        }
    }

    /// After a phase: CHECKPOINT (unless told not to), then wait for the backends to
    /// flush their statistics.
    async fn settle(&self) -> Result<()> {
        if let Probe::Pg(p) = &self.probe {
            if !self.a.no_checkpoint {
                p.checkpoint().await?;
            }
            tokio::time::sleep(Duration::from_secs(self.a.settle)).await;
        }
        Ok(())
    }

    async fn phase(
        &self,
        kind: Kind,
        tickets: &mut Arc<Vec<Ticket>>,
        before: &Counters,
    ) -> Result<(PhaseReport, Counters)> {
        let (types, other_backends) = match &self.probe {
            Probe::Pg(p) => {
                p.reset_statements().await?;
                (p.backend_types().await?, Some(p.other_backends().await?))
            }
            Probe::Sqlite(_) => (HashMap::new(), None),
        };
        let lsn0 = match &self.probe {
            Probe::Pg(p) => Some(p.lsn().await?),
            Probe::Sqlite(_) => None,
        };
        let loadavg_start = loadavg();
        let io0 = proc_io(self.service_pid);
        let cpu0 = cpu_now(self.service_pid, self.postmaster());
        let t0 = Instant::now();
        let mut driven = Driven::new();
        if kind == Kind::Create {
            let deadline = t0 + Duration::from_secs(self.a.duration);
            let counter = Arc::new(AtomicU64::new(1_000_000));
            let tasks: Vec<_> = (0..self.a.clients)
                .map(|_| {
                    tokio::spawn(create_client(
                        self.http.clone(),
                        self.target.clone(),
                        deadline,
                        counter.clone(),
                        self.printed.clone(),
                    ))
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                let (mut made, d) = t.await.context("a client task panicked")?;
                all.append(&mut made);
                driven.merge(&d);
            }
            *tickets = Arc::new(all);
        } else {
            let next = Arc::new(AtomicUsize::new(0));
            let tasks: Vec<_> = (0..self.a.clients)
                .map(|_| {
                    tokio::spawn(ticket_client(
                        self.http.clone(),
                        self.target.clone(),
                        tickets.clone(),
                        next.clone(),
                        kind,
                        self.printed.clone(),
                    ))
                })
                .collect();
            for t in tasks {
                driven.merge(&t.await.context("a client task panicked")?);
            }
        }
        let seconds = t0.elapsed().as_secs_f64();
        let cpu1 = cpu_now(self.service_pid, self.postmaster());
        let io1 = proc_io(self.service_pid);
        let loadavg_end = loadavg();
        let (lsn1, statements) = match &self.probe {
            Probe::Pg(p) => (Some(p.lsn().await?), p.statements().await?),
            Probe::Sqlite(_) => (None, Vec::new()),
        };
        self.settle().await?;
        let after = self.probe.counters().await?;

        let commands = driven.histogram.len();
        let ms = |ticks: u64| {
            if commands == 0 {
                0.0
            } else {
                ticks as f64 * 1000.0 / self.ticks_per_s / commands as f64
            }
        };
        let service = cpu1.service.saturating_sub(cpu0.service);
        let pg = match (cpu0.pg_total, cpu1.pg_total) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
        let mut children = 0u64;
        for (pid, t1) in &cpu1.pg_children {
            let d = t1.saturating_sub(cpu0.pg_children.get(pid).copied().unwrap_or(0));
            children += d;
            let k = types
                .get(pid)
                .cloned()
                .unwrap_or_else(|| "started during the phase".into());
            *by_kind.entry(k).or_default() += d;
        }
        if let Some(total) = pg {
            by_kind.insert(
                "postmaster and exited children".into(),
                total.saturating_sub(children),
            );
        }
        let load_tool = cpu1.load_tool.saturating_sub(cpu0.load_tool);
        let busy = cpu1.machine_busy.saturating_sub(cpu0.machine_busy);
        let total = cpu1.machine_total.saturating_sub(cpu0.machine_total);
        let rest = busy.saturating_sub(service + pg.unwrap_or(0) + load_tool);
        let tables = after
            .tables
            .iter()
            .map(|(name, b)| {
                let a = before.tables.get(name).copied().unwrap_or_default();
                (name.clone(), table_delta(&a, b))
            })
            .collect();
        let pg_delta = match (&before.pg, &after.pg) {
            (Some(a), Some(b)) => Some(PgDelta {
                wal_records: b.wal_records - a.wal_records,
                wal_fpi: b.wal_fpi - a.wal_fpi,
                wal_bytes_stat: b.wal_bytes - a.wal_bytes,
                wal_write: b.wal_write - a.wal_write,
                wal_sync: b.wal_sync - a.wal_sync,
                xact_commit: b.xact_commit - a.xact_commit,
                xact_rollback: b.xact_rollback - a.xact_rollback,
                checkpoints: b.checkpoints - a.checkpoints,
            }),
            _ => None,
        };
        let report = PhaseReport {
            kind,
            commands,
            errors: driven.errors,
            seconds,
            latency: Latency::of(&driven.histogram),
            loadavg_start,
            loadavg_end,
            service_ms: ms(service),
            pg_ms: pg.map(ms),
            pg_ms_by_kind: by_kind.into_iter().map(|(k, v)| (k, ms(v))).collect(),
            load_tool_ms: ms(load_tool),
            rest_ms: ms(rest),
            machine_busy_percent: if total > 0 {
                busy as f64 * 100.0 / total as f64
            } else {
                0.0
            },
            wal_bytes: lsn0.zip(lsn1).map(|(a, b)| b - a),
            pg: pg_delta,
            tables,
            statements,
            other_backends,
            service_io: sub_io(io0, io1),
        };
        Ok((report, after))
    }
}

// ---------------------------------------------------------------------------------
// The subcommand

pub async fn run(a: ProfileArgs) -> Result<bool> {
    let engine = ceiling::ensure_local(&a.database_url)?;
    let kinds = parse_kinds(&a.kinds)?;
    let cli = service::Cli::new(&a.bin, &a.database_url)?;
    let http = crate::http_client(a.clients)?;
    eprintln!("preparing the database: migrate, org load --demo, tokens");
    cli.run(&["migrate"]).await?;
    cli.run(&["org", "load", "--demo"]).await?;
    let admin = cli.token("load-admin", "admin", None).await?;
    let server = service::Server::start(&cli, &http).await?;
    eprintln!(
        "yiwang serve is up at {} (log {})",
        server.base,
        server.log.display()
    );
    let pid = server.pid().context("the server has no pid")?;
    let outcome = tokio::select! {
        r = profile(&a, engine, &kinds, &cli, http, &server.base, admin, pid) => r,
        s = crate::interrupted() => Err(anyhow::anyhow!("interrupted by {s}")),
    };
    let stopped = server.stop().await;
    let (reports, tls) = outcome?;
    if let Err(e) = stopped {
        eprintln!("warning: stopping yiwang serve: {e:#}");
    }
    print_reports(engine, &a, &reports, tls);
    if let Some(path) = &a.json {
        crate::write_json(
            path,
            &json!({
                "engine": engine.name(),
                "clients": a.clients,
                "create_seconds": a.duration,
                "warmup_s": a.warmup,
                "settle_s": a.settle,
                "checkpoint_between_phases": !a.no_checkpoint && engine == Engine::Postgres,
                "postgres_backends_on_tls": tls.map(|(t, n)| json!({"tls": t, "all": n})),
                "phases": reports.iter().map(PhaseReport::json).collect::<Vec<_>>(),
            }),
        )?;
    }
    Ok(reports.iter().all(|r| r.errors == 0))
}

#[allow(clippy::too_many_arguments)]
async fn profile(
    a: &ProfileArgs,
    engine: Engine,
    kinds: &[Kind],
    cli: &service::Cli,
    http: reqwest::Client,
    base: &str,
    admin: String,
    service_pid: u32,
) -> Result<(Vec<PhaseReport>, Option<(i64, i64)>)> {
    let org = lifecycle::discover(&http, base, &admin).await?;
    let tokens = Tokens {
        hotline: cli
            .token("load-hotline", "hotline_agent", Some(&org.district))
            .await?,
        dispatcher: cli
            .token("load-dispatcher", "dispatcher", Some(&org.district))
            .await?,
        handler: cli
            .token("load-handler", "handler", Some(&org.department))
            .await?,
        admin,
    };
    let target = Target {
        base: base.to_string(),
        tokens,
        org,
    };
    if a.warmup > 0 {
        eprintln!(
            "warm-up: whole lifecycles, {} clients, {} s",
            a.clients, a.warmup
        );
        let w = lifecycle::drive(
            &http,
            target.clone(),
            a.clients,
            Duration::ZERO,
            Duration::from_secs(a.warmup),
            0,
        )
        .await?;
        eprintln!("warm-up: {} commands, {} errors", w.commands, w.errors);
    }
    let probe = match engine {
        Engine::Postgres => Probe::Pg(PgProbe::connect(&a.database_url).await?),
        Engine::Sqlite => Probe::Sqlite(SqliteProbe::connect(&a.database_url).await?),
    };
    let tls = match &probe {
        Probe::Pg(p) => {
            let (t, n) = p.tls().await?;
            eprintln!("the service's database connections on TLS: {t} of {n}");
            Some((t, n))
        }
        Probe::Sqlite(_) => None,
    };
    let bench = Bench {
        a,
        engine,
        http,
        target: Arc::new(target),
        probe,
        service_pid,
        ticks_per_s: clock_ticks(),
        printed: Arc::new(AtomicUsize::new(0)),
    };
    bench.settle().await?;
    let mut before = bench.probe.counters().await?;
    let mut tickets: Arc<Vec<Ticket>> = Arc::new(Vec::new());
    let mut reports = Vec::new();
    for &kind in kinds {
        eprintln!(
            "phase {} ({} clients{}), load average {}",
            kind.name(),
            a.clients,
            if kind == Kind::Create {
                format!(", {} s", a.duration)
            } else {
                format!(", {} tickets", tickets.len())
            },
            loadavg()
        );
        let (report, after) = bench.phase(kind, &mut tickets, &before).await?;
        eprintln!(
            "phase {}: {} commands in {:.1} s, {} errors; service {:.3} ms, PostgreSQL {} ms CPU per command",
            kind.name(),
            report.commands,
            report.seconds,
            report.errors,
            report.service_ms,
            report.pg_ms.map_or("-".into(), |m| format!("{m:.3}"))
        );
        reports.push(report);
        before = after;
    }
    if bench.engine == Engine::Postgres && reports.iter().any(|r| r.other_backends > Some(0)) {
        eprintln!(
            "note: other databases had client backends on this cluster during the profile; its CPU and WAL figures include their work"
        );
    }
    Ok((reports, tls))
}

fn opt(x: Option<f64>, f: fn(f64) -> String) -> String {
    x.map_or("-".into(), f)
}

fn f3(x: f64) -> String {
    format!("{x:.3}")
}

fn print_reports(
    engine: Engine,
    a: &ProfileArgs,
    reports: &[PhaseReport],
    tls: Option<(i64, i64)>,
) {
    println!();
    println!(
        "yiwang-load profile: {} at {} clients; create for {} s, every later phase once per ticket created; load average now {}",
        engine.name(),
        a.clients,
        a.duration,
        loadavg()
    );
    if let Some((t, n)) = tls {
        println!("the service's connections to PostgreSQL on TLS: {t} of {n}");
    }
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let (ins, upd, hot, idx) = r.rows();
            let per = |x: i64| f2(r.per(x as f64));
            let pg = r.pg.as_ref();
            vec![
                r.kind.name().to_string(),
                r.commands.to_string(),
                r.errors.to_string(),
                f1(stats::rate(r.commands, r.seconds)),
                f2(r.latency.p50_ms),
                f2(r.latency.p99_ms),
                f3(r.service_ms),
                opt(r.pg_ms, f3),
                f3(r.load_tool_ms + r.rest_ms),
                format!("{:.0}", r.machine_busy_percent),
                if r.statements.is_empty() {
                    "-".into()
                } else {
                    per(r.statement_calls())
                },
                pg.map_or("-".into(), |p| f3(r.per(p.xact_commit as f64))),
                per(ins),
                format!("{} ({})", per(upd), per(hot)),
                per(idx),
                r.wal_bytes
                    .map_or("-".into(), |b| format!("{:.0}", r.per(b as f64))),
                pg.map_or("-".into(), |p| per(p.wal_records)),
                pg.map_or("-".into(), |p| per(p.wal_fpi)),
                pg.map_or("-".into(), |p| f3(r.per(p.wal_sync as f64))),
                r.service_io.map_or("-".into(), |io| {
                    format!("{:.0}", r.per(io.write_bytes as f64))
                }),
                format!("{} → {}", r.loadavg_start, r.loadavg_end),
            ]
        })
        .collect();
    print_table(
        &[
            "kind",
            "cmds",
            "errors",
            "cmds/s",
            "p50 ms",
            "p99 ms",
            "svc CPU ms",
            "pg CPU ms",
            "other CPU ms",
            "busy %",
            "stmts",
            "commits",
            "rows ins",
            "rows upd (HOT)",
            "idx entries",
            "WAL B",
            "WAL recs",
            "FPI",
            "WAL syncs",
            "svc write B",
            "load avg",
        ],
        &rows,
    );
    println!(
        "per command; CPU from /proc (pg: the postmaster and all its children); other = this load tool and the rest of the machine; \
         idx entries estimated = (rows inserted + non-HOT updates) × the table's non-partial indexes (GIN: one per row)"
    );

    println!();
    let mut rows = Vec::new();
    for r in reports {
        for (name, t) in &r.tables {
            if t.ins == 0 && t.upd == 0 && t.del == 0 {
                continue;
            }
            rows.push(vec![
                r.kind.name().to_string(),
                name.clone(),
                f2(r.per(t.ins as f64)),
                f2(r.per(t.upd as f64)),
                f2(r.per(t.hot as f64)),
                f2(r.per(t.del as f64)),
                t.indexes.to_string(),
                f2(r.per(index_entries(t) as f64)),
            ]);
        }
    }
    print_table(
        &[
            "kind",
            "table",
            "ins/cmd",
            "upd/cmd",
            "HOT/cmd",
            "del/cmd",
            "indexes",
            "idx entries/cmd",
        ],
        &rows,
    );
    if engine == Engine::Sqlite {
        println!(
            "SQLite: ins/cmd is the change of count(*) (net rows added); updates are not counted"
        );
    }

    let by_process: BTreeSet<&String> = reports
        .iter()
        .flat_map(|r| r.pg_ms_by_kind.keys())
        .collect();
    if !by_process.is_empty() {
        println!();
        let mut header = vec!["kind"];
        header.extend(by_process.iter().map(|s| s.as_str()));
        let rows: Vec<Vec<String>> = reports
            .iter()
            .map(|r| {
                let mut row = vec![r.kind.name().to_string()];
                row.extend(
                    by_process
                        .iter()
                        .map(|k| r.pg_ms_by_kind.get(*k).map_or("-".into(), |v| f3(*v))),
                );
                row
            })
            .collect();
        println!("PostgreSQL CPU per command by process (ms)");
        print_table(&header, &rows);
    }

    for r in reports {
        if r.statements.is_empty() {
            continue;
        }
        println!();
        println!(
            "{}: statements per command (pg_stat_statements ÷ {} commands), top {PRINTED_STATEMENTS} by execution time",
            r.kind.name(),
            r.commands
        );
        let rows: Vec<Vec<String>> = r
            .statements
            .iter()
            .take(PRINTED_STATEMENTS)
            .map(|s| {
                let q: String = s.query.split_whitespace().collect::<Vec<_>>().join(" ");
                let q: String = q.chars().take(110).collect();
                vec![
                    f3(r.per(s.calls as f64)),
                    f2(r.per(s.rows as f64)),
                    f3(if s.calls > 0 {
                        s.total_ms / s.calls as f64
                    } else {
                        0.0
                    }),
                    f3(r.per(s.total_ms)),
                    format!("{:.0}", r.per(s.wal_bytes as f64)),
                    f3(r.per(s.wal_fpi as f64)),
                    q,
                ]
            })
            .collect();
        print_table(
            &[
                "calls/cmd",
                "rows/cmd",
                "mean ms",
                "exec ms/cmd",
                "WAL B/cmd",
                "FPI/cmd",
                "query",
            ],
            &rows,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_spaces_in_the_name() {
        let line = "1234 (postgres: x (y)) S 99 1234 1234 0 -1 4194560 500 0 0 0 \
                    17 4 2 3 20 0 1 0 100 0 0";
        let s = parse_stat(line).expect("parses");
        assert_eq!(
            s,
            ProcStat {
                ppid: 99,
                utime: 17,
                stime: 4,
                cutime: 2,
                cstime: 3
            }
        );
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn machine_busy_leaves_out_idle_and_iowait() {
        let text = "cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(parse_machine(text), Some((160, 1000)));
        assert!(parse_machine("intr 1 2 3").is_none());
    }

    #[test]
    fn index_entries_count_inserts_and_non_hot_updates() {
        let t = TableCounts {
            ins: 10,
            upd: 7,
            hot: 3,
            del: 0,
            indexes: 5,
        };
        assert_eq!(index_entries(&t), (10 + 4) * 5);
    }

    #[test]
    fn kinds_follow_the_lifecycle() {
        let k = |s: &str| parse_kinds(&s.split(',').map(String::from).collect::<Vec<_>>());
        assert_eq!(
            k("create,replay,assign,sign").ok(),
            Some(vec![
                Kind::Create,
                Kind::Replay,
                Kind::Step(0),
                Kind::Step(1)
            ])
        );
        assert_eq!(
            k("create,assign").ok(),
            Some(vec![Kind::Create, Kind::Step(0)])
        );
        assert!(k("assign").is_err());
        assert!(k("create,sign").is_err());
        assert!(k("create,assign,replay").is_err());
        assert!(k("create,create").is_err());
    }

    #[test]
    fn cpu_of_this_process_is_readable() {
        // Linux only, as the profiler: /proc/self/stat parses and its parent exists.
        let s = proc_stat(std::process::id()).expect("own /proc/PID/stat");
        assert!(s.ppid > 0);
        assert!(clock_ticks() > 0.0);
    }
}
