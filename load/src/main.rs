//! yiwang-load: drives whole ticket lifecycles against `yiwang serve` with N concurrent
//! clients, and measures the ceiling (raw single-row INSERT tx/s against the same
//! database at the same concurrency) in the same run; fills a database with a
//! simulated year of tickets (`seed`, `import-file`) and measures the latency of a
//! read route against the HTTP floor (`query`). See README.md.

mod ceiling;
mod check;
#[cfg(test)]
mod doc_refs;
mod faults;
mod lifecycle;
mod mix;
mod plan;
mod profile;
mod proxy;
mod query;
mod reliability;
mod search;
mod seed;
mod service;
mod slow;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::ceiling::{CeilingResult, Engine};
use crate::lifecycle::{LifecycleResult, Target, Tokens};
use crate::stats::{f1, f2, print_table};

/// Ceiling payload size when none is given and none can be measured from the service.
const DEFAULT_PAYLOAD_BYTES: usize = 1024;

#[derive(Parser, Debug)]
#[command(
    name = "yiwang-load",
    version,
    about = "Load generator for yiwang: lifecycle commands/s against raw INSERT tx/s"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Prepare the database, start `yiwang serve` on loopback, drive lifecycles, stop
    /// the server, then measure the raw-insert ceiling and print the ratio.
    Run(RunArgs),
    /// Measure only the raw-insert ceiling.
    Ceiling(Common),
    /// Fill a database with a simulated year of ticket histories, through the
    /// yiwang library (no HTTP); prints events/s.
    Seed(seed::SeedArgs),
    /// Write simulated ticket histories as an import file for `yiwang import`.
    ImportFile(seed::ImportFileArgs),
    /// GET one route N times over HTTP: p50/p90/p99/max, next to a bare route.
    Query(query::QueryArgs),
    /// The queue's text search over many tickets (added until the database holds
    /// --tickets): p50/p99 of q by number, by a two-character word, by an address
    /// fragment, next to a bare lookup by id in the same run.
    Search(search::SearchArgs),
    /// The fault suite: the realistic mix under kill -9, a database outage,
    /// dropped answers, a full or read-only disk and a three-instance cluster,
    /// each followed by the invariant check. See README.md.
    Faults(faults::FaultArgs),
    /// Slow-header ("slowloris") connections while a normal client keeps
    /// requesting: when the service closed each, and the normal latency before
    /// and during. See README.md.
    SlowHeaders(slow::SlowArgs),
    /// Where one command's cost goes: one command kind at a time (create, replay,
    /// then each lifecycle step), per command the service's and PostgreSQL's CPU,
    /// statements, commits, rows and index entries written, WAL bytes (BENCHMARKS.md,
    /// "Where one command's cost goes"; load/profile.sh runs it).
    Profile(profile::ProfileArgs),
    /// RELIABILITY.md from the fault suite's JSON (target/faults/faults.json), on
    /// stdout: the prose of load/RELIABILITY.template.md with every figure filled in
    /// from that one run.
    ReportReliability(reliability::ReportArgs),
}

#[derive(Args, Debug)]
struct Common {
    /// sqlite:///path/yiwang.db?mode=rwc or postgres://user@127.0.0.1:5432/db (loopback only)
    #[arg(long)]
    database_url: String,
    /// Concurrent clients (HTTP clients for the lifecycles, connections for the ceiling).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    clients: u32,
    /// Measured seconds, for the lifecycles and again for the ceiling.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration: u64,
    /// Seconds of warm-up before each measurement, not counted.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=600))]
    warmup: u64,
    /// Ceiling payload size in bytes [run: the mean size of the service's own ticket
    /// events, measured after the lifecycles; ceiling: 1024].
    #[arg(long, value_parser = clap::value_parser!(u64).range(64..=1_048_576))]
    payload_bytes: Option<u64>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The service binary, e.g. target/release/yiwang.
    #[arg(long)]
    bin: PathBuf,
    #[command(flatten)]
    common: Common,
    /// Percentage of creates retried with the same Idempotency-Key.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=100))]
    replay_percent: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.cmd {
        Cmd::Run(a) => run(a).await,
        Cmd::Ceiling(c) => ceiling_only(c).await,
        Cmd::Seed(a) => seed::seed(a).await.map(|()| true),
        Cmd::ImportFile(a) => seed::import_file(a).map(|()| true),
        Cmd::Query(a) => query::query(a).await,
        Cmd::Search(a) => search::run(a).await,
        Cmd::Faults(a) => faults::run(a).await,
        Cmd::SlowHeaders(a) => slow::run(a).await,
        Cmd::Profile(a) => profile::run(a).await,
        Cmd::ReportReliability(a) => reliability::run(a),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("yiwang-load: errors were counted (see above); exit status 1");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("yiwang-load: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn payload_arg(c: &Common) -> Option<usize> {
    c.payload_bytes.and_then(|b| usize::try_from(b).ok())
}

fn write_json(path: &Path, v: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// `ceiling`: raw INSERT tx/s alone. Ok(false) when errors were counted.
async fn ceiling_only(c: Common) -> Result<bool> {
    let engine = ceiling::ensure_local(&c.database_url)?;
    let payload = payload_arg(&c).unwrap_or(DEFAULT_PAYLOAD_BYTES);
    eprintln!(
        "ceiling: {} with {} connections, {} s warm-up + {} s measured, {payload}-byte payload",
        engine.name(),
        c.clients,
        c.warmup,
        c.duration
    );
    let r = ceiling::measure(
        &c.database_url,
        c.clients,
        secs(c.warmup),
        secs(c.duration),
        payload,
    )
    .await?;
    print_table(
        &[
            "engine",
            "clients",
            "inserts",
            "inserts/s",
            "p50 ms",
            "p99 ms",
            "p999 ms",
            "errors",
            "payload B",
        ],
        &[vec![
            r.engine.name().to_string(),
            r.clients.to_string(),
            r.inserts.to_string(),
            f1(r.per_second()),
            f2(r.latency.p50_ms),
            f2(r.latency.p99_ms),
            f2(r.latency.p999_ms),
            r.errors.to_string(),
            r.payload_bytes.to_string(),
        ]],
    );
    if let Some(path) = &c.json {
        write_json(path, &json!({"ceiling": r.json()}))?;
    }
    Ok(r.errors == 0)
}

fn http_client(clients: u32) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        // Loopback only: never route through a proxy from the environment.
        .no_proxy()
        .pool_max_idle_per_host(clients as usize)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")
}

/// `run`: the lifecycles, then the ceiling, then the ratio. Ok(false) when errors
/// were counted.
async fn run(a: RunArgs) -> Result<bool> {
    let c = &a.common;
    let engine = ceiling::ensure_local(&c.database_url)?;
    let cli = service::Cli::new(&a.bin, &c.database_url)?;
    let http = http_client(c.clients)?;

    let (admin, server) = service::Server::prepare_demo(&cli, &http).await?;
    // On Ctrl-C or SIGTERM the server is still stopped before we exit.
    let driven = tokio::select! {
        r = drive(&a, &cli, &http, &server.base, admin) => r,
        s = interrupted() => Err(anyhow::anyhow!("interrupted by {s}")),
    };
    let stopped = server.stop().await;
    let (lifecycles, measured_payload, batches) = driven?;
    match stopped {
        Ok(status) if !status.success() => {
            eprintln!("note: yiwang serve exited with {status} after SIGTERM")
        }
        Ok(_) => {}
        Err(e) => eprintln!("warning: stopping yiwang serve: {e:#}"),
    }

    let payload = payload_arg(c)
        .or(measured_payload)
        .unwrap_or(DEFAULT_PAYLOAD_BYTES);
    eprintln!(
        "ceiling: raw single-row INSERTs, {} connections, {} s warm-up + {} s measured, {payload}-byte payload",
        c.clients, c.warmup, c.duration
    );
    let ceiling = ceiling::measure(
        &c.database_url,
        c.clients,
        secs(c.warmup),
        secs(c.duration),
        payload,
    )
    .await?;

    report(engine, &lifecycles, batches, &ceiling, c)?;
    Ok(lifecycles.errors == 0 && lifecycles.replay_mismatches == 0 && ceiling.errors == 0)
}

/// Resolves when SIGINT or SIGTERM arrives; names the signal.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        Err(_) => {
            // Without a SIGTERM handler, still honour Ctrl-C; if even that cannot be
            // installed, never resolve, so that the run itself decides the outcome.
            match tokio::signal::ctrl_c().await {
                Ok(()) => "SIGINT",
                Err(_) => std::future::pending().await,
            }
        }
    }
}

/// Everything that needs the server running: discovery, tokens, the lifecycles and
/// the size of the events they produced.
async fn drive(
    a: &RunArgs,
    cli: &service::Cli,
    http: &reqwest::Client,
    base: &str,
    admin: String,
) -> Result<(LifecycleResult, Option<usize>, Option<lifecycle::Batches>)> {
    let c = &a.common;
    let org = lifecycle::discover(http, base, &admin).await?;
    eprintln!(
        "org: district {}, department {}, grid {}, category {}",
        org.district, org.department, org.grid, org.category
    );
    let tokens = Tokens::issue(cli, &org, admin).await?;
    let target = Target {
        base: base.to_string(),
        tokens,
        org,
    };
    eprintln!(
        "lifecycles: {} clients, {} s warm-up + {} s measured",
        c.clients, c.warmup, c.duration
    );
    let result = lifecycle::drive(
        http,
        target.clone(),
        c.clients,
        secs(c.warmup),
        secs(c.duration),
        a.replay_percent,
    )
    .await?;
    let batches = match lifecycle::Batches::fetch(http, base).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("could not read the append batches from /metrics ({e:#})");
            None
        }
    };
    let size = match &result.closed_ticket {
        Some(id) => match lifecycle::event_size(http, &target, id).await {
            Ok(n) => {
                eprintln!("mean ticket event (JSON as served): {n} bytes");
                Some(n)
            }
            Err(e) => {
                eprintln!("could not measure the event size ({e:#}); using the default");
                None
            }
        },
        None => None,
    };
    Ok((result, size, batches))
}

fn report(
    engine: Engine,
    l: &LifecycleResult,
    batches: Option<lifecycle::Batches>,
    ceil: &CeilingResult,
    c: &Common,
) -> Result<()> {
    let ratio = if ceil.per_second() > 0.0 {
        l.per_second() / ceil.per_second()
    } else {
        0.0
    };
    println!();
    println!(
        "yiwang-load: {} clients, {} s measured after {} s warm-up (each phase)",
        c.clients, c.duration, c.warmup
    );
    print_table(
        &[
            "engine",
            "clients",
            "commands",
            "commands/s",
            "p50 ms",
            "p99 ms",
            "p999 ms",
            "errors",
            "raw inserts/s",
            "ratio",
        ],
        &[vec![
            engine.name().to_string(),
            l.clients.to_string(),
            l.commands.to_string(),
            f1(l.per_second()),
            f2(l.latency.p50_ms),
            f2(l.latency.p99_ms),
            f2(l.latency.p999_ms),
            l.errors.to_string(),
            f1(ceil.per_second()),
            format!("{ratio:.3}"),
        ]],
    );
    println!();
    let rows: Vec<Vec<String>> = l
        .by_command
        .iter()
        .map(|s| {
            vec![
                s.name.to_string(),
                s.count.to_string(),
                f2(s.latency.p50_ms),
                f2(s.latency.p99_ms),
                f2(s.latency.p999_ms),
                f2(s.latency.max_ms),
            ]
        })
        .collect();
    print_table(
        &["command", "count", "p50 ms", "p99 ms", "p999 ms", "max ms"],
        &rows,
    );
    println!();
    println!(
        "lifecycles: {} completed, {} abandoned on error; {} idempotent replays, {} id mismatches; {} errors during warm-up",
        l.lifecycles_completed,
        l.lifecycles_abandoned,
        l.replays,
        l.replay_mismatches,
        l.warmup_errors
    );
    println!(
        "ceiling: {} inserts of {} bytes, {} errors, insert p50 {} / p99 {} / p999 {} ms",
        ceil.inserts,
        ceil.payload_bytes,
        ceil.errors,
        f2(ceil.latency.p50_ms),
        f2(ceil.latency.p99_ms),
        f2(ceil.latency.p999_ms)
    );
    if let Some(b) = batches {
        println!(
            "append batches (warm-up included): {:.0}, {:.2} requests and {:.2} ms each on average",
            b.count, b.mean_requests, b.mean_ms
        );
    }
    println!("ratio = commands/s ÷ raw inserts/s = {ratio:.3}");
    if let Some(path) = &c.json {
        write_json(
            path,
            &json!({
                "engine": engine.name(),
                "clients": c.clients,
                "warmup_s": c.warmup,
                "duration_s": c.duration,
                "lifecycle": l.json(),
                "ceiling": ceil.json(),
                "append_batches": batches.map(|b| b.json()),
                "ratio": stats::round3(ratio),
            }),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bounds_are_enforced() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        assert!(
            parse(&[
                "yiwang-load",
                "ceiling",
                "--database-url",
                "sqlite::memory:",
                "--clients",
                "0"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "yiwang-load",
                "ceiling",
                "--database-url",
                "sqlite::memory:",
                "--duration",
                "100000"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "yiwang-load",
                "run",
                "--bin",
                "x",
                "--database-url",
                "sqlite::memory:",
                "--clients",
                "64",
                "--duration",
                "10",
                "--warmup",
                "2",
                "--json",
                "o.json"
            ])
            .is_ok()
        );
    }
}
