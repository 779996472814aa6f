//! Request limits over real HTTP, on SQLite and (when configured) PostgreSQL: rate
//! limits per token and per address, the request timeout, the SSE subscriber caps,
//! and page sizes.

use crate::support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::Connection;
use uuid::Uuid;
use yiwang::app::App;
use yiwang::auth::{self, Role};
use yiwang::http::limits::Settings;
use yiwang::sla::{Calendar, SlaSettings};

use support::{Engine, TestApp, TestDb, conforms, engines, ticket_body};

/// The service as `serve` runs it (with the peer address), with chosen limits.
struct Limited {
    base: String,
    client: reqwest::Client,
    app: Arc<App>,
    db: TestDb,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A 429 problem document with a Retry-After of whole seconds, at least 1.
    fn assert_too_many(&self, what: &str) -> u64 {
        assert_eq!(self.status, 429, "{what}: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{what}"
        );
        assert_eq!(self.body["status"], 429, "{what}: {}", self.body);
        assert_eq!(self.body["title"], "Too many requests", "{what}");
        assert!(
            self.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {}",
            self.body
        );
        let secs: u64 = self
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{what}: Retry-After is whole seconds"));
        assert!(secs >= 1, "{what}: Retry-After {secs}");
        secs
    }
}

impl Limited {
    async fn spawn(engine: Engine, settings: Settings) -> Limited {
        let db = TestDb::new(engine).await;
        let app = yiwang::app::build_app(&db.url, Calendar::embedded(), SlaSettings::default())
            .await
            .expect("build app");
        yiwang::org::save(
            &app.store.pool(),
            include_str!("../../schema/reference/demo-org.json"),
            "demo",
        )
        .await
        .expect("save org")
        .expect("demo org is valid");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let service = yiwang::http::app_with(app.clone(), settings)
            .into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });
        Limited {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            app,
            db,
        }
    }

    async fn token(&self, role: Role, unit: &str) -> String {
        auth::create_token(
            &self.app.store.pool(),
            &format!("{}@{unit}-{}", role.as_str(), Uuid::new_v4().simple()),
            role,
            unit,
        )
        .await
        .expect("create token")
        .1
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Answer {
        let name = method.as_str().to_ascii_lowercase();
        let mut rq = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            rq = rq.bearer_auth(t);
        }
        if let Some(b) = body {
            rq = rq.json(b);
        }
        if let Some(k) = key {
            rq = rq.header("Idempotency-Key", k);
        }
        let r = rq.send().await.expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if let Err(why) = conforms(&name, path, status, content_type, &body) {
            panic!("{why}");
        }
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.send(reqwest::Method::GET, path, token, None, None)
            .await
    }

    async fn create(&self, token: &str, key: &str) -> Answer {
        self.send(
            reqwest::Method::POST,
            "/api/v1/tickets",
            Some(token),
            Some(&ticket_body()),
            Some(key),
        )
        .await
    }

    /// Opens the live stream; the response is returned once its head has arrived.
    async fn stream(&self, token: &str) -> reqwest::Response {
        self.client
            .get(format!("{}/api/v1/events/stream", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("stream request")
    }

    async fn events(&self) -> i64 {
        let sql = "SELECT COUNT(*) FROM events";
        match self.app.store.pool() {
            yiwang::store::Pool::Postgres(p) => {
                sqlx::query_scalar(sql).fetch_one(&p).await.expect("count")
            }
            yiwang::store::Pool::Sqlite(p) => {
                sqlx::query_scalar(sql).fetch_one(&p).await.expect("count")
            }
        }
    }

    /// The value of `yiwang_http_limited_total{limit="<limit>"}` in /metrics.
    async fn limited(&self, limit: &str) -> u64 {
        let r = self.get("/metrics", None).await;
        assert_eq!(r.status, 200);
        let text = r.body.as_str().expect("metrics text").to_string();
        let prefix = format!("yiwang_http_limited_total{{limit=\"{limit}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.trim().parse().expect("counter value"))
            .unwrap_or(0)
    }

    async fn finish(self) {
        self.db.drop_db().await;
    }
}

fn settings() -> Settings {
    Settings::default()
}

async fn problem(resp: reqwest::Response, path: &str) -> Answer {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Err(why) = conforms("get", path, status, content_type, &body) {
        panic!("{why}");
    }
    Answer {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn a_token_over_its_rate_gets_429_and_a_refused_command_appends_nothing() {
    for engine in engines().await {
        let app = Limited::spawn(
            engine,
            Settings {
                per_token: 1,
                per_token_burst: 3,
                ..settings()
            },
        )
        .await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        // Commands until the token's allowance runs out: the first 429.
        let mut accepted = 0;
        let (refused, key, before) = loop {
            let before = app.events().await;
            let key = Uuid::new_v4().to_string();
            let r = app.create(&hot, &key).await;
            if r.status == 429 {
                break (r, key, before);
            }
            assert_eq!(r.status, 201, "{engine:?}: {}", r.body);
            accepted += 1;
            assert!(accepted <= 10, "{engine:?}: the token was never limited");
        };
        assert!(accepted >= 3, "{engine:?}: the burst of 3 was allowed");
        let wait = refused.assert_too_many("per token");
        assert!(
            refused.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("this token")),
            "{}",
            refused.body
        );
        assert_eq!(app.events().await, before, "{engine:?}: a 429 appended");

        // Another token of the same address is not affected.
        let r = app.get("/api/v1/me", Some(&disp)).await;
        assert_eq!(r.status, 200, "{engine:?}: {}", r.body);
        assert_eq!(r.body["role"], "dispatcher");
        // Nor are the probes.
        assert_eq!(app.get("/healthz", None).await.status, 200);

        // After Retry-After the same command is new, not a replay: the refused one
        // left no idempotency record either.
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let r = app.create(&hot, &key).await;
        assert_eq!(r.status, 201, "{engine:?}: {}", r.body);
        assert_eq!(r.header("idempotent-replayed"), None, "{engine:?}");
        assert!(app.limited("per_token").await >= 1, "{engine:?}: counted");
        app.finish().await;
    }
}

#[tokio::test]
async fn an_address_over_its_rate_gets_429_without_a_token_and_with_made_up_tokens() {
    for engine in engines().await {
        let app = Limited::spawn(
            engine,
            Settings {
                per_ip: 1,
                per_ip_burst: 3,
                ..settings()
            },
        )
        .await;
        let admin = app.token(Role::Admin, "etdz").await;
        // Anonymous requests (the public OpenAPI document) until the first 429.
        let mut allowed = 0;
        let refused = loop {
            let r = app.get("/api/v1/openapi.json", None).await;
            if r.status == 429 {
                break r;
            }
            assert_eq!(r.status, 200, "{engine:?}");
            allowed += 1;
            assert!(allowed <= 10, "{engine:?}: the address was never limited");
        };
        refused.assert_too_many("per address");
        assert!(
            refused.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("this address")),
            "{}",
            refused.body
        );
        // Probes and scrapes are exempt; a valid token counts against itself.
        assert_eq!(app.get("/readyz", None).await.status, 200);
        let r = app.get("/api/v1/me", Some(&admin)).await;
        assert_eq!(r.status, 200, "{engine:?}: {}", r.body);

        // Made-up tokens count against the address: once its allowance is gone,
        // they are refused before they are looked up.
        let mut answers = vec![];
        for i in 0..5 {
            let r = app
                .get("/api/v1/me", Some(&format!("yw_made_up_{i}")))
                .await;
            answers.push(r.status);
            if r.status == 429 {
                r.assert_too_many("failed authentications");
                break;
            }
            assert_eq!(r.status, 401, "{engine:?}");
        }
        assert_eq!(answers.last(), Some(&429), "{engine:?}: {answers:?}");
        assert!(app.limited("per_ip").await >= 2, "{engine:?}: counted");
        app.finish().await;
    }
}

/// Holds the database's write lock from outside the service until dropped (rolled
/// back): a command then waits for it.
enum WriteLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WriteLock {
    async fn take(url: &str, engine: Engine) -> WriteLock {
        match engine {
            Engine::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(url).await.expect("connect");
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut c)
                    .await
                    .expect("take the write lock");
                WriteLock::Sqlite(c)
            }
            Engine::Postgres => {
                let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
                sqlx::query("BEGIN").execute(&mut c).await.expect("begin");
                // Blocks appends, not reads.
                sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
                    .execute(&mut c)
                    .await
                    .expect("lock events");
                WriteLock::Postgres(c)
            }
        }
    }

    async fn release(self) {
        match self {
            WriteLock::Sqlite(mut c) => {
                sqlx::query("ROLLBACK")
                    .execute(&mut c)
                    .await
                    .expect("rollback");
            }
            WriteLock::Postgres(mut c) => {
                sqlx::query("ROLLBACK")
                    .execute(&mut c)
                    .await
                    .expect("rollback");
            }
        }
    }
}

#[tokio::test]
async fn a_request_slower_than_the_timeout_gets_503_but_the_live_stream_does_not() {
    for engine in engines().await {
        let app = Limited::spawn(
            engine,
            Settings {
                request_timeout: Duration::from_secs(1),
                ..settings()
            },
        )
        .await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let admin = app.token(Role::Admin, "etdz").await;
        // Warm up (token cache, connections), so only the lock makes the command slow.
        let r = app.create(&hot, &Uuid::new_v4().to_string()).await;
        assert_eq!(r.status, 201, "{engine:?}: {}", r.body);
        let stream = app.stream(&admin).await;
        assert_eq!(stream.status(), 200, "{engine:?}");

        let lock = WriteLock::take(&app.db.url, engine).await;
        let key = Uuid::new_v4().to_string();
        let started = Instant::now();
        let r = app.create(&hot, &key).await;
        let took = started.elapsed();
        lock.release().await;
        assert_eq!(r.status, 503, "{engine:?}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        // Every 503 says when to come back, and names its problem type.
        assert_eq!(r.header("retry-after"), Some("2"), "{engine:?}");
        assert_eq!(r.body["type"], "/problems/unavailable", "{engine:?}");
        let detail = r.body["detail"].as_str().unwrap_or("");
        assert!(
            detail.contains("within 1 s") && detail.contains("same Idempotency-Key"),
            "{engine:?}: {detail}"
        );
        // Not before the timeout; and the timeout (not the lock's release, which
        // comes only after the answer) is what ended it: the 503 above and the
        // counter below say so, with no upper bound on a busy machine's clock.
        assert!(
            took >= Duration::from_millis(900),
            "{engine:?}: answered after {took:?}"
        );
        assert!(app.limited("timeout").await >= 1, "{engine:?}: counted");
        // What the answer advises: the retry with the same key gets the ticket
        // (the first answer if the abandoned command committed after all).
        let r = app.create(&hot, &key).await;
        assert_eq!(r.status, 201, "{engine:?}: {}", r.body);

        // The stream, open for longer than the timeout, still delivers.
        let mut body = stream.bytes_stream();
        let mut seen = String::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !seen.contains("TicketAccepted") {
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, body.next())
                .await
                .unwrap_or_else(|_| panic!("{engine:?}: no event on the stream: {seen}"))
                .expect("stream open")
                .expect("chunk");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        app.finish().await;
    }
}

#[tokio::test]
async fn live_streams_are_capped_per_token_and_per_instance_and_freed_on_disconnect() {
    for engine in engines().await {
        let app = Limited::spawn(
            engine,
            Settings {
                max_sse_subscribers: 3,
                max_sse_per_token: 2,
                ..settings()
            },
        )
        .await;
        let a = app.token(Role::Admin, "etdz").await;
        let b = app.token(Role::Dispatcher, "etdz").await;
        let c = app.token(Role::Analyst, "etdz").await;
        let path = "/api/v1/events/stream";

        let a1 = app.stream(&a).await;
        let a2 = app.stream(&a).await;
        assert_eq!(
            (a1.status().as_u16(), a2.status().as_u16()),
            (200, 200),
            "{engine:?}"
        );
        let a3 = problem(app.stream(&a).await, path).await;
        a3.assert_too_many("per token");
        assert!(
            a3.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("this token")),
            "{}",
            a3.body
        );

        let b1 = app.stream(&b).await;
        assert_eq!(
            b1.status(),
            200,
            "{engine:?}: another token has its own places"
        );
        let c1 = problem(app.stream(&c).await, path).await;
        c1.assert_too_many("per instance");
        assert!(
            c1.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("this instance")),
            "{}",
            c1.body
        );
        assert!(app.limited("sse_token").await >= 1);
        assert!(app.limited("sse_instance").await >= 1);

        // The client of a1 goes away: its place is freed (within the keep-alive
        // interval at worst), for another token and then for its own.
        drop(a1);
        let deadline = Instant::now() + Duration::from_secs(20);
        let c1 = loop {
            let r = app.stream(&c).await;
            if r.status() == 200 {
                break r;
            }
            assert_eq!(r.status(), 429, "{engine:?}");
            assert!(
                Instant::now() < deadline,
                "{engine:?}: the place was not freed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        drop(c1);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = app.stream(&a).await;
            if r.status() == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{engine:?}: the place was not freed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop((a2, b1));
        app.finish().await;
    }
}

#[tokio::test]
async fn out_of_range_page_limits_are_refused_naming_the_field() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let admin = app.token(Role::Admin, "etdz").await;
        app.new_ticket().await;
        for (path, max) in [("/api/v1/tickets", 500), ("/api/v1/events", 1000)] {
            for bad in [json!(0), json!(-1), json!(max + 1), json!(i64::MAX)] {
                let r = app.get(&format!("{path}?limit={bad}"), &admin).await;
                assert_eq!(r.status, 422, "{engine:?} {path}?limit={bad}: {}", r.body);
                assert_eq!(r.body["field"], "limit", "{engine:?} {path}?limit={bad}");
                assert_eq!(r.header("content-type"), Some("application/problem+json"));
            }
            let r = app.get(&format!("{path}?limit=abc"), &admin).await;
            assert_eq!(r.status, 422, "{engine:?} {path}?limit=abc: {}", r.body);
            assert!(
                r.body["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("limit")),
                "{engine:?}: {}",
                r.body
            );
            for good in [1, max] {
                let r = app.get(&format!("{path}?limit={good}"), &admin).await;
                assert_eq!(r.status, 200, "{engine:?} {path}?limit={good}: {}", r.body);
                assert!(r.body["items"].as_array().is_some_and(|i| i.len() <= good));
            }
        }
        app.finish().await;
    }
}
