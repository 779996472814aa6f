//! Connections over real TCP against the server loop `yiwang serve` runs
//! (`yiwang::http::server::serve`), on SQLite and (when configured) PostgreSQL:
//! the header timeout, the idle keep-alive timeout, the cap of connections per
//! address, live SSE streams that end when their token is revoked or expires, and
//! expired tokens refused with a 401.
//!
//! Timeouts are set short here (about a second) and every bound is generous (the
//! timeout plus seconds), so a busy machine does not make them flaky.

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use yiwang::app::App;
use yiwang::auth::{self, Role};
use yiwang::http::server::Settings;
use yiwang::sla::{Calendar, SlaSettings};

use support::{Engine, TestDb, engines, ticket_body};

/// Slack on every "closed within" bound: the watchdog's tick and a busy machine.
const MARGIN: Duration = Duration::from_secs(3);

/// The service as `serve` runs it, with chosen connection settings.
struct Served {
    addr: std::net::SocketAddr,
    base: String,
    client: reqwest::Client,
    app: Arc<App>,
    db: TestDb,
}

impl Served {
    async fn spawn(engine: Engine, settings: Settings) -> Served {
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
        let router = yiwang::http::app(app.clone());
        tokio::spawn(yiwang::http::server::serve(
            listener,
            router,
            settings,
            app.metrics.clone(),
            std::future::pending(),
        ));
        Served {
            addr,
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            app,
            db,
        }
    }

    async fn token(&self, role: Role, unit: &str) -> (String, String) {
        auth::create_token(&self.app.store.pool(), "tester", role, unit)
            .await
            .expect("create token")
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.expect("connect")
    }

    /// `yiwang_http_connections_closed_total{reason}` as /metrics reports it.
    async fn closed(&self, reason: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        let prefix = format!("yiwang_http_connections_closed_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0.0, |v| v.trim().parse().expect("a number"))
    }

    async fn finish(self) {
        self.db.drop_db().await;
    }
}

fn settings(header: Duration, idle: Duration, per_ip: usize) -> Settings {
    Settings {
        header_timeout: header,
        idle_timeout: idle,
        max_connections_per_ip: per_ip,
    }
}

/// Reads until the server closes the connection (end of file or reset), or gives
/// up after `limit`; returns when it was closed, or None. Any bytes read are
/// collected into `got`.
async fn closed_within(s: &mut TcpStream, limit: Duration, got: &mut Vec<u8>) -> Option<Instant> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(Instant::now()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends one GET and reads its whole answer (by Content-Length); the status.
async fn round_trip(s: &mut TcpStream, path: &str) -> u16 {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .expect("write request");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .expect("read");
        assert!(
            n > 0,
            "closed before answering: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let len: usize = text[..end]
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().expect("length"))
            })
            .expect("a Content-Length");
        if got.len() >= end + 4 + len {
            return text[9..12].parse().expect("a status");
        }
    }
}

#[tokio::test]
async fn a_request_head_sent_slowly_is_closed_within_the_header_timeout() {
    for engine in engines().await {
        let header = Duration::from_secs(1);
        let app = Served::spawn(engine, settings(header, Duration::from_secs(60), 0)).await;
        // A slowloris client: the request line, then a header a byte at a time.
        let mut slow = app.connect().await;
        let opened = Instant::now();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
            .await
            .expect("write");
        let (mut rd, mut wr) = slow.into_split();
        let drip = tokio::spawn(async move {
            for b in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                .iter()
                .cycle()
            {
                if wr.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let mut buf = [0u8; 256];
        let closed = tokio::time::timeout(header + MARGIN, rd.read(&mut buf)).await;
        drip.abort();
        let after = opened.elapsed();
        match closed {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => panic!(
                "{engine:?}: answered instead of closed: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(_) => panic!(
                "{engine:?}: still open {after:?} after it opened (header timeout {header:?})"
            ),
        }
        assert!(
            after >= header - Duration::from_millis(100),
            "{engine:?}: closed after {after:?}, before the header timeout"
        );
        // A connection that sends nothing at all is closed as well.
        let mut silent = app.connect().await;
        let mut got = Vec::new();
        assert!(
            closed_within(&mut silent, header + MARGIN, &mut got)
                .await
                .is_some(),
            "{engine:?}: a silent connection stays open"
        );
        assert!(
            got.is_empty(),
            "{engine:?}: {:?}",
            String::from_utf8_lossy(&got)
        );
        // A normal request is answered.
        let mut ok = app.connect().await;
        assert_eq!(round_trip(&mut ok, "/healthz").await, 200, "{engine:?}");
        assert!(
            app.closed("header_timeout").await >= 2.0,
            "{engine:?}: counted"
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    for engine in engines().await {
        let idle = Duration::from_secs(1);
        // A long header timeout: only the idle timeout can close the connection.
        let app = Served::spawn(engine, settings(Duration::from_secs(60), idle, 0)).await;
        let mut conn = app.connect().await;
        // Kept alive: requests closer together than the idle timeout share the
        // connection for longer than it.
        let started = Instant::now();
        for _ in 0..4 {
            assert_eq!(round_trip(&mut conn, "/healthz").await, 200, "{engine:?}");
            tokio::time::sleep(idle / 2).await;
        }
        assert!(started.elapsed() > idle, "{engine:?}");
        assert_eq!(
            round_trip(&mut conn, "/readyz").await,
            200,
            "{engine:?}: still open"
        );
        let answered = Instant::now();
        let mut got = Vec::new();
        let closed = closed_within(&mut conn, idle + MARGIN, &mut got)
            .await
            .unwrap_or_else(|| {
                panic!(
                    "{engine:?}: idle connection still open after {:?}",
                    idle + MARGIN
                )
            });
        let after = closed - answered;
        assert!(
            after >= idle - Duration::from_millis(100),
            "{engine:?}: closed {after:?} after the answer, before the idle timeout"
        );
        assert!(
            got.is_empty(),
            "{engine:?}: {:?}",
            String::from_utf8_lossy(&got)
        );
        assert!(
            app.closed("idle_timeout").await >= 1.0,
            "{engine:?}: counted"
        );
        assert_eq!(app.closed("header_timeout").await, 0.0, "{engine:?}");
        app.finish().await;
    }
}

#[tokio::test]
async fn a_connection_over_the_per_address_cap_is_closed_at_once() {
    for engine in engines().await {
        let long = Duration::from_secs(60);
        let app = Served::spawn(engine, settings(long, long, 3)).await;
        let mut open = Vec::new();
        for _ in 0..3 {
            let mut c = app.connect().await;
            assert_eq!(round_trip(&mut c, "/healthz").await, 200, "{engine:?}");
            open.push(c);
        }
        let mut fourth = app.connect().await;
        // Whatever the server does with it, the request must not be answered.
        let _ = fourth
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            .await;
        let mut got = Vec::new();
        assert!(
            closed_within(&mut fourth, MARGIN, &mut got).await.is_some(),
            "{engine:?}: the fourth connection from one address stays open"
        );
        assert!(
            got.is_empty(),
            "{engine:?}: answered over the cap: {:?}",
            String::from_utf8_lossy(&got)
        );
        // Those under the cap keep working.
        for c in &mut open {
            assert_eq!(round_trip(c, "/healthz").await, 200, "{engine:?}");
        }
        // A closed connection frees its place.
        drop(open.pop());
        let deadline = Instant::now() + MARGIN;
        loop {
            let mut c = app.connect().await;
            let _ = c
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
                .await;
            let mut buf = [0u8; 64];
            match tokio::time::timeout(Duration::from_secs(2), c.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {
                    assert!(buf.starts_with(b"HTTP/1.1 200"), "{engine:?}");
                    break;
                }
                _ => assert!(
                    Instant::now() < deadline,
                    "{engine:?}: the freed place was not given back"
                ),
            }
        }
        // (Every place is given back before /metrics is asked.)
        drop(open);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            app.closed("per_address_cap").await >= 1.0,
            "{engine:?}: counted"
        );
        app.finish().await;
    }
}

/// Opens the live stream with `token`; it is open once its head has arrived.
async fn stream(app: &Served, token: &str) -> reqwest::Response {
    let r = app
        .client
        .get(format!("{}/api/v1/events/stream", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("stream request");
    assert_eq!(r.status(), 200);
    r
}

/// Waits for the stream to deliver the text `want`, then for its end; returns
/// how long the end took after `since`, or panics after `limit`.
async fn ends_within(
    engine: Engine,
    r: reqwest::Response,
    want: &str,
    since: Instant,
    limit: Duration,
) -> Duration {
    let mut body = r.bytes_stream();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, body.next()).await {
            Err(_) => panic!(
                "{engine:?}: the stream is still open {:?} later; it delivered: {seen}",
                since.elapsed()
            ),
            Ok(None) | Ok(Some(Err(_))) => {
                assert!(
                    seen.contains(want),
                    "{engine:?}: never delivered {want}: {seen}"
                );
                return since.elapsed();
            }
            Ok(Some(Ok(b))) => seen.push_str(&String::from_utf8_lossy(&b)),
        }
    }
}

async fn create_ticket(app: &Served, token: &str) -> Value {
    let r = app
        .client
        .post(format!("{}/api/v1/tickets", app.base))
        .bearer_auth(token)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&ticket_body())
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 201);
    r.json().await.expect("ticket")
}

#[tokio::test]
async fn a_live_stream_ends_within_the_cache_ttl_after_its_token_is_revoked() {
    for engine in engines().await {
        let long = Duration::from_secs(60);
        let app = Served::spawn(engine, settings(long, long, 0)).await;
        let ttl = Duration::from_secs(1);
        app.app.tokens.set_ttl(ttl);
        let (id, admin) = app.token(Role::Admin, "etdz").await;
        let (_, agent) = app.token(Role::HotlineAgent, "etdz").await;
        let r = stream(&app, &admin).await;
        let ticket = create_ticket(&app, &agent).await;
        // Open longer than the time to live before the revocation: it is re-checked
        // while the token is valid and stays open.
        tokio::time::sleep(ttl * 2).await;
        assert!(
            auth::revoke_token(&app.app.store.pool(), &id)
                .await
                .expect("revoke"),
            "{engine:?}"
        );
        let revoked = Instant::now();
        let took = ends_within(
            engine,
            r,
            ticket["id"].as_str().expect("an id"),
            revoked,
            ttl + MARGIN,
        )
        .await;
        eprintln!("{engine:?}: the stream ended {took:?} after the revocation");
        // The reconnection is refused.
        let r = app
            .client
            .get(format!("{}/api/v1/events/stream", app.base))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("reconnect");
        assert_eq!(r.status(), 401, "{engine:?}");
        app.finish().await;
    }
}

#[tokio::test]
async fn a_live_stream_ends_when_its_token_expires_and_an_expired_token_gets_401() {
    for engine in engines().await {
        let long = Duration::from_secs(60);
        let app = Served::spawn(engine, settings(long, long, 0)).await;
        let ttl = Duration::from_secs(1);
        app.app.tokens.set_ttl(ttl);
        let pool = app.app.store.pool();
        let life = Duration::from_secs(3);
        let expires_at = chrono::Utc::now() + chrono::Duration::from_std(life).expect("short");
        let (_, admin) =
            auth::create_token_expiring(&pool, "until-soon", Role::Admin, "etdz", Some(expires_at))
                .await
                .expect("create");
        let (_, agent) = app.token(Role::HotlineAgent, "etdz").await;
        let me = |token: String| {
            let client = app.client.clone();
            let url = format!("{}/api/v1/me", app.base);
            async move {
                let r = client.get(url).bearer_auth(token).send().await.expect("me");
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap_or(json!(null)))
            }
        };
        assert_eq!(
            me(admin.clone()).await.0,
            200,
            "{engine:?}: valid until it expires"
        );
        let r = stream(&app, &admin).await;
        let ticket = create_ticket(&app, &agent).await;
        let until = (expires_at - chrono::Utc::now())
            .to_std()
            .unwrap_or_default();
        let took = ends_within(
            engine,
            r,
            ticket["id"].as_str().expect("an id"),
            Instant::now(),
            until + ttl + MARGIN,
        )
        .await;
        assert!(
            took + Duration::from_millis(200) >= until,
            "{engine:?}: ended {took:?} in, before the expiry {until:?} away"
        );
        // Refused at once even though the cache holds it (the default time to live
        // is 10 s; here the entry was made under a second ago).
        app.app.tokens.set_ttl(Duration::from_secs(600));
        let (status, body) = me(admin.clone()).await;
        assert_eq!(status, 401, "{engine:?}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("the token expired at "),
            "{engine:?}: {body}"
        );
        assert!(
            detail.contains(&yiwang::store::hash::rfc3339(expires_at)[..19]),
            "{engine:?}: names when: {body}"
        );
        // A token that expired before it was ever used.
        let (_, old) = auth::create_token_expiring(
            &pool,
            "long-ago",
            Role::Dispatcher,
            "hg",
            Some(chrono::Utc::now() - chrono::Duration::minutes(5)),
        )
        .await
        .expect("create");
        let (status, body) = me(old.clone()).await;
        assert_eq!(status, 401, "{engine:?}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("expired at"),
            "{engine:?}: {body}"
        );
        // Open311 refuses it too (its own error format: 403).
        let r = app
            .client
            .get(format!(
                "{}/open311/v2/requests.json?api_key={old}",
                app.base
            ))
            .send()
            .await
            .expect("open311");
        assert_eq!(r.status(), 403, "{engine:?}");
        app.finish().await;
    }
}

/// The binary: `yiwang serve` takes the connection settings from its flags, and
/// still stops on SIGTERM (the server loop's graceful shutdown).
#[tokio::test]
async fn yiwang_serve_applies_the_connection_flags_and_stops_on_sigterm() {
    let db = TestDb::new(Engine::Sqlite).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("addr")
        .port();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_yiwang"))
        .args(["--database-url", &db.url, "--log-format", "pretty", "serve"])
        .args(["--addr", &addr.to_string()])
        .args([
            "--header-timeout-secs",
            "1",
            "--max-connections-per-ip",
            "2",
        ])
        .env("RUST_LOG", "warn")
        .env_remove("YIWANG_IDLE_TIMEOUT_SECS")
        .env_remove("YIWANG_HEADER_TIMEOUT_SECS")
        .env_remove("YIWANG_MAX_CONNECTIONS_PER_IP")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start yiwang serve");
    // Up: /healthz answers (on a connection closed again at once).
    let started = Instant::now();
    loop {
        if let Ok(mut c) = TcpStream::connect(addr).await
            && round_trip(&mut c, "/healthz").await == 200
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "yiwang serve is not up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // --header-timeout-secs 1: a head that never ends is closed.
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: a")
        .await
        .expect("write");
    let mut got = Vec::new();
    assert!(
        closed_within(&mut slow, Duration::from_secs(1) + MARGIN, &mut got)
            .await
            .is_some(),
        "the header timeout flag is not applied"
    );
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    // --max-connections-per-ip 2: a third connection is closed at once (the slow
    // one's place may take a moment to be given back).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut a = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(round_trip(&mut a, "/healthz").await, 200);
    let mut b = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(round_trip(&mut b, "/healthz").await, 200);
    let mut c = TcpStream::connect(addr).await.expect("connect");
    let _ = c
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await;
    let mut got = Vec::new();
    assert!(
        closed_within(&mut c, MARGIN, &mut got).await.is_some(),
        "the per-address cap flag is not applied"
    );
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    // SIGTERM with two idle kept-alive connections open: it exits, and cleanly.
    let pid = child.id().expect("running").to_string();
    let kill = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("yiwang serve exits within 15 s of SIGTERM")
        .expect("wait");
    assert!(status.success(), "{status}");
    drop((a, b));
}
