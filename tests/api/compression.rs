//! Compressed answers (issue 23, point 3): JSON, CSV and pages in gzip, br or zstd
//! when the client accepts one, the same bytes once decompressed; never the live
//! stream, whose events must reach the client as they happen.

use std::io::Read;

use yiwang::auth::Role;

use crate::support::{TestApp, engines};

/// GET `path` with `Accept-Encoding: encoding` (and `accept`, if any): the status,
/// the `Content-Encoding`, the `Vary` and the body as sent.
async fn get(
    app: &TestApp,
    token: &str,
    path: &str,
    encoding: &str,
    accept: Option<&str>,
) -> (u16, Option<String>, String, Vec<u8>) {
    let mut rq = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("accept-encoding", encoding);
    if let Some(a) = accept {
        rq = rq.header("accept", a);
    }
    let r = rq.send().await.expect("request");
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().expect("header text").to_string())
    };
    let (status, ce, vary) = (
        r.status().as_u16(),
        header("content-encoding"),
        header("vary").unwrap_or_default(),
    );
    let body = r.bytes().await.expect("body").to_vec();
    (status, ce, vary, body)
}

/// `b` decompressed from `encoding` (gzip, br or zstd).
fn decompress(encoding: &str, b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .expect("a gzip body"),
        "br" => brotli_decompressor::Decompressor::new(b, 4096)
            .read_to_end(&mut out)
            .expect("a brotli body"),
        "zstd" => zstd::stream::read::Decoder::new(b)
            .expect("a zstd decoder")
            .read_to_end(&mut out)
            .expect("a zstd body"),
        other => panic!("no decoder for {other}"),
    };
    out
}

#[tokio::test]
async fn answers_are_compressed_for_clients_that_accept_it_and_decompress_to_the_same_bytes() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let admin = app.token(Role::Admin, "etdz").await;
        for _ in 0..3 {
            app.new_ticket().await;
        }
        app.catch_up().await;
        // `exact`: the same request gives the same bytes (the appraisal names the
        // moment it was made: compared without it; its CSV by its header line).
        for (path, accept, exact) in [
            ("/api/v1/tickets", None, true),
            ("/api/v1/units", None, true),
            ("/api/v1/appraisal?period=2026-Q3", None, false),
            ("/api/v1/appraisal?period=2026-Q3", Some("text/csv"), false),
            ("/desk", None, true),
            ("/api/v1/openapi.json", None, true),
        ] {
            let what = format!("{engine:?} {path} {accept:?}");
            let (status, ce, _, plain) = get(&app, &admin, path, "identity", accept).await;
            assert_eq!(status, 200, "{what}");
            assert_eq!(ce, None, "{what}: identity asked, identity sent");
            // The same answer but for the time it was made (the appraisal's
            // `as_of`; its CSV compared by its header line).
            let made = |b: &[u8]| match serde_json::from_slice::<serde_json::Value>(b) {
                Ok(mut v) => {
                    v["as_of"] = serde_json::Value::Null;
                    v.to_string()
                }
                Err(_) => String::from_utf8_lossy(b)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            };
            for enc in ["gzip", "br", "zstd"] {
                let (status, ce, vary, body) = get(&app, &admin, path, enc, accept).await;
                assert_eq!(status, 200, "{what} {enc}");
                assert_eq!(ce.as_deref(), Some(enc), "{what}");
                assert!(
                    vary.to_ascii_lowercase().contains("accept-encoding"),
                    "{what} {enc}: Vary names Accept-Encoding for caches: {vary:?}"
                );
                assert!(
                    body.len() < plain.len(),
                    "{what} {enc}: {} >= {}",
                    body.len(),
                    plain.len()
                );
                let unpacked = decompress(enc, &body);
                if exact {
                    assert_eq!(unpacked, plain, "{what}: {enc} decompresses to the answer");
                } else {
                    assert_eq!(
                        made(&unpacked),
                        made(&plain),
                        "{what} {enc}: the same answer"
                    );
                }
            }
            // A client that prefers one by quality gets that one.
            let (_, ce, _, _) = get(
                &app,
                &admin,
                path,
                "gzip;q=0.5, zstd;q=1.0, br;q=0.1",
                accept,
            )
            .await;
            assert_eq!(
                ce.as_deref(),
                Some("zstd"),
                "{what}: the preferred encoding"
            );
        }
        app.finish().await;
    }
}

#[tokio::test]
async fn the_live_stream_is_never_compressed() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let admin = app.token(Role::Admin, "etdz").await;
        let r = app
            .client
            .get(format!("{}/api/v1/events/stream", app.base))
            .bearer_auth(&admin)
            .header("accept-encoding", "gzip, br, zstd")
            .send()
            .await
            .expect("stream");
        assert_eq!(r.status().as_u16(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .expect("type")
                .starts_with("text/event-stream")
        );
        assert!(
            r.headers().get("content-encoding").is_none(),
            "{engine:?}: an SSE stream must reach the client event by event"
        );
        drop(r);
        app.finish().await;
    }
}

/// tower-http answers a request that accepts no coding it can send with a 406, but
/// only after the handler has run: a command would be recorded and its client told
/// it was not. The service refuses such a request before anything runs.
#[tokio::test]
async fn a_request_accepting_no_coding_is_refused_before_it_runs() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let before = app.max_position().await;
        let post = |encoding: &'static str| {
            app.client
                .post(format!("{}/api/v1/tickets", app.base))
                .bearer_auth(&hot)
                .header("idempotency-key", uuid::Uuid::new_v4().to_string())
                .header("accept-encoding", encoding)
                .json(&crate::support::ticket_body())
                .send()
        };
        for refused in ["identity;q=0", "*;q=0", "identity;q=0, deflate"] {
            let r = post(refused).await.expect("post");
            assert_eq!(r.status().as_u16(), 406, "{engine:?} {refused}");
            assert_eq!(
                r.headers()["content-type"].to_str().expect("type"),
                "application/problem+json"
            );
            let body: serde_json::Value = r.json().await.expect("problem");
            assert_eq!(body["status"], 406);
            assert_eq!(body["type"], "/problems/not-acceptable", "{body}");
            assert!(
                body["detail"].as_str().is_some_and(|d| d.contains("gzip")),
                "{body}"
            );
        }
        assert_eq!(
            app.max_position().await,
            before,
            "{engine:?}: nothing recorded"
        );
        let r = post("identity;q=0, gzip").await.expect("post");
        assert_eq!(r.status().as_u16(), 201, "{engine:?}");
        assert_eq!(
            r.headers()
                .get("content-encoding")
                .map(|v| v.to_str().expect("text")),
            Some("gzip")
        );
        assert!(app.max_position().await > before);
        app.finish().await;
    }
}
