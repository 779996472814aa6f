//! The fault suite (issue 5) and the mixed-load run, each on a fresh database:
//!
//! | scenario | engines | what happens |
//! |---|---|---|
//! | `steady` | both | the mix alone: the baseline every other scenario is held to |
//! | `kill` | both | `kill -9` of the server at random moments, restarted each time |
//! | `outage` | PostgreSQL | the database link cut for `--outage-secs` (a proxy closes every connection and refuses new ones), then restored; the server is not restarted |
//! | `drop` | both | a proxy in front of the server drops `--drop-percent` of the answers after the server committed; the clients retry with the same key |
//! | `disk` | SQLite | the database on a small tmpfs that fills up, then grows (needs the right to mount: root here) |
//! | `cluster` | PostgreSQL | three instances, a year's import behind them, one killed at random |
//! | `rolling` | PostgreSQL | two instances behind a balancer that checks `/readyz`, restarted one at a time with SIGTERM (`faults_rolling.rs`): no connection refused, no 5xx |
//!
//! After each, the mix stops, `projections_match` rebuilds the projections with
//! `yiwang replay` and compares the statistics and appraisal answers before and
//! after, and `check::check` holds the ledger against the log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::check::{self, Findings};
use crate::mix::{self, Fleet, Mix};
use crate::proxy::Proxy;
use crate::service::{Cli, Server};
use crate::stats::{f2, print_table};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    Sqlite,
    Postgres,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Steady,
    Kill,
    Outage,
    Drop,
    Disk,
    Cluster,
    Rolling,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Steady => "steady",
            Scenario::Kill => "kill",
            Scenario::Outage => "outage",
            Scenario::Drop => "drop",
            Scenario::Disk => "disk",
            Scenario::Cluster => "cluster",
            Scenario::Rolling => "rolling",
        }
    }

    fn runs_on(self, e: EngineArg) -> bool {
        match self {
            // Several instances need a database they can share.
            Scenario::Outage | Scenario::Cluster | Scenario::Rolling => e == EngineArg::Postgres,
            Scenario::Disk => e == EngineArg::Sqlite,
            _ => true,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct FaultArgs {
    /// The service binary, e.g. target/release/yiwang.
    #[arg(long)]
    pub bin: PathBuf,
    /// Engines to run on (repeat or comma-separate).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [EngineArg::Sqlite, EngineArg::Postgres])]
    pub engine: Vec<EngineArg>,
    /// A PostgreSQL server on loopback: each scenario creates its own database
    /// there and drops it afterwards.
    #[arg(
        long,
        env = "YIWANG_TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub postgres_url: String,
    /// Scenarios to run (default: every one that applies to the engine).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub scenario: Vec<Scenario>,
    /// Concurrent ticket workers.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub clients: u32,
    /// `kill`: how many times the server is killed.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub kills: u32,
    /// `outage`: seconds the database link stays cut.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub outage_secs: u64,
    /// `drop`: percentage of answers the proxy drops.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=90))]
    pub drop_percent: u32,
    /// Seconds of load in `steady` and `drop`, and before and after the fault in
    /// the others.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub seconds: u64,
    /// `steady`: seconds of load before the measured `--seconds`, not counted in the
    /// latency figures or the rates (the pool filling, the first SLA round, the
    /// caches' first reads). Errors in them still fail the run.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub warmup: u64,
    /// Seed of the planned tickets.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// `steady`: fill the database with about this many simulated events (`seed`)
    /// before the servers start, to measure a service with a year behind it.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100_000_000))]
    pub preload_events: u64,
    /// `steady`: also measure, on a fresh database in the same run, the ceilings:
    /// raw single-row INSERTs and a bare HTTP route (`/healthz`) at the same
    /// concurrency.
    #[arg(long)]
    pub ceiling: bool,
    /// Commands a second offered by all the ticket workers together (0: each worker
    /// sends its next command as soon as the last is answered, a closed loop that
    /// measures saturation). With a rate, each worker paces its commands on a fixed
    /// schedule, so the latency is measured at a known load below saturation.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// One database for one scenario, dropped (PostgreSQL) or deleted (SQLite) after.
struct Db {
    url: String,
    engine: EngineArg,
    admin: Option<String>,
    name: String,
    dir: PathBuf,
}

impl Db {
    async fn fresh(engine: EngineArg, pg: &str, label: &str) -> Result<Db> {
        let dir =
            std::env::temp_dir().join(format!("yiwang-faults-{}-{label}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        match engine {
            EngineArg::Sqlite => Ok(Db {
                url: format!("sqlite://{}/yiwang.db?mode=rwc", dir.display()),
                engine,
                admin: None,
                name: String::new(),
                dir,
            }),
            EngineArg::Postgres => {
                crate::ceiling::ensure_local(pg)?;
                let name = format!("yiwang_faults_{}_{label}", std::process::id());
                let conn = sqlx::PgPool::connect(pg)
                    .await
                    .with_context(|| format!("connecting to {}", yiwang::cli::redact(pg)))?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&conn)
                .await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&conn)
                    .await?;
                conn.close().await;
                let mut u = url::Url::parse(pg).context("the PostgreSQL URL")?;
                u.set_path(&name);
                Ok(Db {
                    url: u.to_string(),
                    engine,
                    admin: Some(pg.to_string()),
                    name,
                    dir,
                })
            }
        }
    }

    async fn drop_it(&self) {
        if let Some(admin) = &self.admin
            && let Ok(conn) = sqlx::PgPool::connect(admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&conn)
            .await;
            conn.close().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Zeroes PostgreSQL's cumulative statistics of this database (the index
    /// scans counted by `index_use`). Nothing on SQLite.
    async fn reset_stats(&self) -> Result<()> {
        if self.admin.is_some() {
            let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url).await?;
            sqlx::query("SELECT pg_stat_reset()")
                .execute(&mut c)
                .await?;
        }
        Ok(())
    }

    /// Each index of the tables a command writes, with its scans and the entries
    /// they read since `reset_stats` (`pg_stat_user_indexes`), and its size.
    async fn index_use(&self) -> Result<Value> {
        let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url).await?;
        let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT relname::text, indexrelname::text, idx_scan, idx_tup_read, pg_relation_size(indexrelid) \
             FROM pg_stat_user_indexes \
             WHERE relname IN ('ticket_view', 'ticket_search', 'events', 'idempotency_keys', 'contacts') \
             ORDER BY relname, indexrelname",
        )
        .fetch_all(&mut c)
        .await?;
        Ok(Value::Array(
            rows.into_iter()
                .map(|(table, index, scans, read, bytes)| {
                    json!({"table": table, "index": index, "scans": scans, "entries_read": read, "bytes": bytes})
                })
                .collect(),
        ))
    }

    fn engine_name(&self) -> &'static str {
        match self.engine {
            EngineArg::Sqlite => "sqlite",
            EngineArg::Postgres => "postgres",
        }
    }
}

fn http_client(keep_alive: bool) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(2));
    b = if keep_alive {
        b.pool_max_idle_per_host(256)
    } else {
        b.pool_max_idle_per_host(0)
    };
    b.build().context("building the HTTP client")
}

/// The result of one scenario on one engine.
pub struct Outcome {
    pub scenario: &'static str,
    pub engine: &'static str,
    pub findings: Findings,
    pub tally: Value,
    pub fault: Value,
    pub errors: u64,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.findings.ok() && self.errors == 0
    }
}

/// Prepared database, running servers and the mix over them.
struct Run {
    db: Db,
    cli: Cli,
    servers: Vec<Server>,
    fleet: Arc<Fleet>,
    mix: Arc<Mix>,
    tasks: tokio::task::JoinSet<()>,
    started: Instant,
    /// Every server log of the run, removed when the scenario passes.
    logs: Vec<PathBuf>,
    /// PostgreSQL: report each index's scans since `Db::reset_stats` (issue 24:
    /// which of the view's indexes the mix uses) in the outcome's `index_use`.
    index_use: bool,
}

struct Plan {
    instances: usize,
    /// The URL the servers use (a proxy in front of the database), if not the db's.
    server_url: Option<String>,
    server_env: Vec<(String, String)>,
    keep_alive: bool,
    import_lines: u64,
    preload_events: u64,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            instances: 1,
            server_url: None,
            server_env: vec![],
            keep_alive: true,
            import_lines: 0,
            preload_events: 0,
        }
    }
}

async fn prepare(a: &FaultArgs, db: Db, plan: Plan) -> Result<Run> {
    let cli = Cli::new(&a.bin, &db.url)?;
    cli.run(&["migrate"]).await?;
    cli.run(&["org", "load", "--demo"]).await?;
    if plan.preload_events > 0 {
        crate::seed::seed(crate::seed::SeedArgs {
            database_url: db.url.clone(),
            events: plan.preload_events,
            clients: 64,
            seed: a.seed,
        })
        .await?;
        // As after any bulk load, the projection is rebuilt before the service
        // starts (a `serve` would otherwise rebuild it in-process at start).
        cli.run(&["replay"]).await?;
        // A database that has been running since its bulk load has had it vacuumed
        // (autovacuum, which this kind of machine runs with off) and checkpointed,
        // and the kernel has written it back. Left to the measured load, each of
        // these held up every commit's WAL flush for 0.45 s (seen 2026-12-06: all
        // 64 commands at once, no read): the checkpoint's writes; and the hint
        // bits that the start-up hash-chain walk sets on a gigabyte of fresh event
        // pages, written back by the kernel 30 s later. So they are done here, and
        // the figures measure the service rather than the seeding.
        if db.engine_name() == "postgres" {
            let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url).await?;
            for sql in ["VACUUM (ANALYZE)", "CHECKPOINT"] {
                sqlx::query(sql).execute(&mut c).await?;
            }
        }
        let synced = tokio::process::Command::new("sync").status().await?;
        if !synced.success() {
            bail!("`sync` after the preload failed: {synced}");
        }
    }
    if plan.import_lines > 0 {
        let file = db.dir.join("import.ndjson");
        crate::seed::import_file(crate::seed::ImportFileArgs {
            lines: plan.import_lines,
            out: file.clone(),
            seed: a.seed,
        })?;
        let f = file.display().to_string();
        cli.run(&["import", &f]).await?;
    }
    let server_cli = Cli::new(&a.bin, plan.server_url.as_deref().unwrap_or(&db.url))?;
    let probe = http_client(true)?;
    let mut servers = Vec::new();
    for _ in 0..plan.instances {
        servers.push(Server::start_with(&server_cli, &probe, &plan.server_env).await?);
    }
    if plan.preload_events > 0 {
        // `serve` walks every hash chain once at start (then hourly). Over a year of
        // events that walk takes seconds of CPU; the steady figures are taken after
        // it, as the query benchmark's are (`load/projection_bench.sh`).
        for s in &servers {
            wait_verified(&probe, &s.base).await?;
        }
    }
    let fleet = Arc::new(Fleet::new(servers.iter().map(|s| s.base.clone()).collect()));
    let pool = yiwang::store::open(&db.url, false).await?.pool();
    let settings = mix::Settings {
        clients: a.clients,
        dashboards: 2,
        sse: 2,
        retry_percent: 5,
        refuse_percent: 3,
        resolve_within: Duration::from_secs(120),
        attempt_timeout: Duration::from_secs(15),
        seed: a.seed,
        rate: (a.rate > 0.0).then_some(a.rate),
    };
    let mix = Mix::new(http_client(plan.keep_alive)?, fleet.clone(), pool, settings).await?;
    let tasks = mix.spawn();
    let logs = servers.iter().map(|s| s.log.clone()).collect();
    Ok(Run {
        db,
        cli,
        servers,
        fleet,
        mix,
        tasks,
        started: Instant::now(),
        logs,
        index_use: false,
    })
}

impl Run {
    fn bases(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.base.clone()).collect()
    }

    /// Stop the mix, compare the projections with a rebuild, check the ledger.
    async fn finish(mut self, label: &'static str, mut fault: Value) -> Result<Outcome> {
        self.mix.stop();
        let seconds = self.started.elapsed().as_secs_f64();
        let wait = self.mix.settings.resolve_within + Duration::from_secs(30);
        if tokio::time::timeout(wait, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            self.tasks.abort_all();
            bail!("the mix did not stop within {wait:?}");
        }
        let rss: Vec<u64> = self.servers.iter().filter_map(Server::rss_bytes).collect();
        if self.index_use {
            // Before the comparison's rebuild scans anything; an idle backend
            // hands its counts to the statistics 10 s after its last statement.
            tokio::time::sleep(Duration::from_secs(11)).await;
            match self.db.index_use().await {
                Ok(v) => fault["index_use"] = v,
                Err(e) => eprintln!("{label}: could not read the index use: {e:#}"),
            }
        }
        let tally = self
            .mix
            .tally
            .lock()
            .map(|t| {
                let mut v = t.json(seconds);
                v["rss_bytes"] = json!(rss);
                (v, t.errors())
            })
            .map_err(|_| anyhow::anyhow!("the tally lock is poisoned"))?;
        let mut findings = match self.projections_match().await {
            Ok(f) => f,
            Err(e) => {
                let mut f = Findings::default();
                f.problems.push(format!("projections vs rebuild: {e:#}"));
                f
            }
        };
        // Nothing may write while the log is checked (an SLA round would).
        for s in self.servers.drain(..) {
            let _ = s.stop().await;
        }
        let ledger = self.mix.ledger.records();
        let sse = self
            .mix
            .sse_seen
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default();
        let more = check::check(&self.db.url, &ledger, &sse).await?;
        findings.problems.extend(more.problems);
        for (k, v) in more.counts {
            *findings.counts.entry(k).or_default() += v;
        }
        findings.problems.extend(minimum_activity(
            label,
            &findings.counts,
            &fault,
            u64::from(self.mix.settings.sse),
        ));
        let engine = self.db.engine_name();
        if findings.ok() && tally.1 == 0 {
            self.db.drop_it().await;
            // YIWANG_LOAD_KEEP_LOGS=1 keeps the server logs of a passing run too
            // (their `yiwang::access` lines time every request server-side).
            let keep = std::env::var_os("YIWANG_LOAD_KEEP_LOGS").is_some_and(|v| v == "1");
            for log in &self.logs {
                if keep {
                    eprintln!("{label} on {engine}: server log kept: {}", log.display());
                } else {
                    let _ = std::fs::remove_file(log);
                }
            }
        } else {
            eprintln!(
                "{label} on {engine}: the database and the server logs are kept for a look: {} {}",
                yiwang::cli::redact(&self.db.url),
                self.logs
                    .iter()
                    .map(|l| l.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        Ok(Outcome {
            scenario: label,
            engine,
            findings,
            errors: tally.1,
            tally: tally.0,
            fault,
        })
    }

    /// The statistics and appraisal answers once caught up, against the same after
    /// `yiwang replay` rebuilt every projection from zero with the servers down.
    /// The SLA watcher may append while this runs (a deadline passing): a
    /// comparison counts only when the log did not move between the two reads, and
    /// is taken again (from a server started on the projection as the run left it)
    /// when it did. Leaves every server stopped.
    async fn projections_match(&mut self) -> Result<Findings> {
        let http = http_client(true)?;
        let token = self.mix.analyst().to_string();
        let server_cli = self.servers[0].cli().clone();
        // The same settings as the run's servers (a shifted clock changes "now").
        let env = self.servers[0].env().to_vec();
        let mut f = Findings::default();
        for attempt in 0..4 {
            if self.servers.is_empty() {
                let s = Server::start_with(&server_cli, &http, &env).await?;
                self.logs.push(s.log.clone());
                self.servers.push(s);
                // Its SLA watcher's first round, if anything fell due meanwhile.
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            let head = head_position(&self.db.url).await?;
            wait_caught_up(&http, &self.bases(), head).await?;
            let before = snapshot(&http, &self.servers[0].base, &token).await?;
            for s in self.servers.drain(..) {
                let _ = s.stop().await;
            }
            if head_position(&self.db.url).await? != head {
                continue;
            }
            self.cli.run(&["replay"]).await?;
            let s = Server::start_with(&server_cli, &http, &env).await?;
            self.logs.push(s.log.clone());
            let ok = wait_caught_up(&http, std::slice::from_ref(&s.base), head).await;
            let after = snapshot(&http, &s.base, &token).await;
            let _ = s.stop().await;
            ok?;
            let after = after?;
            if head_position(&self.db.url).await? != head {
                continue;
            }
            f.counts
                .insert("projection answers compared", before.len() as u64);
            if attempt > 0 {
                f.counts.insert("projection comparisons retaken", attempt);
            }
            f.problems.extend(compare_projections(&before, &after));
            return Ok(f);
        }
        bail!("the log kept moving (SLA watcher) during four comparisons")
    }
}

/// The least a scenario must have done for its "0 lost, 0 duplicated" to mean
/// something (issue 25): commands acknowledged, every SSE subscriber fed, the
/// projections compared; and where the fault interrupts commands, some
/// acknowledged only after a retry; answers dropped where the proxy drops them;
/// probes sent during the outage; SLA events, some appended after the kill, in
/// `cluster`. Each shortfall is a problem: the scenario fails.
fn minimum_activity(
    scenario: &str,
    counts: &std::collections::BTreeMap<&'static str, u64>,
    fault: &Value,
    sse_subscribers: u64,
) -> Vec<String> {
    let count = |k: &str| counts.get(k).copied().unwrap_or(0);
    let field = |k: &str| fault.get(k).and_then(Value::as_u64).unwrap_or(0);
    let mut need: Vec<(&str, u64)> = vec![
        ("acknowledged commands", count("acknowledged commands")),
        ("SSE events received", count("SSE events received")),
        (
            "projection answers compared",
            count("projection answers compared"),
        ),
    ];
    match scenario {
        "kill" | "drop" | "outage" | "disk" => {
            need.push((
                "acknowledged after a retry",
                count("acknowledged after a retry"),
            ));
        }
        _ => {}
    }
    match scenario {
        "drop" => need.push(("answers dropped", field("answers_dropped"))),
        "outage" => need.push(("probe commands during the outage", field("probe_commands"))),
        "cluster" => {
            need.push(("SLA events", count("SLA events")));
            need.push((
                "SLA events appended after the kill",
                field("sla_events_after_the_kill"),
            ));
        }
        _ => {}
    }
    let mut problems: Vec<String> = need
        .into_iter()
        .filter(|(_, n)| *n == 0)
        .map(|(what, _)| {
            format!("{scenario}: {what}: 0, so the scenario tested nothing there (minimum 1)")
        })
        .collect();
    if count("SSE subscribers") != sse_subscribers {
        problems.push(format!(
            "{scenario}: {} SSE subscribers reported what they saw, of {sse_subscribers}",
            count("SSE subscribers")
        ));
    }
    problems
}

/// The last position in the log (nothing is writing when this is asked).
async fn head_position(url: &str) -> Result<i64> {
    use yiwang::store::Pool;
    let store = yiwang::store::open(url, false).await?;
    let sql = "SELECT COALESCE(MAX(position), 0) FROM events";
    let head: i64 = match store.pool() {
        Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(&p).await?,
        Pool::Postgres(p) => sqlx::query_scalar(sql).fetch_one(&p).await?,
    };
    Ok(head)
}

/// Wait until `serve` at `base` has finished its start-up verification of the log
/// (`yiwang_verify_last_run_timestamp_seconds` set in `/metrics`).
async fn wait_verified(http: &reqwest::Client, base: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    let t0 = Instant::now();
    loop {
        let done = match http.get(format!("{base}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default().lines().any(|l| {
                l.strip_prefix("yiwang_verify_last_run_timestamp_seconds ")
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .is_some_and(|v| v > 0.0)
            }),
            Err(_) => false,
        };
        if done {
            eprintln!(
                "{base}: start-up verification done after {:.1} s",
                t0.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{base}: the start-up verification did not finish in 600 s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Wait until the instance running each projection reports its checkpoint at
/// `head` on `/readyz`.
async fn wait_caught_up(http: &reqwest::Client, bases: &[String], head: i64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        // Every projection any instance names must be running somewhere, caught up:
        // with several projections, one may be running and caught up on one
        // instance while another's lease waits to be taken over (its runner was on
        // the instance killed) and nobody runs it.
        let mut names: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        let mut running: Vec<(String, i64)> = Vec::new();
        for b in bases {
            let Ok(r) = http.get(format!("{b}/readyz")).send().await else {
                continue;
            };
            let Ok(v) = r.json::<Value>().await else {
                continue;
            };
            if let Some(ps) = v.get("projections").and_then(Value::as_object) {
                for (name, p) in ps {
                    names.insert(name.clone());
                    if p.get("state").and_then(Value::as_str) == Some("running") {
                        running.push((name.clone(), p["checkpoint"].as_i64().unwrap_or(0)));
                    }
                }
            }
        }
        let caught_up = |name: &String| running.iter().any(|(n, c)| n == name && *c >= head);
        if !names.is_empty() && names.iter().all(caught_up) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("projections not caught up to position {head} in 120 s: {running:?}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The read answers that come from the projections.
async fn snapshot(http: &reqwest::Client, base: &str, token: &str) -> Result<Vec<(String, Value)>> {
    let routes = [
        "/api/v1/stats/units?granularity=day",
        "/api/v1/stats/units?granularity=month",
        "/api/v1/stats/units?granularity=quarter&from=2026-01-01&to=2026-12-31",
        "/api/v1/stats/units?granularity=year&from=2026-01-01&to=2026-12-31",
        "/api/v1/appraisal?period=2026-11",
        "/api/v1/appraisal?period=2026-Q4",
        "/api/v1/appraisal?period=2026&profile=beijing-three-rates",
        "/api/v1/tickets?overdue=true&limit=500",
    ];
    let mut out = Vec::new();
    for r in routes {
        let resp = http
            .get(format!("{base}{r}"))
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("GET {r}"))?;
        let status = resp.status();
        let mut v: Value = resp
            .json()
            .await
            .with_context(|| format!("GET {r}: not JSON"))?;
        if !status.is_success() {
            bail!("GET {r}: {status} {v}");
        }
        // The instant the answer was computed is not a projection figure.
        if let Some(o) = v.as_object_mut() {
            o.remove("as_of");
        }
        out.push((r.to_string(), v));
    }
    Ok(out)
}

/// What differs between the projection answers read live and the same read after a
/// rebuild: one problem per route whose answers differ, and one if the two reads
/// did not cover the same routes (nothing compared is not "equal").
fn compare_projections(before: &[(String, Value)], after: &[(String, Value)]) -> Vec<String> {
    let mut problems = Vec::new();
    let routes = |s: &[(String, Value)]| s.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>();
    if before.is_empty() || routes(before) != routes(after) {
        problems.push(format!(
            "the projection answers compared are not the same routes: live {:?}, rebuilt {:?}",
            routes(before),
            routes(after)
        ));
    }
    for ((route, a), (_, b)) in before.iter().zip(after) {
        if a != b {
            problems.push(format!(
                "{route}: the live projection differs from a rebuild from the log: {}",
                first_difference("", a, b)
            ));
        }
    }
    problems
}

/// Where two JSON documents first differ: the path and both values.
fn first_difference(path: &str, a: &Value, b: &Value) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    Some(vb) if va == vb => {}
                    Some(vb) => return first_difference(&format!("{path}.{k}"), va, vb),
                    None => return format!("{path}.{k} only live"),
                }
            }
            match y.keys().find(|k| !x.contains_key(*k)) {
                Some(k) => format!("{path}.{k} only rebuilt"),
                None => format!("{path}: equal"),
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find(|(_, (va, vb))| va != vb)
            .map(|(i, (va, vb))| first_difference(&format!("{path}[{i}]"), va, vb))
            .unwrap_or_else(|| format!("{path}: equal")),
        _ => {
            let short = |v: &Value| crate::service::tail(&v.to_string(), 200).to_string();
            format!("{path}: live {} / rebuilt {}", short(a), short(b))
        }
    }
}

/// Sleep `secs` seconds unless the mix was stopped.
async fn load_for(secs: f64) {
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
}

pub async fn run(a: FaultArgs) -> Result<bool> {
    let scenarios: Vec<Scenario> = if a.scenario.is_empty() {
        Scenario::value_variants().to_vec()
    } else {
        a.scenario.clone()
    };
    let mut outcomes = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let started_at = chrono::Utc::now();
    let started = Instant::now();
    // The machine is shared: how busy it was when the run began.
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string));
    let mut postgres_version = None;
    for &engine in &a.engine {
        if engine == EngineArg::Postgres
            && let Err(e) = sqlx::PgPool::connect(&a.postgres_url).await
        {
            let why = format!(
                "PostgreSQL at {} unreachable: {e}",
                yiwang::cli::redact(&a.postgres_url)
            );
            if in_ci() {
                bail!("{why} (CI is set)");
            }
            eprintln!("skipping PostgreSQL: {why}");
            skipped.push(why);
            continue;
        }
        if engine == EngineArg::Postgres
            && let Ok(pool) = sqlx::PgPool::connect(&a.postgres_url).await
        {
            postgres_version = sqlx::query_scalar::<_, String>("SHOW server_version")
                .fetch_one(&pool)
                .await
                .ok();
            pool.close().await;
        }
        for &s in scenarios.iter().filter(|s| s.runs_on(engine)) {
            eprintln!("== {} on {engine:?}", s.name());
            let t0 = Instant::now();
            let o = match s {
                Scenario::Steady => steady(&a, engine).await,
                Scenario::Kill => kill(&a, engine).await,
                Scenario::Outage => outage(&a).await,
                Scenario::Drop => drop_answers(&a, engine).await,
                Scenario::Disk => match disk(&a).await {
                    Ok(Some(o)) => Ok(o),
                    Ok(None) => continue,
                    Err(e) => Err(e),
                },
                Scenario::Cluster => cluster(&a).await,
                Scenario::Rolling => rolling::rolling(&a).await,
            }
            .with_context(|| format!("scenario {} on {engine:?}", s.name()))?;
            eprintln!(
                "== {} on {engine:?}: {} in {:.0} s",
                s.name(),
                if o.ok() { "ok" } else { "FAILED" },
                t0.elapsed().as_secs_f64()
            );
            outcomes.push(o);
        }
    }
    report(&outcomes, &skipped);
    if let Some(path) = &a.json {
        let v = json!({
            "args": {"clients": a.clients, "kills": a.kills, "outage_secs": a.outage_secs,
                     "drop_percent": a.drop_percent, "seconds": a.seconds, "seed": a.seed},
            "run": run_facts(&a, started_at, started.elapsed(), postgres_version, load_average),
            "skipped": skipped,
            "runs": outcomes.iter().map(|o| json!({
                "scenario": o.scenario, "engine": o.engine, "ok": o.ok(),
                "fault": o.fault, "load": o.tally, "check": o.findings.json(),
            })).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&v)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(outcomes.iter().all(Outcome::ok))
}

/// Where and how the run was made, for the documents generated from its JSON
/// (`yiwang-load report-reliability`): when, the commit, the build, the command.
fn run_facts(
    a: &FaultArgs,
    started_at: chrono::DateTime<chrono::Utc>,
    elapsed: Duration,
    postgres_version: Option<String>,
    load_average: Option<String>,
) -> Value {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    // `load/faults.sh` says how it was called; run directly, the arguments are it.
    let command = std::env::var("YIWANG_FAULTS_COMMAND").unwrap_or_else(|_| {
        std::env::args()
            .map(|a| yiwang::cli::redact(&a))
            .collect::<Vec<_>>()
            .join(" ")
    });
    let profile = a
        .bin
        .parent()
        .and_then(Path::file_name)
        .map(|p| p.to_string_lossy().into_owned());
    json!({
        "started_at": started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "elapsed_s": elapsed.as_secs(),
        "commit": git(&["rev-parse", "--short", "HEAD"]),
        "dirty": git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty()),
        "command": command,
        "profile": profile,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "postgres_version": postgres_version,
        "load_average_at_start": load_average,
    })
}

fn report(outcomes: &[Outcome], skipped: &[String]) {
    println!();
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|o| {
            let c = |k: &str| o.findings.counts.get(k).copied().unwrap_or(0).to_string();
            let t = |k: &str| o.tally.get(k).map(Value::to_string).unwrap_or_default();
            vec![
                o.scenario.to_string(),
                o.engine.to_string(),
                if o.ok() { "ok".into() } else { "FAILED".into() },
                c("acknowledged commands"),
                c("acknowledged after a retry"),
                t("replays"),
                c("refused as intended"),
                t("unavailable_503"),
                t("unresolved"),
                o.findings.problems.len().to_string(),
                o.errors.to_string(),
                o.fault
                    .get("summary")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            "scenario",
            "engine",
            "result",
            "acked",
            "acked after retry",
            "replays",
            "refused (intended)",
            "503s",
            "unresolved",
            "problems",
            "errors",
            "fault",
        ],
        &rows,
    );
    for o in outcomes {
        println!();
        println!(
            "{} on {}: {}",
            o.scenario,
            o.engine,
            o.tally
                .get("commands_per_s")
                .map(Value::to_string)
                .unwrap_or_default()
                + " commands/s"
        );
        print_latency(&o.tally);
        if !o.ok() {
            o.findings.print(&format!("{} on {}", o.scenario, o.engine));
        }
    }
    for s in skipped {
        println!("skipped: {s}");
    }
}

async fn steady(a: &FaultArgs, engine: EngineArg) -> Result<Outcome> {
    let db = Db::fresh(engine, &a.postgres_url, "steady").await?;
    let mut run = prepare(
        a,
        db,
        Plan {
            preload_events: a.preload_events,
            ..Plan::default()
        },
    )
    .await?;
    if a.warmup > 0 {
        load_for(a.warmup as f64).await;
        run.mix.forget_latencies();
        run.started = Instant::now();
    }
    run.db.reset_stats().await?;
    run.index_use = engine == EngineArg::Postgres;
    load_for(a.seconds as f64).await;
    let summary = if a.preload_events > 0 {
        format!("none ({} events preloaded)", a.preload_events)
    } else {
        "none".into()
    };
    let mut out = run
        .finish(
            "steady",
            json!({
                "summary": summary,
                "preload_events": a.preload_events,
                "offered_commands_per_s": (a.rate > 0.0).then_some(a.rate),
                "warmup_s": a.warmup,
            }),
        )
        .await?;
    if a.ceiling {
        let (inserts, floor) = ceilings(a, engine).await?;
        out.fault["ceiling_raw_inserts"] = inserts;
        out.fault["ceiling_http_floor"] = floor;
    }
    Ok(out)
}

/// The ceilings of the same run, on a fresh database: raw single-row INSERT
/// transactions and `GET /healthz` (a bare axum route), each with `--clients`
/// concurrent clients for `--seconds`.
async fn ceilings(a: &FaultArgs, engine: EngineArg) -> Result<(Value, Value)> {
    let db = Db::fresh(engine, &a.postgres_url, "ceiling").await?;
    let secs = Duration::from_secs(a.seconds);
    let inserts = crate::ceiling::measure(&db.url, a.clients, Duration::from_secs(2), secs, 700)
        .await?
        .json();
    let cli = Cli::new(&a.bin, &db.url)?;
    cli.run(&["migrate"]).await?;
    let http = http_client(true)?;
    let server = Server::start(&cli, &http).await?;
    let url = format!("{}/healthz", server.base);
    let until = Instant::now() + secs;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..a.clients {
        let (http, url) = (http.clone(), url.clone());
        tasks.spawn(async move {
            let mut h = crate::stats::new_histogram();
            let mut errors = 0u64;
            while Instant::now() < until {
                let t0 = Instant::now();
                let ok = match http.get(&url).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    crate::stats::record(&mut h, t0.elapsed());
                } else {
                    errors += 1;
                }
            }
            (h, errors)
        });
    }
    let mut all = crate::stats::new_histogram();
    let mut errors = 0;
    while let Some(r) = tasks.join_next().await {
        let (h, e) = r.context("a floor task panicked")?;
        crate::stats::merge(&mut all, &h);
        errors += e;
    }
    let log = server.log.clone();
    let _ = server.stop().await;
    let _ = std::fs::remove_file(log);
    db.drop_it().await;
    let mut floor = crate::stats::Latency::of(&all).json();
    floor["requests_per_s"] = json!(crate::stats::round3(all.len() as f64 / secs.as_secs_f64()));
    floor["errors"] = json!(errors);
    Ok((inserts, floor))
}

async fn kill(a: &FaultArgs, engine: EngineArg) -> Result<Outcome> {
    let db = Db::fresh(engine, &a.postgres_url, "kill").await?;
    let mut run = prepare(a, db, Plan::default()).await?;
    let http = http_client(true)?;
    let mut rng = StdRng::seed_from_u64(a.seed);
    let mut downtime = Vec::new();
    load_for(2.0).await;
    for i in 0..a.kills {
        load_for(rng.random_range(0.5..2.5)).await;
        let s = &mut run.servers[0];
        s.kill9().await?;
        let t0 = Instant::now();
        s.restart(&http)
            .await
            .with_context(|| format!("restart after kill {}", i + 1))?;
        downtime.push(t0.elapsed());
        eprint!(".");
    }
    eprintln!();
    load_for(2.0).await;
    let max = downtime.iter().max().copied().unwrap_or_default();
    let fault = json!({
        "kills": a.kills,
        "restart_max_ms": max.as_millis() as u64,
        "summary": format!("{} × kill -9, restarts ≤ {:.1} s", a.kills, max.as_secs_f64()),
    });
    run.finish("kill", fault).await
}

async fn drop_answers(a: &FaultArgs, engine: EngineArg) -> Result<Outcome> {
    let db = Db::fresh(engine, &a.postgres_url, "drop").await?;
    let run = prepare(
        a,
        db,
        Plan {
            keep_alive: false,
            ..Plan::default()
        },
    )
    .await?;
    let upstream: std::net::SocketAddr = run.servers[0]
        .base
        .trim_start_matches("http://")
        .parse()
        .context("the server address")?;
    let proxy = Proxy::start(upstream).await?;
    proxy.set_drop_percent(a.drop_percent);
    run.fleet.set(vec![format!("http://{}", proxy.addr)]);
    load_for(a.seconds as f64).await;
    let fault = |dropped: u64| {
        json!({
            "drop_percent": a.drop_percent,
            "answers_dropped": dropped,
            "summary": format!("{dropped} answers dropped after commit ({} %)", a.drop_percent),
        })
    };
    // The answers dropped until the mix stopped; the rest of `finish` goes direct.
    let out = {
        run.mix.stop();
        let dropped = proxy.dropped.load(std::sync::atomic::Ordering::Relaxed);
        run.fleet.set(vec![run.servers[0].base.clone()]);
        run.finish("drop", fault(dropped)).await?
    };
    proxy.cut();
    Ok(out)
}

/// The database link cut under load: commands must fail fast with 503, `/readyz`
/// must say so, and the same server must recover by itself.
async fn outage(a: &FaultArgs) -> Result<Outcome> {
    let db = Db::fresh(EngineArg::Postgres, &a.postgres_url, "outage").await?;
    let pg = url::Url::parse(&db.url)?;
    let upstream: std::net::SocketAddr = format!(
        "{}:{}",
        pg.host_str().unwrap_or("127.0.0.1"),
        pg.port().unwrap_or(5432)
    )
    .parse()
    .context("the PostgreSQL address (an IP on loopback)")?;
    let proxy = Proxy::start(upstream).await?;
    let mut via = pg.clone();
    via.set_port(Some(proxy.addr.port()))
        .map_err(|()| anyhow::anyhow!("setting the proxy port"))?;
    let run = prepare(
        a,
        db,
        Plan {
            server_url: Some(via.to_string()),
            ..Plan::default()
        },
    )
    .await?;
    let http = http_client(true)?;
    let base = run.servers[0].base.clone();
    load_for(a.seconds as f64 / 2.0).await;

    proxy.cut();
    let cut_at = Instant::now();
    let mut probes: Vec<(u16, Duration)> = Vec::new();
    let mut ready: Vec<u16> = Vec::new();
    let mut slowest_ready = Duration::ZERO;
    while cut_at.elapsed() < Duration::from_secs(a.outage_secs) {
        let ready_probe = async {
            let t0 = Instant::now();
            let r = http
                .get(format!("{base}/readyz"))
                .timeout(Duration::from_secs(15))
                .send()
                .await;
            (r.map(|r| r.status().as_u16()).unwrap_or(0), t0.elapsed())
        };
        let (p, r) = tokio::join!(run.mix.probe(&base), ready_probe);
        probes.push(p);
        ready.push(r.0);
        slowest_ready = slowest_ready.max(r.1);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    proxy.restore().await?;
    let restored_at = Instant::now();
    let recovered = loop {
        let (status, _) = run.mix.probe(&base).await;
        if (200..300).contains(&status) {
            break Some(restored_at.elapsed());
        }
        if restored_at.elapsed() > Duration::from_secs(60) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    load_for(a.seconds as f64 / 2.0).await;

    let during: Vec<&(u16, Duration)> = probes.iter().collect();
    let slowest = during.iter().map(|p| p.1).max().unwrap_or_default();
    let all_503 = during.iter().all(|p| p.0 == 503);
    let ready_503 = ready.iter().filter(|s| **s == 503).count();
    let mut out = run
        .finish(
            "outage",
            json!({
                "outage_secs": a.outage_secs,
                "probe_commands": during.len(),
                "probe_statuses": during.iter().map(|p| p.0).collect::<Vec<_>>(),
                "slowest_probe_ms": slowest.as_millis() as u64,
                "readyz_503": ready_503,
                "readyz_probes": ready.len(),
                "slowest_readyz_ms": slowest_ready.as_millis() as u64,
                "recovered_after_ms": recovered.map(|d| d.as_millis() as u64),
                "summary": format!(
                    "{} s cut; commands 503 in ≤ {:.1} s; recovered {}",
                    a.outage_secs,
                    slowest.as_secs_f64(),
                    recovered.map_or("never".to_string(), |d| format!("{:.1} s after", d.as_secs_f64()))
                ),
            }),
        )
        .await?;
    if !all_503 {
        out.findings.problems.push(format!(
            "during the outage a command answered {:?}, not always 503",
            during.iter().map(|p| p.0).collect::<Vec<_>>()
        ));
    }
    // The bound: two waits of the pool's 5 s acquire timeout (a create may draw
    // a block of ticket numbers, then append), plus slack for a loaded machine.
    if slowest > Duration::from_secs(12) {
        out.findings.problems.push(format!(
            "a command took {slowest:?} to fail during the outage (bound: 12 s, two pool timeouts)"
        ));
    }
    if slowest_ready > Duration::from_secs(2) {
        out.findings.problems.push(format!(
            "/readyz took {slowest_ready:?} to answer during the outage (bound: 2 s)"
        ));
    }
    if ready_503 == 0 {
        out.findings
            .problems
            .push("/readyz never reported the outage".into());
    }
    if recovered.is_none() {
        out.findings
            .problems
            .push("the server did not recover within 60 s of the database's return".into());
    }
    proxy.cut();
    Ok(out)
}

/// Whether this is a CI run (`CI` is `true` or `1`, the one rule of the suite and of
/// `.ci/run`): then a scenario that cannot run fails instead of being skipped.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn sh(cmd: &str, args: &[&str]) -> Result<()> {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        bail!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Disk full under a SQLite database on its own tmpfs, then space again. (A
/// read-only remount is refused while the server has the files open for writing,
/// so "read-only" is not simulated.) Needs
/// the right to mount (root in this sandbox); skipped with the reason otherwise.
async fn disk(a: &FaultArgs) -> Result<Option<Outcome>> {
    let mut db = Db::fresh(EngineArg::Sqlite, "", "disk").await?;
    let mnt = db.dir.join("disk");
    std::fs::create_dir_all(&mnt)?;
    let m = mnt.display().to_string();
    if let Err(e) = sh("mount", &["-t", "tmpfs", "-o", "size=8m", "tmpfs", &m]) {
        db.drop_it().await;
        if in_ci() {
            bail!("disk scenario: cannot mount a tmpfs here ({e:#}) and CI is set");
        }
        println!("skipped: disk scenario (cannot mount a tmpfs here: {e:#})");
        return Ok(None);
    }
    db.url = format!("sqlite://{m}/yiwang.db?mode=rwc");
    let result = disk_inner(a, db, &mnt).await;
    let _ = sh("umount", &["-l", &m]);
    if result.as_ref().is_ok_and(Outcome::ok)
        && let Some(dir) = mnt.parent()
    {
        let _ = std::fs::remove_dir_all(dir);
    }
    result.map(Some)
}

async fn disk_inner(a: &FaultArgs, db: Db, mnt: &Path) -> Result<Outcome> {
    let m = mnt.display().to_string();
    let run = prepare(a, db, Plan::default()).await?;
    let base = run.servers[0].base.clone();
    // Fill it: run until commands are refused for want of space.
    let t0 = Instant::now();
    let mut full_probe: Option<(u16, Duration)> = None;
    while t0.elapsed() < Duration::from_secs(120) {
        load_for(1.0).await;
        let p = run.mix.probe(&base).await;
        if p.0 >= 500 {
            full_probe = Some(p);
            break;
        }
    }
    let Some(full) = full_probe else {
        bail!("the 8 MB tmpfs never filled in 120 s");
    };
    load_for(3.0).await;
    sh("mount", &["-o", "remount,size=256m", &m])?;
    let grown = Instant::now();
    let recovered_full = recover(&run, &base).await.map(|_| grown.elapsed());
    load_for(3.0).await;
    let fault = json!({
        "full_probe_status": full.0,
        "recovered_after_space_ms": recovered_full.map(|d| d.as_millis() as u64),
        "summary": format!("disk full → {}; recovered {} after space returned",
            full.0,
            recovered_full.map_or("never".into(), |d| format!("{:.1} s", d.as_secs_f64()))),
    });
    let mut out = run.finish("disk", fault).await?;
    if full.0 != 503 {
        out.findings
            .problems
            .push(format!("disk full: a command answered {}, not 503", full.0));
    }
    if recovered_full.is_none() {
        out.findings
            .problems
            .push("the server did not recover by itself within 60 s".into());
    }
    Ok(out)
}

async fn recover(run: &Run, base: &str) -> Option<()> {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        if (200..300).contains(&run.mix.probe(base).await.0) {
            return Some(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

/// Issue 7: three instances on one PostgreSQL, a year's import behind them, the
/// mix spread over them. Half-way, one instance, at random, is killed; then
/// business time jumps two days for the other two, by a rolling restart with the
/// clock shifted (`YIWANG_CLOCK_OFFSET_SECS`, a drill setting), so the deadlines
/// of the tickets left open have passed and their SLA watchers (1 s rounds) race
/// to append the warnings and breaches while the third is dead. It is restarted
/// later, shifted too, and its watcher must find nothing left to append.
/// Invariant 4 then says each SLA event is in the log once.
async fn cluster(a: &FaultArgs) -> Result<Outcome> {
    const TWO_DAYS: &str = "172800";
    let db = Db::fresh(EngineArg::Postgres, &a.postgres_url, "cluster").await?;
    let mut run = prepare(
        a,
        db,
        Plan {
            instances: 3,
            server_env: vec![("YIWANG_SLA_INTERVAL_SECS".into(), "1".into())],
            import_lines: 6000,
            ..Plan::default()
        },
    )
    .await?;
    let http = http_client(true)?;
    let mut rng = StdRng::seed_from_u64(a.seed);
    load_for(a.seconds as f64 / 2.0).await;
    let shifted = vec![
        ("YIWANG_SLA_INTERVAL_SECS".to_string(), "1".to_string()),
        ("YIWANG_CLOCK_OFFSET_SECS".to_string(), TWO_DAYS.to_string()),
    ];
    // Tickets left waiting to be signed for: with the clock shifted, their
    // deadlines pass whatever the mix and the import left open.
    let left_open = run.mix.leave_open(6).await;
    // One instance dies first; then the other two are restarted, one after the
    // other, with the clock shifted: the SLA events fall due while it is dead.
    let victim = rng.random_range(0..run.servers.len());
    let killed_at = chrono::Utc::now();
    run.servers[victim].kill9().await?;
    let killed = run.servers[victim].base.clone();
    let others: Vec<String> = run.bases().into_iter().filter(|b| *b != killed).collect();
    run.fleet.set(others);
    for (i, s) in run.servers.iter_mut().enumerate() {
        if i != victim {
            s.kill9().await?;
            s.set_env(shifted.clone());
            s.restart(&http).await?;
        }
    }
    load_for(a.seconds as f64 / 2.0).await;
    run.servers[victim].set_env(shifted);
    run.servers[victim].restart(&http).await?;
    run.fleet.set(run.bases());
    load_for(3.0).await;
    let sla_after_kill: i64 = match yiwang::store::open(&run.db.url, false).await?.pool() {
        yiwang::store::Pool::Postgres(p) => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM events WHERE event_type IN ('SlaWarning', 'SlaBreached') \
             AND recorded_at > $1",
            )
            .bind(killed_at)
            .fetch_one(&p)
            .await?
        }
        yiwang::store::Pool::Sqlite(_) => 0,
    };
    let fault = json!({
        "instances": 3,
        "killed": victim,
        "sla_events_after_the_kill": sla_after_kill,
        "tickets_left_open": left_open,
        "summary": format!(
            "3 instances, instance {} killed, clock +2 days for the others; {sla_after_kill} SLA events appended after the kill",
            victim + 1
        ),
    });
    run.finish("cluster", fault).await
}

/// Printed summary of a mixed-load run: the latency table.
pub fn print_latency(tally: &Value) {
    let table = |key: &str, title: &str| {
        let Some(m) = tally.get(key).and_then(Value::as_object) else {
            return;
        };
        let rows: Vec<Vec<String>> = m
            .iter()
            .map(|(k, v)| {
                let g = |f: &str| v.get(f).and_then(Value::as_f64).unwrap_or(0.0);
                vec![
                    k.clone(),
                    v.get("count").map(Value::to_string).unwrap_or_default(),
                    f2(g("p50_ms")),
                    f2(g("p99_ms")),
                    f2(g("p999_ms")),
                    f2(g("max_ms")),
                ]
            })
            .collect();
        print_table(
            &[title, "count", "p50 ms", "p99 ms", "p999 ms", "max ms"],
            &rows,
        );
    };
    table("by_command", "command");
    table("by_read", "read");
}

#[path = "faults_rolling.rs"]
mod rolling;

#[cfg(test)]
#[path = "faults_tests.rs"]
mod tests;
