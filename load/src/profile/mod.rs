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

mod probe;
mod proc;
mod report;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::ceiling::{self, Engine};
use crate::lifecycle::{self, Reply, Role, STEPS, Target, Tokens};
use crate::service;
use crate::stats::{self, Latency};
use probe::{Counters, PgProbe, Probe, SqliteProbe, table_delta};
use proc::{clock_ticks, cpu_now, loadavg, proc_io};
use report::{PgDelta, PhaseReport, print_reports, sub_io};

/// How many failing responses are printed in full.
const PRINTED_ERRORS: usize = 5;

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
    let (admin, server) = service::Server::prepare_demo(&cli, &http).await?;
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
    let tokens = Tokens::issue(cli, &org, admin).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
