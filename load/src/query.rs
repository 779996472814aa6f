//! `query`: the latency of one GET route over real HTTP, next to the HTTP floor
//! (the same run against a bare route such as `/healthz`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::stats::{self, f2};

#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    /// The service, e.g. http://127.0.0.1:8080 (loopback only).
    #[arg(long)]
    pub url: String,
    /// A bearer token (`yiwang token create`).
    #[arg(long, env = "YIWANG_LOAD_TOKEN")]
    pub token: String,
    /// The path and query to GET, e.g. "/api/v1/stats/units?granularity=month".
    #[arg(long)]
    pub path: String,
    /// Measured requests.
    #[arg(short = 'n', long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub requests: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// Stop sending after this many seconds even if fewer than -n requests were
    /// made (0: no limit); the report names how many were made.
    #[arg(long, default_value_t = 0)]
    pub max_seconds: u64,
    /// Requests sent first and not counted (connections, caches).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub warmup: u64,
    /// The bare route measured the same way, as the HTTP floor ("" to skip).
    #[arg(long, default_value = "/healthz")]
    pub floor_path: String,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// One measured route.
struct Run {
    path: String,
    requests: u64,
    concurrency: u32,
    errors: u64,
    mean_bytes: f64,
    seconds: f64,
    hist: Histogram<u64>,
}

impl Run {
    fn ms(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            0.0
        } else {
            self.hist.value_at_quantile(q) as f64 / 1000.0
        }
    }

    fn row(&self) -> Vec<String> {
        vec![
            self.path.clone(),
            self.requests.to_string(),
            self.concurrency.to_string(),
            f2(self.ms(0.5)),
            f2(self.ms(0.9)),
            f2(self.ms(0.99)),
            f2(self.hist.max() as f64 / 1000.0),
            f2(self.hist.mean() / 1000.0),
            format!(
                "{:.1}",
                stats::rate(self.requests - self.errors, self.seconds)
            ),
            self.errors.to_string(),
            format!("{:.0}", self.mean_bytes),
        ]
    }

    fn json(&self) -> Value {
        json!({
            "path": self.path,
            "requests": self.requests,
            "concurrency": self.concurrency,
            "errors": self.errors,
            "p50_ms": stats::round3(self.ms(0.5)),
            "p90_ms": stats::round3(self.ms(0.9)),
            "p99_ms": stats::round3(self.ms(0.99)),
            "max_ms": stats::round3(self.hist.max() as f64 / 1000.0),
            "mean_ms": stats::round3(self.hist.mean() / 1000.0),
            "requests_per_s": stats::round3(stats::rate(self.requests - self.errors, self.seconds)),
            "mean_body_bytes": self.mean_bytes.round(),
        })
    }
}

/// Only loopback: this tool never sends load elsewhere.
fn check_local(url: &str) -> Result<String> {
    let u = reqwest::Url::parse(url).with_context(|| format!("{url:?} is not a URL"))?;
    match u.host_str() {
        Some("127.0.0.1" | "localhost" | "[::1]" | "::1") => {}
        other => bail!("refusing {url}: only a loopback host is allowed, not {other:?}"),
    }
    Ok(url.trim_end_matches('/').to_string())
}

async fn measure(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    a: &QueryArgs,
) -> Result<Run> {
    let url = format!("{base}{path}");
    let printed = Arc::new(AtomicU64::new(0));
    let one = |http: reqwest::Client, url: String, token: String, printed: Arc<AtomicU64>| async move {
        let started = Instant::now();
        let r = http.get(&url).bearer_auth(&token).send().await;
        let outcome = match r {
            Ok(resp) => {
                let status = resp.status();
                match resp.bytes().await {
                    Ok(body) if status.is_success() => Ok(body.len()),
                    Ok(body) => Err(format!(
                        "{status}: {}",
                        crate::service::tail(&String::from_utf8_lossy(&body), 400)
                    )),
                    Err(e) => Err(format!("reading the body: {e}")),
                }
            }
            Err(e) => Err(format!("{e}")),
        };
        let took = started.elapsed();
        if let Err(e) = &outcome
            && printed.fetch_add(1, Ordering::Relaxed) < 3
        {
            eprintln!("GET {url}: {e}");
        }
        (took, outcome)
    };
    for _ in 0..a.warmup {
        let _ = one(
            http.clone(),
            url.clone(),
            token.to_string(),
            printed.clone(),
        )
        .await;
    }
    printed.store(0, Ordering::Relaxed);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let budget = (a.max_seconds > 0).then(|| started + Duration::from_secs(a.max_seconds));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..a.concurrency {
        let (http, url, token, printed, next) = (
            http.clone(),
            url.clone(),
            token.to_string(),
            printed.clone(),
            next.clone(),
        );
        let total = a.requests;
        workers.spawn(async move {
            let mut h = stats::new_histogram();
            let (mut errors, mut bytes) = (0u64, 0u64);
            while budget.is_none_or(|b| Instant::now() < b)
                && next.fetch_add(1, Ordering::Relaxed) < total
            {
                let (took, outcome) =
                    one(http.clone(), url.clone(), token.clone(), printed.clone()).await;
                stats::record(&mut h, took);
                match outcome {
                    Ok(n) => bytes += n as u64,
                    Err(_) => errors += 1,
                }
            }
            (h, errors, bytes)
        });
    }
    let mut hist = stats::new_histogram();
    let (mut errors, mut bytes) = (0, 0);
    while let Some(r) = workers.join_next().await {
        let (h, e, b) = r.context("a query worker panicked")?;
        stats::merge(&mut hist, &h);
        errors += e;
        bytes += b;
    }
    let seconds = started.elapsed().as_secs_f64();
    let made = hist.len();
    let ok = made - errors;
    Ok(Run {
        path: path.to_string(),
        requests: made,
        concurrency: a.concurrency,
        errors,
        mean_bytes: if ok > 0 {
            bytes as f64 / ok as f64
        } else {
            0.0
        },
        seconds,
        hist,
    })
}

/// `query`: Ok(false) when errors were counted.
pub async fn query(a: QueryArgs) -> Result<bool> {
    let base = check_local(&a.url)?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(a.concurrency as usize)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(120))
        .build()
        .context("building the HTTP client")?;
    eprintln!(
        "query: GET {base}{} x {} ({} at a time, after {} not counted)",
        a.path, a.requests, a.concurrency, a.warmup
    );
    let route = measure(&http, &base, &a.token, &a.path, &a).await?;
    let floor = if a.floor_path.is_empty() {
        None
    } else {
        Some(measure(&http, &base, &a.token, &a.floor_path, &a).await?)
    };
    let mut rows = vec![route.row()];
    if let Some(f) = &floor {
        rows.push(f.row());
    }
    stats::print_table(
        &[
            "path", "requests", "conc", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms", "req/s",
            "errors", "bytes",
        ],
        &rows,
    );
    if let Some(path) = &a.json {
        let v = json!({
            "route": route.json(),
            "floor": floor.as_ref().map(Run::json),
        });
        std::fs::write(path, serde_json::to_string_pretty(&v)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(route.errors == 0 && floor.as_ref().is_none_or(|f| f.errors == 0))
}
