//! `yiwang serve` stopped as an orchestrator stops it (SIGTERM, with `kill`), and
//! `yiwang healthcheck`, the real binary on each engine: `/readyz` answers 503 at
//! once while requests are still served for the drain, then the listener closes,
//! a live SSE stream gets its `close` event and ends, a request in flight across
//! all of it is answered, and the process exits 0.

use crate::support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;
use tokio::process::{Child, Command};

use support::{TestDb, engines, ticket_body, yiwang};

/// A `yiwang serve` on a free loopback port.
struct Serving {
    child: Child,
    port: u16,
    base: String,
    log: std::path::PathBuf,
}

impl Serving {
    async fn start(db: &TestDb, args: &[&str]) -> Serving {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log =
            std::env::temp_dir().join(format!("yiwang-shutdown-{}.log", uuid::Uuid::new_v4()));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_yiwang"))
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .args(["--database-url", &db.url, "--log-format", "pretty"])
            .args(["--verify-interval-secs", "0"])
            .args(args)
            .env_remove("YIWANG_ADDR")
            .env("RUST_LOG", "info")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .expect("start yiwang serve");
        let s = Serving {
            child,
            port,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = reqwest::get(format!("{}/readyz", s.base))
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return s;
            }
            assert!(Instant::now() < deadline, "not ready in 60 s:\n{}", s.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, as `docker stop`, systemd and Kubernetes send it.
    fn terminate(&self) {
        let pid = self.child.id().expect("running").to_string();
        let st = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -TERM {pid}");
    }
}

/// `yiwang healthcheck ARGS`: (exit code, stdout, stderr).
async fn healthcheck(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_yiwang"))
        .arg("healthcheck")
        .args(args)
        .env_remove("YIWANG_ADDR")
        .output()
        .await
        .expect("run yiwang healthcheck");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn token(db: &TestDb, role: &str, unit: &str) -> String {
    let r = yiwang(
        &db.url,
        &[
            "token", "create", "--user", "测试", "--role", role, "--unit", unit,
        ],
    )
    .await;
    assert!(r.ok, "{r:?}");
    r.stdout.trim().lines().last().unwrap().trim().to_string()
}

#[tokio::test]
async fn sigterm_drains_then_closes_streams_finishes_requests_and_exits_0() {
    for engine in engines().await {
        let db = TestDb::new(engine).await;
        assert!(yiwang(&db.url, &["migrate"]).await.ok);
        assert!(yiwang(&db.url, &["org", "load", "--demo"]).await.ok);
        let admin = token(&db, "admin", "etdz").await;
        let hotline = token(&db, "hotline_agent", "etdz").await;
        let drain = Duration::from_secs(2);
        let s = Serving::start(
            &db,
            &["--shutdown-drain-secs", "2", "--shutdown-grace-secs", "20"],
        )
        .await;
        let http = reqwest::Client::new();

        let (code, out, _) = healthcheck(&["--addr", &format!("0.0.0.0:{}", s.port)]).await;
        assert_eq!(
            code, 0,
            "{engine:?}: healthcheck of a ready instance: {out}"
        );
        assert!(out.contains("answered 200"), "{out}");

        // A live stream from the start of the feed, and a command whose body is
        // still coming in when the instance is told to stop.
        let stream = http
            .get(format!("{}/api/v1/events/stream?after=0", s.base))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200);
        let mut stream = stream.bytes_stream();
        let body = serde_json::to_vec(&ticket_body()).unwrap();
        let (first, rest) = body.split_at(body.len() / 2);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
        tx.send(Ok(first.to_vec())).await.unwrap();
        let slow = tokio::spawn(
            http.post(format!("{}/api/v1/tickets", s.base))
                .bearer_auth(&hotline)
                .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
                .header("Content-Type", "application/json")
                .body(reqwest::Body::wrap_stream(
                    tokio_stream::wrappers::ReceiverStream::new(rx),
                ))
                .send(),
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let metrics = http
            .get(format!("{}/metrics", s.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.lines().any(|l| l == "yiwang_sse_subscribers 1"),
            "{engine:?}: the open stream is counted:\n{metrics}"
        );

        // Taken before the signal, so that the server's drain cannot start before it.
        let stopped_at = Instant::now();
        s.terminate();
        // Not ready at once, with when to ask again; everything else still served.
        let mut ready = None;
        while stopped_at.elapsed() < drain / 2 {
            let r = http.get(format!("{}/readyz", s.base)).send().await.unwrap();
            if r.status() == 503 {
                ready = Some(r);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let r = ready.unwrap_or_else(|| panic!("{engine:?}: /readyz still 200 after SIGTERM"));
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{engine:?}"
        );
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(retry, 22, "{engine:?}: drain + grace");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["status"], 503);
        assert_eq!(problem["shutting_down"], true);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("shutting down"),
            "{problem}"
        );
        let (code, _, err) = healthcheck(&["--url", &format!("{}/readyz", s.base)]).await;
        assert_eq!(code, 1, "{engine:?}: healthcheck while draining");
        assert!(
            err.contains("503") && err.contains("shutting down"),
            "{err}"
        );
        // A new connection during the drain is still served.
        let fresh = reqwest::Client::new()
            .get(format!("{}/healthz", s.base))
            .send()
            .await
            .expect("accepted while draining");
        assert_eq!(fresh.status(), 200);

        // After the drain: the stream's last event is `close`, then it ends.
        let mut text = String::new();
        let ended = tokio::time::timeout(drain + Duration::from_secs(10), async {
            while let Some(chunk) = stream.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk.expect("stream chunk")));
            }
        })
        .await;
        assert!(ended.is_ok(), "{engine:?}: the stream did not end:\n{text}");
        assert!(
            stopped_at.elapsed() >= drain,
            "{engine:?}: the stream ended before the drain was over"
        );
        let last = text.trim_end().rsplit("\n\n").next().unwrap_or_default();
        assert!(
            last.contains("event: close") && last.contains("retry: 1000"),
            "{engine:?}: last event {last:?} of:\n{text}"
        );
        assert!(!last.contains("id:"), "the close event keeps Last-Event-ID");
        let data: Value = serde_json::from_str(
            last.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .expect("close data"),
        )
        .unwrap();
        assert_eq!(data["reason"], "shutdown");

        // The listener is closed: a new connection is refused ... (the accept loop and
        // the streams see the end of the drain at the same moment, so the loop may
        // still be dropping the listener when the stream's close event arrives: a
        // connection accepted within half a second of it is not a failure).
        let mut refused = false;
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            if tokio::net::TcpStream::connect(("127.0.0.1", s.port))
                .await
                .is_err()
            {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            refused,
            "{engine:?}: connections still accepted 500 ms after the drain"
        );
        // ... while the command in flight is still answered.
        tx.send(Ok(rest.to_vec())).await.unwrap();
        drop(tx);
        let answer = slow
            .await
            .unwrap()
            .expect("the command in flight is answered");
        assert_eq!(answer.status(), 201, "{engine:?}");
        let ticket: Value = answer.json().await.unwrap();
        assert_eq!(ticket["state"], "accepted");

        let mut s = s;
        let status = tokio::time::timeout(Duration::from_secs(15), s.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{engine:?}: no exit:\n{}", s.log()))
            .unwrap();
        assert!(status.success(), "{engine:?}: {status}:\n{}", s.log());
        let log = s.log();
        assert!(
            log.contains("shutting down") && log.contains("stopped"),
            "{log}"
        );
        let (code, _, err) = healthcheck(&["--addr", &format!("127.0.0.1:{}", s.port)]).await;
        assert_eq!(code, 1, "{engine:?}: healthcheck with nothing listening");
        assert!(
            err.contains("not ready") && err.contains("connect"),
            "{err}"
        );
        let _ = std::fs::remove_file(&s.log);
        db.drop_db().await;
    }
}

#[tokio::test]
async fn healthcheck_refuses_what_it_cannot_ask() {
    let (code, _, err) = healthcheck(&["--url", "https://example.org/readyz"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("only http://"), "{err}");
    let (code, _, err) = healthcheck(&["--timeout-secs", "0"]).await;
    assert_eq!(code, 2, "clap refuses a zero timeout: {err}");
}
