//! The binary's logs and metrics listener (issue 23, points 4 and 5): one JSON access
//! line per request at `info` (method, route template, status, latency in ms as a
//! number, request id, bytes as sent), never a query string's `access_token` or
//! `api_key`, no span repeated under `span` and `spans`; and with `--metrics-addr`,
//! `/metrics` on that listener only.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{Engine, TestDb, yiwang};

fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("addr")
}

/// The access lines (target `yiwang::access`) among `lines`.
fn access(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "yiwang::access")
        .collect()
}

#[tokio::test]
async fn each_request_logs_one_json_access_line_without_secrets_and_metrics_has_its_own_port() {
    let db = TestDb::new(Engine::Sqlite).await;
    for args in [&["migrate"][..], &["org", "load", "--demo"]] {
        let run = yiwang(&db.url, args).await;
        assert!(run.ok, "{args:?}: {run:?}");
    }
    let run = yiwang(
        &db.url,
        &["token", "create", "--user", "reader", "--role", "admin"],
    )
    .await;
    let token = run
        .stdout
        .lines()
        .last()
        .expect("a token")
        .trim()
        .to_string();
    assert!(token.len() >= 16, "{run:?}");
    let (addr, metrics_addr) = (free_addr(), free_addr());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_yiwang"))
        .args(["--database-url", &db.url, "--log-format", "json", "serve"])
        .args(["--addr", &addr.to_string()])
        .args(["--metrics-addr", &metrics_addr.to_string()])
        .env("RUST_LOG", "info")
        .env_remove("YIWANG_METRICS_ADDR")
        .env_remove("YIWANG_LOG_FORMAT")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start yiwang serve");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        let stderr = child.stderr.take().expect("stderr");
        tokio::spawn(async move {
            let mut r = BufReader::new(stderr).lines();
            while let Ok(Some(l)) = r.next_line().await {
                lines.lock().expect("lines").push(l);
            }
        })
    };
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let started = Instant::now();
    while !http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "yiwang serve is not up: {:?}",
            lines.lock().expect("lines")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A plain answer: its request id and size.
    let r = http
        .get(format!("{base}/healthz"))
        .header("x-request-id", "obs-healthz-1")
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), 200);
    let healthz_len = r.bytes().await.expect("body").len();
    // A compressed one: the bytes as sent.
    let r = http
        .get(format!("{base}/api/v1/openapi.json"))
        .header("x-request-id", "obs-openapi-gzip")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("openapi");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("content-encoding").map(|v| v.as_bytes()),
        Some(&b"gzip"[..])
    );
    let gzip_len = r.bytes().await.expect("body").len();
    // A route with a parameter, a made-up method, secrets in query strings.
    let r = http
        .get(format!("{base}/api/v1/tickets/{}", uuid::Uuid::nil()))
        .bearer_auth(&token)
        .header("x-request-id", "obs-ticket")
        .send()
        .await
        .expect("ticket");
    assert_eq!(r.status(), 404);
    let r = http
        .request(
            reqwest::Method::from_bytes(b"FOO").expect("method"),
            format!("{base}/healthz"),
        )
        .header("x-request-id", "obs-foo")
        .send()
        .await
        .expect("FOO");
    assert_eq!(r.status(), 405);
    let r = http
        .get(format!(
            "{base}/open311/v2/requests.json?api_key=SECRETKEY42"
        ))
        .header("x-request-id", "obs-open311")
        .send()
        .await
        .expect("open311");
    assert!(r.status().is_client_error(), "{}", r.status());
    let mut stream = http
        .get(format!(
            "{base}/api/v1/events/stream?from=now&access_token={token}"
        ))
        .header("x-request-id", "obs-stream")
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);
    let _ = tokio::time::timeout(Duration::from_millis(300), stream.chunk()).await;
    drop(stream);

    // /metrics: on its own listener only.
    let r = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics on the public port");
    assert_eq!(
        r.status(),
        404,
        "--metrics-addr: no /metrics on the public port"
    );
    let r = http
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .expect("metrics listener");
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("metrics");
    assert!(text.contains("yiwang_build_info{"), "{text}");
    assert!(
        text.contains("method=\"_OTHER\"") && !text.contains("method=\"FOO\""),
        "{text}"
    );
    let r = http
        .get(format!("http://{metrics_addr}/healthz"))
        .send()
        .await
        .expect("metrics listener");
    assert_eq!(r.status(), 404, "the metrics listener serves /metrics only");

    // Every request's line is written once its answer is sent (the stream's once
    // its client has gone).
    let ids = [
        "obs-healthz-1",
        "obs-openapi-gzip",
        "obs-ticket",
        "obs-foo",
        "obs-open311",
        "obs-stream",
    ];
    let started = Instant::now();
    let lines = loop {
        let now = lines.lock().expect("lines").clone();
        let logged = access(&now);
        if ids
            .iter()
            .all(|id| logged.iter().any(|l| l["request_id"] == *id))
        {
            break now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "access lines missing:\n{}",
            now.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    reader.abort();

    let all = lines.join("\n");
    for secret in [token.as_str(), "SECRETKEY42", "access_token", "api_key"] {
        assert!(!all.contains(secret), "{secret:?} is in the log:\n{all}");
    }
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v.get("spans").is_none(), "`spans` repeats `span`: {l}");
        assert!(
            !v.get("latency").is_some_and(Value::is_string),
            "a latency as text: {l}"
        );
    }
    let logged = access(&lines);
    let line = |id: &str| {
        let found: Vec<&Value> = logged.iter().filter(|l| l["request_id"] == id).collect();
        assert_eq!(found.len(), 1, "one access line for {id}: {found:?}");
        found[0].clone()
    };
    let h = line("obs-healthz-1");
    assert_eq!(h["level"], "INFO", "{h}");
    assert_eq!(h["method"], "GET", "{h}");
    assert_eq!(h["route"], "/healthz", "{h}");
    assert_eq!(h["path"], "/healthz", "{h}");
    assert_eq!(h["status"], 200, "{h}");
    assert_eq!(h["bytes"].as_u64(), Some(healthz_len as u64), "{h}");
    for field in ["latency_ms", "duration_ms"] {
        let ms = h[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{field} a number: {h}"));
        assert!((0.0..10_000.0).contains(&ms), "{h}");
    }
    assert!(h["latency_ms"].as_f64() <= h["duration_ms"].as_f64(), "{h}");
    let g = line("obs-openapi-gzip");
    assert_eq!(
        g["bytes"].as_u64(),
        Some(gzip_len as u64),
        "compressed size: {g}"
    );
    let t = line("obs-ticket");
    assert_eq!(t["route"], "/api/v1/tickets/{id}", "the template: {t}");
    assert_eq!(t["status"], 404, "{t}");
    let f = line("obs-foo");
    assert_eq!(
        (f["method"].as_str(), f["status"].as_u64()),
        (Some("FOO"), Some(405)),
        "{f}"
    );
    let o = line("obs-open311");
    assert_eq!(o["path"], "/open311/v2/requests.json", "no query: {o}");
    let s = line("obs-stream");
    assert_eq!(s["route"], "/api/v1/events/stream", "{s}");
    assert_eq!(s["path"], "/api/v1/events/stream", "{s}");
    assert_eq!(s["status"], 200, "{s}");
    // The public port's 404 for /metrics is logged; the metrics listener logs
    // nothing.
    let metrics: Vec<&Value> = logged.iter().filter(|l| l["path"] == "/metrics").collect();
    assert_eq!(metrics.len(), 1, "{metrics:?}");
    assert_eq!(metrics[0]["status"], 404, "{metrics:?}");
}
