//! The ceiling: raw single-row INSERT transactions per second against the same
//! database, at the same concurrency, with a payload the size of a ticket event.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::stats::{self, Latency, Window};

/// Name of the scratch table; created before the measurement and dropped after it.
pub const TABLE: &str = "load_raw_insert";

/// How many failing statements are printed in full.
const PRINTED_ERRORS: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn of(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Engine::Postgres)
        } else {
            bail!("unsupported database URL (expected sqlite:… or postgres://…): {url}")
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// The load generator only ever talks to this machine: a PostgreSQL URL must name a
/// loopback host or a Unix socket. SQLite is a local file by definition.
pub fn ensure_local(url: &str) -> Result<Engine> {
    let engine = Engine::of(url)?;
    if engine == Engine::Postgres {
        let opts = PgConnectOptions::from_str(url).context("parsing the PostgreSQL URL")?;
        if opts.get_socket().is_none() && !is_loopback_host(opts.get_host()) {
            bail!(
                "refusing non-loopback database host {:?}: yiwang-load only drives 127.0.0.1 / ::1 / localhost / a Unix socket",
                opts.get_host()
            );
        }
    }
    Ok(engine)
}

fn is_loopback_host(host: &str) -> bool {
    if host.starts_with('/') || host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// A JSON text shaped like a stored ticket event (data plus metadata), padded to
/// exactly `bytes` bytes. Below the size of that natural form, a bare
/// `{"type":…,"pad":"xx…"}` of exactly `bytes` bytes (never shorter than its skeleton).
pub fn event_like_payload(bytes: usize) -> String {
    let event = json!({
        "type": "TicketAccepted",
        "data": {
            "number": "WHJK-2026-000001",
            "source": "hotline",
            "category": "city.garbage",
            "title": "路灯不亮",
            "description": "市民反映小区门口路灯连续三晚不亮，夜间出行不便，存在安全隐患，请尽快处理。",
            "urgency": "normal",
            "location": {"address": "威海经区皇冠街道", "lat": 37.5, "lon": 122.1, "grid": "G-001"},
            "reporter_ref": "0190f3a2-7c1e-7b3e-9d55-3f0c1a2b4c5d",
            "unit": "district",
            "deadlines": {"sign": "2026-05-08T17:30:00+08:00", "handle": "2026-05-14T17:30:00+08:00"}
        },
        "metadata": {
            "actor": "load-hotline", "role": "hotline_agent", "unit": "district",
            "correlation_id": "0190f3a2-7c1e-7b3e-9d55-3f0c1a2b4c5e",
            "causation_id": "0190f3a2-7c1e-7b3e-9d55-3f0c1a2b4c5f",
            "idempotency_key": "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f",
            "prev_hash": "9f2c7d1e0b8a6f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a190807f6e"
        }
    });
    // `,"pad":""` adds this many bytes before any padding characters.
    let overhead = ",\"pad\":\"\"".len();
    let natural = event.to_string().len();
    let mut v = if bytes >= natural + overhead {
        event
    } else {
        json!({"type": "TicketAccepted"})
    };
    let base = v.to_string().len();
    if let Value::Object(map) = &mut v {
        let fill = bytes.saturating_sub(base + overhead);
        map.insert("pad".into(), Value::String("x".repeat(fill)));
    }
    v.to_string()
}

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    /// Open `clients` connections configured as the service configures its own
    /// (for SQLite the options of `yiwang::store::sqlite::connect_options`).
    async fn open(url: &str, engine: Engine, clients: u32) -> Result<Self> {
        Ok(match engine {
            Engine::Sqlite => {
                let opts = SqliteConnectOptions::from_str(url)
                    .context("parsing the SQLite URL")?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true);
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(clients)
                        .connect_with(opts)
                        .await
                        .context("opening the SQLite database")?,
                )
            }
            Engine::Postgres => Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(clients)
                    .connect(url)
                    .await
                    .context("connecting to PostgreSQL")?,
            ),
        })
    }

    /// Open every connection now so that connecting is not part of the measurement.
    async fn warm(&self, clients: u32) -> Result<()> {
        match self {
            Pool::Sqlite(p) => {
                let mut held = Vec::with_capacity(clients as usize);
                for _ in 0..clients {
                    held.push(p.acquire().await?);
                }
            }
            Pool::Postgres(p) => {
                let mut held = Vec::with_capacity(clients as usize);
                for _ in 0..clients {
                    held.push(p.acquire().await?);
                }
            }
        }
        Ok(())
    }

    async fn exec(&self, sql: &str) -> Result<()> {
        match self {
            Pool::Sqlite(p) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(p)
                .await
                .map(drop)?,
            Pool::Postgres(p) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(p)
                .await
                .map(drop)?,
        }
        Ok(())
    }

    async fn create_table(&self) -> Result<()> {
        self.exec(&format!("DROP TABLE IF EXISTS {TABLE}")).await?;
        let ddl = match self {
            Pool::Sqlite(_) => format!(
                "CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, stream_id TEXT NOT NULL, payload TEXT NOT NULL)"
            ),
            Pool::Postgres(_) => format!(
                "CREATE TABLE {TABLE} (id BIGSERIAL PRIMARY KEY, stream_id TEXT NOT NULL, payload TEXT NOT NULL)"
            ),
        };
        self.exec(&ddl).await
    }

    /// One autocommit transaction holding one single-row INSERT.
    async fn insert(&self, stream_id: &str, payload: &str) -> Result<(), sqlx::Error> {
        match self {
            Pool::Sqlite(p) => {
                sqlx::query("INSERT INTO load_raw_insert (stream_id, payload) VALUES (?1, ?2)")
                    .bind(stream_id)
                    .bind(payload)
                    .execute(p)
                    .await?;
            }
            Pool::Postgres(p) => {
                sqlx::query("INSERT INTO load_raw_insert (stream_id, payload) VALUES ($1, $2)")
                    .bind(stream_id)
                    .bind(payload)
                    .execute(p)
                    .await?;
            }
        }
        Ok(())
    }

    async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

#[derive(Clone, Debug)]
pub struct CeilingResult {
    pub engine: Engine,
    pub clients: u32,
    pub seconds: f64,
    pub inserts: u64,
    pub errors: u64,
    pub payload_bytes: usize,
    pub latency: Latency,
}

impl CeilingResult {
    pub fn per_second(&self) -> f64 {
        stats::rate(self.inserts, self.seconds)
    }

    pub fn json(&self) -> Value {
        json!({
            "engine": self.engine.name(),
            "clients": self.clients,
            "seconds": stats::round3(self.seconds),
            "inserts": self.inserts,
            "inserts_per_s": stats::round3(self.per_second()),
            "errors": self.errors,
            "payload_bytes": self.payload_bytes,
            "latency": self.latency.json(),
        })
    }
}

/// Measure raw INSERT tx/s: `clients` tasks, each looping one-row autocommit INSERTs
/// for `warmup` (not counted) plus `duration`. The scratch table is dropped afterwards,
/// whether or not the measurement succeeded.
pub async fn measure(
    url: &str,
    clients: u32,
    warmup: Duration,
    duration: Duration,
    payload_bytes: usize,
) -> Result<CeilingResult> {
    let engine = ensure_local(url)?;
    let pool = Pool::open(url, engine, clients).await?;
    pool.create_table()
        .await
        .with_context(|| format!("creating the scratch table {TABLE}"))?;
    let outcome = run_clients(&pool, engine, clients, warmup, duration, payload_bytes).await;
    let dropped = pool.exec(&format!("DROP TABLE IF EXISTS {TABLE}")).await;
    pool.close().await;
    let result = outcome?;
    dropped.with_context(|| format!("dropping the scratch table {TABLE}"))?;
    Ok(result)
}

async fn run_clients(
    pool: &Pool,
    engine: Engine,
    clients: u32,
    warmup: Duration,
    duration: Duration,
    payload_bytes: usize,
) -> Result<CeilingResult> {
    pool.warm(clients).await.context("opening the pool")?;
    let payload: Arc<str> = event_like_payload(payload_bytes).into();
    let printed = Arc::new(AtomicUsize::new(0));
    let window = Window::after_warmup(warmup, duration);
    let mut tasks = Vec::with_capacity(clients as usize);
    for _ in 0..clients {
        let pool = pool.clone();
        let payload = payload.clone();
        let printed = printed.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = stats::new_histogram();
            let (mut ok, mut errors) = (0u64, 0u64);
            while window.open(Instant::now()) {
                let stream_id = uuid::Uuid::new_v4().to_string();
                let t0 = Instant::now();
                let r = pool.insert(&stream_id, &payload).await;
                let t1 = Instant::now();
                let counted = window.counts(t1);
                match r {
                    Ok(()) if counted => {
                        ok += 1;
                        stats::record(&mut hist, t1 - t0);
                    }
                    Ok(()) => {}
                    Err(e) => {
                        if counted {
                            errors += 1;
                        }
                        if printed.fetch_add(1, Ordering::Relaxed) < PRINTED_ERRORS {
                            eprintln!("ceiling: INSERT failed: {e}");
                        }
                        // Do not spin on a database that refuses everything.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (ok, errors, hist)
        }));
    }
    let mut hist: Histogram<u64> = stats::new_histogram();
    let (mut inserts, mut errors) = (0u64, 0u64);
    for t in tasks {
        let (ok, err, h) = t.await.context("a ceiling task panicked")?;
        inserts += ok;
        errors += err;
        stats::merge(&mut hist, &h);
    }
    Ok(CeilingResult {
        engine,
        clients,
        seconds: window.seconds(),
        inserts,
        errors,
        payload_bytes: payload.len(),
        latency: Latency::of(&hist),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_requested_size_and_is_json() {
        for n in [64, 620, 900, 1024, 1500, 4096] {
            let p = event_like_payload(n);
            assert_eq!(p.len(), n);
            let v: Value = serde_json::from_str(&p).expect("valid JSON");
            assert_eq!(v["type"], "TicketAccepted");
        }
        // Smaller than the skeleton: the skeleton, still valid.
        let p = event_like_payload(10);
        assert!(p.len() > 10 && p.len() < 64);
        serde_json::from_str::<Value>(&p).expect("valid JSON");
    }

    #[test]
    fn only_loopback_databases() {
        assert!(ensure_local("sqlite:///tmp/x/y.db?mode=rwc").is_ok());
        assert!(ensure_local("postgres://postgres@127.0.0.1:5432/x").is_ok());
        assert!(ensure_local("postgres://postgres@localhost/x").is_ok());
        assert!(ensure_local("postgresql://postgres@[::1]:5432/x").is_ok());
        assert!(ensure_local("postgres://postgres@10.0.0.5/x").is_err());
        assert!(ensure_local("postgres://postgres@db.example.com/x").is_err());
        assert!(ensure_local("mysql://root@127.0.0.1/x").is_err());
    }

    #[test]
    fn engine_names() {
        assert_eq!(
            Engine::of("sqlite::memory:").map(Engine::name).ok(),
            Some("sqlite")
        );
        assert_eq!(
            Engine::of("postgresql://127.0.0.1/x")
                .map(Engine::name)
                .ok(),
            Some("postgres")
        );
    }
}
