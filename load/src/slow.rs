//! `slow-headers`: slow-header ("slowloris") connections against `yiwang serve`
//! while a normal client keeps requesting.
//!
//! Prepares the database (migrate, org load --demo, an admin token), starts the
//! service on 127.0.0.1, and runs one normal client that sends `GET /api/v1/me`
//! every `--normal-interval-ms` over a kept-alive connection for the whole run. After
//! `--baseline-secs`, it opens `--slow` connections to the service, each sending a
//! request line and then one byte of a header every `--byte-interval-ms`, never
//! finishing the head. It records when the server closed each one (from its
//! connect), and the normal client's latency before the slow connections and while
//! they are open. Every connection goes to 127.0.0.1 only.
//!
//! Passes (exit 0) when every slow connection was closed within the header timeout
//! plus `--margin-secs` and the normal client saw no error.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::stats::{self, f2, print_table};

#[derive(clap::Args, Debug)]
pub struct SlowArgs {
    /// The service binary, e.g. target/release/yiwang.
    #[arg(long)]
    pub bin: PathBuf,
    /// sqlite:///path/yiwang.db?mode=rwc or postgres://user@127.0.0.1:5432/db (loopback only)
    #[arg(long)]
    pub database_url: String,
    /// Slow-header connections opened at once.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub slow: u32,
    /// Milliseconds between two bytes a slow connection sends.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub byte_interval_ms: u64,
    /// Milliseconds between the starts of two of the normal client's requests
    /// (it sends the next at once when one took longer). Its token's rate limit
    /// (5,000/s by default) must stay above this rate.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub normal_interval_ms: u64,
    /// Seconds the normal client runs alone first (the "before" latency).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub baseline_secs: u64,
    /// The service's header timeout (YIWANG_HEADER_TIMEOUT_SECS); default: the
    /// service's own default, which is then not set.
    #[arg(long)]
    pub header_timeout_secs: Option<u64>,
    /// How late after the header timeout a close still passes.
    #[arg(long, default_value_t = 3)]
    pub margin_secs: u64,
    /// Give up on a slow connection still open after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub max_wait_secs: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// One slow connection's outcome: seconds from its connect to the server's close.
struct Slow {
    closed_after: Option<f64>,
    bytes_sent: u64,
    answered: bool,
}

pub async fn run(a: SlowArgs) -> Result<bool> {
    let engine = crate::ceiling::ensure_local(&a.database_url)?;
    let cli = crate::service::Cli::new(&a.bin, &a.database_url)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .context("building the HTTP client")?;
    eprintln!("preparing the database: migrate, org load --demo, a token");
    cli.run(&["migrate"]).await?;
    cli.run(&["org", "load", "--demo"]).await?;
    let token = cli.token("load-slow", "admin", None).await?;
    let mut env = Vec::new();
    if let Some(s) = a.header_timeout_secs {
        env.push(("YIWANG_HEADER_TIMEOUT_SECS".to_string(), s.to_string()));
    }
    let header_timeout = a
        .header_timeout_secs
        .unwrap_or(yiwang::http::server::DEFAULT_HEADER_TIMEOUT_SECS);
    let server = crate::service::Server::start_with(&cli, &http, &env).await?;
    eprintln!(
        "yiwang serve is up at {} (log {})",
        server.base,
        server.log.display()
    );
    let outcome = drive(&a, &http, &server.base, &token).await;
    if let Err(e) = server.stop().await {
        eprintln!("warning: stopping yiwang serve: {e:#}");
    }
    let (slow, before, during, errors) = outcome?;

    let limit = (header_timeout + a.margin_secs) as f64;
    let mut closes: Vec<f64> = slow.iter().filter_map(|s| s.closed_after).collect();
    closes.sort_by(f64::total_cmp);
    let open = slow.iter().filter(|s| s.closed_after.is_none()).count();
    let late = closes.iter().filter(|c| **c > limit).count();
    let answered = slow.iter().filter(|s| s.answered).count();
    let q = |p: f64| -> f64 {
        if closes.is_empty() {
            return 0.0;
        }
        let i = ((closes.len() - 1) as f64 * p).round() as usize;
        closes[i]
    };
    println!(
        "{} slow-header connections, one byte every {} ms; header timeout {} s (+{} s margin)",
        slow.len(),
        a.byte_interval_ms,
        header_timeout,
        a.margin_secs
    );
    print_table(
        &[
            "engine",
            "closed",
            "still open",
            "answered",
            "min s",
            "p50 s",
            "max s",
            "late",
        ],
        &[vec![
            engine.name().to_string(),
            closes.len().to_string(),
            open.to_string(),
            answered.to_string(),
            f2(q(0.0)),
            f2(q(0.5)),
            f2(q(1.0)),
            late.to_string(),
        ]],
    );
    println!(
        "closed after (s, from connect): {}",
        closes.iter().map(|c| f2(*c)).collect::<Vec<_>>().join(" ")
    );
    let lb = stats::Latency::of(&before);
    let ld = stats::Latency::of(&during);
    println!(
        "normal client, GET /api/v1/me every {} ms on a kept-alive connection:",
        a.normal_interval_ms
    );
    print_table(
        &["phase", "requests", "p50 ms", "p99 ms", "max ms"],
        &[
            vec![
                "before".into(),
                before.len().to_string(),
                f2(lb.p50_ms),
                f2(lb.p99_ms),
                f2(lb.max_ms),
            ],
            vec![
                "during".into(),
                during.len().to_string(),
                f2(ld.p50_ms),
                f2(ld.p99_ms),
                f2(ld.max_ms),
            ],
        ],
    );
    println!("normal client errors: {errors}");
    if let Some(path) = &a.json {
        let v = json!({
            "engine": engine.name(),
            "slow": slow.len(),
            "byte_interval_ms": a.byte_interval_ms,
            "header_timeout_secs": header_timeout,
            "closed_after_secs": closes.iter().map(|c| stats::round3(*c)).collect::<Vec<_>>(),
            "still_open": open,
            "answered": answered,
            "bytes_sent": slow.iter().map(|s| s.bytes_sent).sum::<u64>(),
            "normal_before": json!({"requests": before.len(), "latency": lb.json()}),
            "normal_during": json!({"requests": during.len(), "latency": ld.json()}),
            "normal_errors": errors,
            "normal_interval_ms": a.normal_interval_ms,
        });
        crate::write_json(path, &v)?;
    }
    let ok = open == 0 && late == 0 && answered == 0 && errors == 0;
    if !ok {
        eprintln!(
            "FAILED: {open} still open, {late} closed later than {limit} s, {answered} answered, {errors} normal errors"
        );
    }
    Ok(ok)
}

type Outcome = (Vec<Slow>, Histogram<u64>, Histogram<u64>, u64);

async fn drive(a: &SlowArgs, http: &reqwest::Client, base: &str, token: &str) -> Result<Outcome> {
    let port: u16 = base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("the service's port")?;
    // Loopback only, whatever the base says.
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let slow_phase = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let normal = {
        let http = http.clone();
        let url = format!("{base}/api/v1/me");
        let token = token.to_string();
        let slow_phase = slow_phase.clone();
        let stop = stop.clone();
        let every = Duration::from_millis(a.normal_interval_ms);
        tokio::spawn(async move {
            let mut before = stats::new_histogram();
            let mut during = stats::new_histogram();
            let mut errors = 0u64;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let phase = slow_phase.load(Ordering::Relaxed);
                let started = Instant::now();
                let outcome = match http
                    .get(&url)
                    .bearer_auth(&token)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        r.bytes().await.map(|_| ()).map_err(|e| e.to_string())
                    }
                    Ok(r) => Err(format!("status {}", r.status())),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = outcome {
                    if errors < 3 {
                        eprintln!("normal client error: {e}");
                    }
                    errors += 1;
                    continue;
                }
                let h = if phase { &mut during } else { &mut before };
                stats::record(h, started.elapsed());
            }
            (before, during, errors)
        })
    };
    tokio::time::sleep(Duration::from_secs(a.baseline_secs)).await;
    eprintln!("opening {} slow-header connections to {addr}", a.slow);
    slow_phase.store(true, Ordering::Relaxed);
    let interval = Duration::from_millis(a.byte_interval_ms);
    let max_wait = Duration::from_secs(a.max_wait_secs);
    let tasks: Vec<_> = (0..a.slow)
        .map(|_| tokio::spawn(slow_connection(addr, interval, max_wait)))
        .collect();
    let mut slow = Vec::with_capacity(tasks.len());
    for t in tasks {
        slow.push(t.await.context("a slow connection's task")??);
    }
    stop.store(true, Ordering::Relaxed);
    let (before, during, errors) = normal.await.context("the normal client's task")?;
    Ok((slow, before, during, errors))
}

/// One slowloris connection: the request line, then a header a byte at a time;
/// returns when the server closes it (or after `max_wait`).
async fn slow_connection(addr: SocketAddr, interval: Duration, max_wait: Duration) -> Result<Slow> {
    let opened = Instant::now();
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let (mut rd, mut wr) = stream.into_split();
    let sent = Arc::new(AtomicU64::new(0));
    let counted = sent.clone();
    let writer = tokio::spawn(async move {
        if wr
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .await
            .is_err()
        {
            return;
        }
        loop {
            tokio::time::sleep(interval).await;
            if wr.write_all(b"a").await.is_err() {
                return;
            }
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });
    let mut buf = [0u8; 1024];
    let mut answered = false;
    let deadline = tokio::time::Instant::now() + max_wait;
    let closed_after = loop {
        match tokio::time::timeout_at(deadline, rd.read(&mut buf)).await {
            Err(_) => break None,
            Ok(Ok(0)) | Ok(Err(_)) => break Some(opened.elapsed().as_secs_f64()),
            Ok(Ok(_)) => answered = true,
        }
    };
    writer.abort();
    Ok(Slow {
        closed_after,
        bytes_sent: sent.load(Ordering::Relaxed),
        answered,
    })
}
