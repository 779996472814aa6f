//! `search`: the queue's text search (`GET /api/v1/tickets?q=`) over a database of
//! many tickets, next to a bare indexed lookup (`GET /api/v1/tickets/{id}`) measured
//! in the same run on the same database (issue 22: p99 ≤ 50 ms over 100,000
//! tickets on both engines).
//!
//! The tickets are the seed's (`plan.rs`: the organisation's categories, addresses
//! on ten streets of each township, the hotline's wording), appended through the
//! yiwang library as accepted tickets with their view row and search entry, as the
//! service writes a new ticket. Only their acceptance is appended: what a search
//! reads is the text, which the rest of a history does not change.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use uuid::Uuid;

use yiwang::app::decide::{new_events, view_row};
use yiwang::repo::tickets::search::SearchRow;
use yiwang::sla::{Calendar, SlaSettings};
use yiwang::store::hash::GENESIS;
use yiwang::store::{AppendRequest, Metadata, ViewHandler};

use crate::plan::{History, World, plan_ticket};
use crate::service::{Cli, Server};
use crate::stats::{f2, print_table};

#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    /// The service binary, e.g. target/release/yiwang.
    #[arg(long)]
    pub bin: PathBuf,
    /// sqlite://PATH?mode=rwc or postgres://… on loopback; tickets are added until
    /// it holds `--tickets` (a database seeded before is reused).
    #[arg(long)]
    pub database_url: String,
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub tickets: u64,
    /// Measured requests per query kind, one at a time.
    #[arg(short = 'n', long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(10..=100_000))]
    pub requests: u64,
    /// Requests per kind sent first and not counted.
    #[arg(long, default_value_t = 20)]
    pub warmup: u64,
    /// Concurrent tasks appending tickets.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub clients: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Two-character words of the seeded text, from narrow (流动摊贩) to broad (安全
/// is in eight category names).
const WORDS: [&str; 5] = ["摊贩", "垃圾", "噪声", "纠纷", "安全"];
/// Streets of the seed's addresses (`plan::ADDRESSES`).
const STREETS: [&str; 5] = ["青岛路", "海南路", "齐鲁大道", "香港路", "泰山路"];
/// The township whose dispatcher searches within its scope (皇冠街道).
const TOWNSHIP: &str = "hg";

pub async fn run(a: SearchArgs) -> Result<bool> {
    let engine = crate::ceiling::ensure_local(&a.database_url)?;
    let cli = Cli::new(&a.bin, &a.database_url)?;
    cli.run(&["migrate"]).await?;
    cli.run(&["org", "load", "--demo"]).await?;
    let started = Instant::now();
    let added = fill(&a).await?;
    eprintln!(
        "search: {added} tickets added in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if a.database_url.starts_with("postgres") {
        // Straight after a bulk load (or migration 0015's update of every search
        // row) the visibility map is unset and the statistics stale: a count reads
        // the heap and the plans guess. Autovacuum would get there; the benchmark
        // measures the settled state a city's database is in.
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&a.database_url).await?;
        sqlx::raw_sql("VACUUM (ANALYZE)").execute(&mut conn).await?;
    }
    let admin = cli.token("load-search", "admin", None).await?;
    // A township's dispatcher: the same searches within its scope, which the page
    // checks for every city-wide match in the queue's narrow rows (`ticket_queue`).
    let township = cli
        .token("load-search-hg", "dispatcher", Some(TOWNSHIP))
        .await?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    // The projections brought up to date before the service starts, and no
    // verification of the whole log at its start: neither is what a search costs,
    // and either would take the cores while it is measured.
    let started = Instant::now();
    cli.run(&["replay"]).await?;
    eprintln!(
        "search: projections rebuilt in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let env = [("YIWANG_VERIFY_INTERVAL_SECS".to_string(), "0".to_string())];
    let server = Server::start_with(&cli, &http, &env).await?;
    let result = measure(&a, &http, &server.base, &admin, &township).await;
    server.stop().await?;
    let (rows, ok) = result?;
    let by_id_p99 = rows.first().map_or(1.0, |r| r.ms(0.99)).max(1e-9);
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                engine.name().to_string(),
                r.name.to_string(),
                r.hist.len().to_string(),
                f2(r.ms(0.5)),
                f2(r.ms(0.99)),
                f2(r.hist.max() as f64 / 1000.0),
                format!("{:.0}", r.mean_total()),
                format!("{:.2}", r.ms(0.99) / by_id_p99),
                r.errors.to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            "engine",
            "query",
            "requests",
            "p50 ms",
            "p99 ms",
            "max ms",
            "mean total",
            "p99 / by-id p99",
            "errors",
        ],
        &table,
    );
    if let Some(path) = &a.json {
        let doc = json!({
            "engine": engine.name(),
            "tickets": a.tickets,
            "rows": rows.iter().map(|r| json!({
                "query": r.name,
                "requests": r.hist.len(),
                "p50_ms": r.ms(0.5),
                "p99_ms": r.ms(0.99),
                "max_ms": r.hist.max() as f64 / 1000.0,
                "mean_total": r.mean_total(),
                "ratio_p99_to_by_id": r.ms(0.99) / by_id_p99,
                "errors": r.errors,
            })).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ok)
}

/// Adds accepted tickets until the database holds `a.tickets`; returns how many.
async fn fill(a: &SearchArgs) -> Result<u64> {
    let app = yiwang::app::build_app(
        &a.database_url,
        Calendar::embedded(),
        SlaSettings::default(),
    )
    .await
    .context("opening the database")?;
    let have = count(&app.store.pool()).await?;
    if have >= a.tickets {
        return Ok(0);
    }
    let want = a.tickets - have;
    let world = Arc::new(World::new(app.org.get(), app.sla.clone(), Utc::now())?);
    let planned = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for k in 0..a.clients {
        let (store, serials, world, planned) = (
            app.store.clone(),
            app.serials.clone(),
            world.clone(),
            planned.clone(),
        );
        let mut rng = StdRng::seed_from_u64(
            a.seed
                .wrapping_mul(1_000_003)
                .wrapping_add(u64::from(k) + have),
        );
        tasks.spawn(async move {
            let mut history = History::default();
            loop {
                let n = planned.fetch_add(1, Ordering::Relaxed);
                if n >= want {
                    break;
                }
                let at = world.accept_time(n as f64 / want as f64, &mut rng);
                let serial = serials.next().await?;
                let number = crate::seed::number(at, serial);
                let plan = plan_ticket(&world, &mut rng, at, number, &mut history)?;
                let Some(step) = plan.steps.into_iter().next() else {
                    continue;
                };
                let Some((actor, _, _)) = &step.command else {
                    continue;
                };
                let mut views: Vec<Arc<dyn ViewHandler>> = Vec::new();
                if let Some(c) = step.contact {
                    views.push(Arc::new(c));
                }
                views.push(Arc::new(view_row(&step.next)));
                views.push(Arc::new(SearchRow::of(&step.next)));
                store
                    .append(AppendRequest {
                        stream_id: plan.id,
                        expected_version: 0,
                        prev_hash: Some(GENESIS.to_string()),
                        events: new_events(&step.events, step.at),
                        metadata: Metadata {
                            actor: actor.user.clone(),
                            role: actor.role.as_str().to_string(),
                            unit: Some(actor.unit.clone()),
                            correlation_id: Uuid::now_v7(),
                            causation_id: None,
                            idempotency_key: None,
                            request_id: None,
                        },
                        idempotency: None,
                        views,
                    })
                    .await
                    .with_context(|| format!("appending ticket {}", plan.id))?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(count(&app.store.pool()).await? - have)
}

async fn count(pool: &yiwang::store::Pool) -> Result<u64> {
    let sql = "SELECT COUNT(*) FROM ticket_view";
    let n: i64 = match pool {
        yiwang::store::Pool::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
        yiwang::store::Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
    };
    Ok(n.max(0) as u64)
}

/// One kind of query, measured.
struct Row {
    name: &'static str,
    hist: Histogram<u64>,
    totals: u64,
    errors: u64,
}

impl Row {
    fn ms(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            0.0
        } else {
            self.hist.value_at_quantile(q) as f64 / 1000.0
        }
    }

    fn mean_total(&self) -> f64 {
        self.totals as f64 / self.hist.len().max(1) as f64
    }
}

/// A sample of tickets (id, number) spread over the database.
async fn sample(http: &reqwest::Client, base: &str, token: &str) -> Result<Vec<(String, String)>> {
    let page: Value = http
        .get(format!("{base}/api/v1/tickets?limit=1"))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    let total = page["total"].as_i64().unwrap_or(0).max(1);
    let mut out = Vec::new();
    for k in 0..5 {
        let offset = total * k / 5;
        let page: Value = http
            .get(format!(
                "{base}/api/v1/tickets?sort=created&limit=100&cursor=o{offset}"
            ))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        for t in page["items"].as_array().into_iter().flatten() {
            out.push((
                t["id"].as_str().unwrap_or_default().to_string(),
                t["number"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    if out.is_empty() {
        bail!("the service lists no tickets");
    }
    Ok(out)
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Each kind of query, `warmup` + `requests` times one at a time; the bare lookup
/// first (the ratios' denominator). Ok(false) with errors.
async fn measure(
    a: &SearchArgs,
    http: &reqwest::Client,
    base: &str,
    token: &str,
    township: &str,
) -> Result<(Vec<Row>, bool)> {
    let tickets = sample(http, base, token).await?;
    let mut rng = StdRng::seed_from_u64(a.seed);
    type PathFn<'a> = Box<dyn Fn(u64, &mut StdRng) -> String + 'a>;
    let mut kinds: Vec<(&'static str, PathFn)> = vec![
        (
            "GET /tickets/{id} (bare indexed lookup)",
            Box::new(|i, _| format!("/api/v1/tickets/{}", tickets[i as usize % tickets.len()].0)),
        ),
        (
            "GET /tickets?limit=50 (newest page, no filter)",
            Box::new(|_, _| "/api/v1/tickets?limit=50".to_string()),
        ),
        (
            "q = a ticket number",
            Box::new(|i, _| {
                format!(
                    "/api/v1/tickets?q={}",
                    enc(&tickets[i as usize % tickets.len()].1)
                )
            }),
        ),
        (
            "q = a 2-character word (摊贩 垃圾 噪声 纠纷 安全)",
            Box::new(|i, _| format!("/api/v1/tickets?q={}", enc(WORDS[i as usize % WORDS.len()]))),
        ),
        (
            "q = an address fragment (青岛路12号)",
            Box::new(|i, r: &mut StdRng| {
                let street = STREETS[i as usize % STREETS.len()];
                format!(
                    "/api/v1/tickets?q={}",
                    enc(&format!("{street}{}号", r.random_range(1..300)))
                )
            }),
        ),
        (
            "q = a street (齐鲁大道)",
            Box::new(|i, _| {
                format!(
                    "/api/v1/tickets?q={}",
                    enc(STREETS[i as usize % STREETS.len()])
                )
            }),
        ),
    ];
    let admin_kinds = kinds.len();
    kinds.push((
        "township dispatcher: newest page, no q",
        Box::new(|_, _| "/api/v1/tickets?limit=50".to_string()),
    ));
    kinds.push((
        "township dispatcher: q = a 2-character word",
        Box::new(|i, _| format!("/api/v1/tickets?q={}", enc(WORDS[i as usize % WORDS.len()]))),
    ));
    kinds.push((
        "township dispatcher: q = a street",
        Box::new(|i, _| {
            format!(
                "/api/v1/tickets?q={}",
                enc(STREETS[i as usize % STREETS.len()])
            )
        }),
    ));
    let mut rows = Vec::new();
    let mut ok = true;
    for (k, (name, path)) in kinds.iter().enumerate() {
        let token = if k < admin_kinds { token } else { township };
        let mut row = Row {
            name,
            hist: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            totals: 0,
            errors: 0,
        };
        for i in 0..a.warmup + a.requests {
            let p = path(i, &mut rng);
            let t0 = Instant::now();
            let r = http
                .get(format!("{base}{p}"))
                .bearer_auth(token)
                .send()
                .await;
            let body = match r {
                Ok(r) if r.status().is_success() => r.bytes().await.ok(),
                _ => None,
            };
            let us = t0.elapsed().as_micros() as u64;
            if i < a.warmup {
                continue;
            }
            match body {
                Some(b) => {
                    row.hist.record(us.max(1))?;
                    let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
                    row.totals += v["total"].as_u64().unwrap_or(1);
                }
                None => {
                    row.errors += 1;
                    ok = false;
                }
            }
        }
        eprintln!(
            "search: {name}: p50 {} ms, p99 {} ms",
            f2(row.ms(0.5)),
            f2(row.ms(0.99))
        );
        rows.push(row);
    }
    Ok((rows, ok))
}
