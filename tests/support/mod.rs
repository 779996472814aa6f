//! Test support shared by the suites: a fresh database per test on each engine, and
//! the service on a loopback port with real HTTP.
//!
//! SQLite always runs. PostgreSQL runs when `YIWANG_TEST_DATABASE_URL` names a server
//! (an admin URL; each test creates and drops its own database there); without it the
//! PostgreSQL half is skipped with a printed reason, and under `CI=true` a missing or
//! unreachable server fails the test instead.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use sqlx::Connection;
use uuid::Uuid;
use yiwang::app::App;
use yiwang::auth::{self, Role};
use yiwang::sla::{Calendar, SlaSettings};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub const PG_ENV: &str = "YIWANG_TEST_DATABASE_URL";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The engines this run covers.
pub async fn engines() -> Vec<Engine> {
    let mut out = vec![Engine::Sqlite];
    match std::env::var(PG_ENV) {
        Ok(url) => match sqlx::PgConnection::connect(&url).await {
            Ok(c) => {
                let _ = c.close().await;
                out.push(Engine::Postgres);
            }
            Err(e) if in_ci() => panic!("CI=true and PostgreSQL at {PG_ENV} is unreachable: {e}"),
            Err(e) => eprintln!("skipping PostgreSQL: {PG_ENV} is set but unreachable ({e})"),
        },
        Err(_) if in_ci() => {
            panic!("CI=true but {PG_ENV} is not set: the PostgreSQL half cannot be skipped in CI")
        }
        Err(_) => eprintln!(
            "skipping PostgreSQL: set {PG_ENV}=postgres://postgres@127.0.0.1:5432/postgres to run it"
        ),
    }
    out
}

/// A fresh, empty database.
pub struct TestDb {
    pub engine: Engine,
    pub url: String,
    admin: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(engine: Engine) -> TestDb {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/yiwang.db", dir.path().display());
                TestDb {
                    engine,
                    url,
                    admin: None,
                    _dir: Some(dir),
                }
            }
            Engine::Postgres => {
                let admin = std::env::var(PG_ENV).expect("engines() checked the variable");
                let name = format!("yiwang_test_{}", Uuid::new_v4().simple());
                let mut c = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("connect admin");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut c)
                    .await
                    .expect("create test database");
                let url = format!(
                    "{}/{name}",
                    admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin)
                );
                TestDb {
                    engine,
                    url,
                    admin: Some((admin, name)),
                    _dir: None,
                }
            }
        }
    }

    /// Drops a PostgreSQL test database (SQLite's folder goes with the value).
    pub async fn drop_db(&self) {
        if let Some((admin, name)) = &self.admin {
            if let Ok(mut c) = sqlx::PgConnection::connect(admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c)
                    .await;
            }
        }
    }
}

/// The service on a loopback port, with the demo organisation.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub app: Arc<App>,
    pub db: TestDb,
    tokens: std::sync::Mutex<HashMap<(Role, String), String>>,
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestApp {
    pub async fn spawn(engine: Engine) -> TestApp {
        TestApp::spawn_with_clock(engine, yiwang::clock::Clock::system()).await
    }

    /// The service with business time on `clock` (e.g. `Clock::manual`), so a test
    /// can stand at a chosen instant and move it (the SLA watcher's tests).
    pub async fn spawn_with_clock(engine: Engine, clock: yiwang::clock::Clock) -> TestApp {
        let db = TestDb::new(engine).await;
        let (base, app) = serve(&db, clock).await;
        yiwang::org::save(
            &app.store.pool(),
            include_str!("../../schema/reference/demo-org.json"),
            "demo",
        )
        .await
        .expect("save org")
        .expect("demo org is valid");
        TestApp {
            base,
            client: reqwest::Client::new(),
            app,
            db,
            tokens: Default::default(),
        }
    }

    /// Brings every projection up to the end of the feed, in this task (tests do
    /// not start the background runners, so what they read is deterministic).
    pub async fn catch_up(&self) {
        for p in yiwang::projections::all(&self.app) {
            while yiwang::projections::step(&self.app.store, p.as_ref(), 1000)
                .await
                .expect("projection step")
                .is_some()
            {}
        }
    }

    /// A token for `role` at `unit`, created once per test app.
    pub async fn token(&self, role: Role, unit: &str) -> String {
        if let Some(t) = self
            .tokens
            .lock()
            .expect("lock")
            .get(&(role, unit.to_string()))
        {
            return t.clone();
        }
        let (_, t) = auth::create_token(
            &self.app.store.pool(),
            &format!("{}@{unit}", role.as_str()),
            role,
            unit,
        )
        .await
        .expect("create token");
        self.tokens
            .lock()
            .expect("lock")
            .insert((role, unit.to_string()), t.clone());
        t
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Resp {
        let mut rq = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            rq = rq.bearer_auth(t);
        }
        if let Some(b) = body {
            rq = rq.json(b);
        }
        for (k, v) in headers {
            rq = rq.header(*k, v);
        }
        let r = rq.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            headers,
            body,
        }
    }

    /// A command with a fresh Idempotency-Key.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(
            reqwest::Method::POST,
            path,
            Some(token),
            Some(&body),
            &[("Idempotency-Key", Uuid::new_v4().to_string())],
        )
        .await
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(reqwest::Method::GET, path, Some(token), None, &[])
            .await
    }

    /// Every event in the log, through the gap-safe feed. On PostgreSQL the feed
    /// holds back an event until every older transaction of the cluster (any
    /// database: other tests run in parallel) has finished, so wait for it to settle
    /// up to the row count.
    pub async fn all_events(&self) -> Vec<yiwang::store::RecordedEvent> {
        let rows = self.count_rows("events").await;
        for _ in 0..100 {
            let evs = self
                .app
                .store
                .read_all(0, 1_000_000)
                .await
                .expect("read_all");
            if evs.len() as i64 >= rows {
                return evs;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the feed did not settle to {rows} events within 5 s");
    }

    /// Raw row count of a table (a check that bypasses the store's API).
    pub async fn count_rows(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self.app.store.pool() {
            yiwang::store::Pool::Postgres(p) => {
                sqlx::query_scalar(&sql).fetch_one(&p).await.expect("count")
            }
            yiwang::store::Pool::Sqlite(p) => {
                sqlx::query_scalar(&sql).fetch_one(&p).await.expect("count")
            }
        }
    }

    /// A hotline ticket in the district centre's queue; returns its JSON.
    pub async fn new_ticket(&self) -> Value {
        let hot = self.token(Role::HotlineAgent, "etdz").await;
        let r = self.post("/api/v1/tickets", &hot, ticket_body()).await;
        assert_eq!(r.status, 201, "create: {}", r.body);
        r.body
    }

    pub async fn finish(self) {
        self.db.drop_db().await;
    }
}

pub fn ticket_body() -> Value {
    serde_json::json!({
        "source": "hotline",
        "category": "city.exposed_garbage",
        "title": "路边垃圾堆积",
        "description": "市民反映小区门口垃圾三天未清运",
        "urgency": "normal",
        "location": {"address": "皇冠街道某小区", "lat": 37.5, "lon": 122.1, "grid": "hg-01-g01"},
        "reporter": {"name": "赵先生", "phone": "13800000000"}
    })
}

/// A second service instance on the same database (as several `serve` processes
/// would run on one PostgreSQL); returns its base URL.
pub async fn another_instance(db: &TestDb) -> (String, Arc<App>) {
    serve(db, yiwang::clock::Clock::system()).await
}

/// The service on a loopback port over `db`; returns its base URL and the app.
async fn serve(db: &TestDb, clock: yiwang::clock::Clock) -> (String, Arc<App>) {
    let app = yiwang::cli::build_app_with_clock(
        &db.url,
        Calendar::embedded(),
        SlaSettings::default(),
        clock,
    )
    .await
    .expect("build app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = yiwang::http::app(app.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), app)
}
