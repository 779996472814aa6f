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

pub mod scenario;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub const PG_ENV: &str = "YIWANG_TEST_DATABASE_URL";

/// Whether this is a CI run: `CI` is `true` or `1` (one rule for the whole suite;
/// `.ci/run` sets it). Then a test that cannot reach its engine or browser fails.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Leaves the mark `target/test-ran/{what}` (`sqlite`, `postgres`, `chromium`):
/// `.ci/run` fails when a mark is missing after `cargo test`, so a suite that
/// skipped an engine or the browser cannot pass as a whole.
pub fn ran(what: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-ran");
    // A mark that cannot be written shows as a missing mark in .ci/run.
    let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(what), b""));
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
        ran(match engine {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        });
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
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
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
        if let Some((admin, name)) = &self.admin
            && let Ok(mut c) = sqlx::PgConnection::connect(admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut c)
            .await;
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

    /// The service on an existing database (one `yiwang restore` filled, say) with
    /// business time on `clock`; the organisation is the one the database holds.
    pub async fn attach(db: TestDb, clock: yiwang::clock::Clock) -> TestApp {
        let (base, app) = serve(&db, clock).await;
        TestApp {
            base,
            client: reqwest::Client::new(),
            app,
            db,
            tokens: Default::default(),
        }
    }

    /// The position of the last committed event (0 for an empty log).
    pub async fn max_position(&self) -> i64 {
        max_position(&self.app.store.pool()).await
    }

    /// Waits until the feed shows every event committed so far. On PostgreSQL the
    /// feed holds back events while any older transaction of the cluster is open
    /// (other tests, in this binary or another, run in parallel), so a loop that
    /// steps a projection until the feed is empty could otherwise stop short.
    pub async fn settle(&self) {
        let last = self.max_position().await;
        let started = std::time::Instant::now();
        while yiwang::store::feed_horizon(&self.app.store.pool())
            .await
            .expect("feed horizon")
            < last
        {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "the feed did not reach position {last}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Brings every projection up to the end of the feed, in this task (tests do
    /// not start the background runners, so what they read is deterministic).
    /// On PostgreSQL the feed holds back events while any older transaction of the
    /// cluster is open (other tests run in parallel), so this waits until every
    /// projection has applied the last committed event.
    pub async fn catch_up(&self) {
        let last = self.max_position().await;
        let started = std::time::Instant::now();
        for p in yiwang::projections::all(&self.app.projection_handles()) {
            loop {
                while yiwang::projections::step(&self.app.store, p.as_ref(), 1000)
                    .await
                    .expect("projection step")
                    .is_some()
                {}
                if p.checkpoint().await.expect("checkpoint") >= last {
                    break;
                }
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(60),
                    "projection {} did not reach position {last}",
                    p.name()
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
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
        let method_name = method.as_str().to_ascii_lowercase();
        let method_name = method_name.as_str();
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
        // Every JSON answer of /api/v1 in the suite must conform to the OpenAPI document.
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if let Err(why) = conforms(method_name, path, status, content_type, &body) {
            panic!("{why}");
        }
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
        self.settle().await;
        self.app
            .store
            .read_all(0, 1_000_000)
            .await
            .expect("read_all")
    }

    /// Raw row count of a table (a check that bypasses the store's API).
    pub async fn count_rows(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self.app.store.pool() {
            yiwang::store::Pool::Postgres(p) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
                    .fetch_one(&p)
                    .await
                    .expect("count")
            }
            yiwang::store::Pool::Sqlite(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
                .fetch_one(&p)
                .await
                .expect("count"),
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

/// The position of the last committed event in the database of `pool` (0 for an
/// empty log).
pub async fn max_position(pool: &yiwang::store::Pool) -> i64 {
    let sql = "SELECT COALESCE(MAX(position), 0) FROM events";
    match pool {
        yiwang::store::Pool::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        yiwang::store::Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await,
    }
    .expect("max position")
}

/// Asserts that the search index's rows carry exactly their view rows' filter
/// columns (migration 0017: written with a new ticket's row, kept by triggers on
/// the view), one search row per ticket.
pub async fn assert_search_filters_follow_view(pool: &yiwang::store::Pool, what: &str) {
    let cols = "id, created_at, state, unit, centre, grid, category, due_at, co_units";
    let sql = format!(
        "SELECT (SELECT COUNT(*) FROM ticket_search), (SELECT COUNT(*) FROM ticket_view), \
         (SELECT COUNT(*) FROM (SELECT {cols} FROM ticket_view EXCEPT SELECT {cols} FROM ticket_search) d1) \
         + (SELECT COUNT(*) FROM (SELECT {cols} FROM ticket_search EXCEPT SELECT {cols} FROM ticket_view) d2)"
    );
    let sql = sqlx::AssertSqlSafe(sql);
    let (search, view, differ): (i64, i64, i64) = match pool {
        yiwang::store::Pool::Postgres(p) => sqlx::query_as(sql).fetch_one(p).await,
        yiwang::store::Pool::Sqlite(p) => sqlx::query_as(sql).fetch_one(p).await,
    }
    .expect("compare the search index with the view");
    assert!(view > 0, "{what}: no tickets");
    assert_eq!(
        (search, differ),
        (view, 0),
        "{what}: ticket_search's filter columns against ticket_view"
    );
}

/// A second service instance on the same database (as several `serve` processes
/// would run on one PostgreSQL); returns its base URL.
pub async fn another_instance(db: &TestDb) -> (String, Arc<App>) {
    serve(db, yiwang::clock::Clock::system()).await
}

/// The service on a loopback port over `db`; returns its base URL and the app.
async fn serve(db: &TestDb, clock: yiwang::clock::Clock) -> (String, Arc<App>) {
    let app = yiwang::app::build_app_with_clock(
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

// ---------------------------------------------------------------------------------
// The OpenAPI document (`yiwang::http::openapi::document`): real answers against it.

/// The path template of the document that a concrete path (query ignored) matches:
/// the one with the most literal segments, as a router would choose.
pub fn openapi_template(path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    let segs: Vec<&str> = path.split('/').collect();
    let doc = yiwang::http::openapi::document();
    let mut best: Option<(usize, String)> = None;
    for template in doc["paths"].as_object()?.keys() {
        let t: Vec<&str> = template.split('/').collect();
        if t.len() != segs.len() {
            continue;
        }
        let mut literal = 0;
        let matches = t.iter().zip(&segs).all(|(a, b)| {
            if a.starts_with('{') && a.ends_with('}') {
                !b.is_empty()
            } else {
                literal += 1;
                a == b
            }
        });
        if matches && best.as_ref().is_none_or(|(n, _)| literal > *n) {
            best = Some((literal, template.clone()));
        }
    }
    best.map(|(_, t)| t)
}

/// Follows a local `$ref` (`#/components/...`) of the document.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> Result<&'a Value, String> {
    match v.get("$ref").and_then(Value::as_str) {
        None => Ok(v),
        Some(r) => {
            let pointer = r
                .strip_prefix('#')
                .ok_or_else(|| format!("non-local $ref {r}"))?;
            doc.pointer(pointer)
                .ok_or_else(|| format!("$ref {r} does not resolve"))
        }
    }
}

/// `additionalProperties: false` on every object schema that lists its properties
/// and says nothing about others: the published document lets fields be added later,
/// but the suite holds the service to what the document says today.
fn strict(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.contains_key("properties") && !m.contains_key("additionalProperties") {
                m.insert("additionalProperties".into(), Value::Bool(false));
            }
            m.values_mut().for_each(strict);
        }
        Value::Array(a) => a.iter_mut().for_each(strict),
        _ => {}
    }
}

/// Validates one answer against the document's response schema for `method`,
/// `path` (concrete or template) and `status` (`default` when the status is not
/// listed), in its media type. Ok for paths outside `/api/v1`, for paths the
/// document does not know (the 404 of an unknown route) and for bodies that are not
/// JSON (the SSE stream, CSV). Err says what does not conform.
pub fn conforms(
    method: &str,
    path: &str,
    status: u16,
    content_type: &str,
    body: &Value,
) -> Result<(), String> {
    static VALIDATORS: std::sync::OnceLock<
        std::sync::Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
    > = std::sync::OnceLock::new();
    if !path.starts_with("/api/v1/") || !content_type.contains("json") {
        return Ok(());
    }
    let Some(template) = openapi_template(path) else {
        return Ok(());
    };
    let doc = yiwang::http::openapi::document();
    let what = format!("{} {template} -> {status}", method.to_uppercase());
    let response = match doc["paths"][&template].get(method) {
        Some(op) => {
            let responses = &op["responses"];
            responses
                .get(status.to_string())
                .or_else(|| responses.get("default"))
                .ok_or_else(|| format!("{what}: status {status} is not documented"))?
        }
        // A method the route does not have: its 405 is the common error answer.
        None if status == 405 => &doc["components"]["responses"]["Error"],
        None => {
            return Err(format!(
                "{what}: the OpenAPI document has no {method} on {template}"
            ));
        }
    };
    let response = resolve(doc, response)?;
    let media = content_type.split(';').next().unwrap_or("").trim();
    let schema = response["content"]
        .get(media)
        .and_then(|c| c.get("schema"))
        .ok_or_else(|| format!("{what}: content type {media} is not documented"))?;
    let key = format!("{what} {media}");
    let validator = {
        let cache = VALIDATORS.get_or_init(Default::default);
        let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
        match cache.get(&key) {
            Some(v) => v.clone(),
            None => {
                let mut root = serde_json::json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "allOf": [schema],
                    "components": doc["components"],
                });
                strict(&mut root);
                let v = Arc::new(
                    jsonschema::draft202012::new(&root)
                        .map_err(|e| format!("{what}: the schema does not compile: {e}"))?,
                );
                cache.insert(key, v.clone());
                v
            }
        }
    };
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("  at {}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what} ({media}) does not conform to the OpenAPI document:\n{}\nbody: {body}",
            errors.join("\n")
        ))
    }
}

/// What one run of the `yiwang` binary did.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ok={}\n--- stdout\n{}--- stderr\n{}",
            self.ok, self.stdout, self.stderr
        )
    }
}

/// Runs the `yiwang` binary with `--database-url url` and `args`. The settings a
/// developer's shell may export (database, calendar, rework days) are removed, so
/// the test sees only what it passes.
pub async fn yiwang(url: &str, args: &[&str]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_yiwang"))
        .arg("--database-url")
        .arg(url)
        .args(["--log-format", "pretty"])
        .args(args)
        .env_remove("YIWANG_DATABASE_URL")
        .env_remove("YIWANG_CALENDAR_DIR")
        .env_remove("YIWANG_REWORK_DAYS")
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run the yiwang binary");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `POST /api/v1/attachments` with one part named `name` holding `bytes`.
pub async fn upload_part(
    app: &TestApp,
    token: &str,
    name: &str,
    filename: &str,
    bytes: &[u8],
) -> (u16, serde_json::Value) {
    let boundary = format!("yiwang-{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::with_capacity(bytes.len() + 256);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
             Content-Type: image/jpeg\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = app
        .client
        .post(format!("{}/api/v1/attachments", app.base))
        .bearer_auth(token)
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}
