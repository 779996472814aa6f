//! What the web pages need of the service, over real HTTP without a browser: the pages
//! and assets with their security headers, `GET /api/v1/me`, and the live feed for
//! `EventSource` (`?access_token=` on that route only, `from=now`).

use crate::support;

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use yiwang::auth::Role;

use support::{Engine, TestApp, engines};

#[tokio::test]
async fn pages_and_assets_are_served_with_a_strict_content_security_policy() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    for (path, ctype) in [
        ("/", "text/html"),
        ("/login", "text/html"),
        ("/desk", "text/html"),
        ("/tickets/0195f1d2-0000-7000-8000-000000000000", "text/html"),
        ("/dashboard", "text/html"),
        ("/grid", "text/html"),
        ("/appraisal", "text/html"),
        ("/appraisal/ranking", "text/html"),
        ("/appraisal/bulletins", "text/html"),
        ("/web/js/appraisal.js", "text/javascript"),
        ("/web/app.css", "text/css"),
        ("/web/js/common.js", "text/javascript"),
        ("/web/i18n/en.json", "application/json"),
        ("/web/vendor/uplot/uPlot.esm.js", "text/javascript"),
        ("/favicon.ico", "image/svg+xml"),
    ] {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 200, "{path}");
        let h = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        assert!(
            h("content-type").starts_with(ctype),
            "{path}: {}",
            h("content-type")
        );
        assert!(
            h("content-security-policy").starts_with("default-src 'self';"),
            "{path}: {}",
            h("content-security-policy")
        );
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        // Not framable in browsers that predate `frame-ancestors` either.
        assert_eq!(h("x-frame-options"), "DENY", "{path}");
        // A revalidation with the ETag is a 304.
        let again = app
            .client
            .get(format!("{}{path}", app.base))
            .header("If-None-Match", h("etag"))
            .send()
            .await
            .expect("GET");
        assert_eq!(again.status(), 304, "{path}");
    }
    let r = app
        .client
        .get(format!("{}/web/desk", app.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 404, "pages are only served at their routes");
    app.finish().await;
}

#[tokio::test]
async fn me_names_the_user_role_and_unit_of_the_token() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let t = app.token(Role::Dispatcher, "hg").await;
        let r = app.get("/api/v1/me", &t).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.body,
            json!({"user": "dispatcher@hg", "role": "dispatcher", "unit": "hg",
                   "unit_name": "皇冠街道网格化治理中心", "unit_kind": "township", "centre": true})
        );
        let t = app.token(Role::GridWorker, "hg-01-g01").await;
        let r = app.get("/api/v1/me", &t).await;
        assert_eq!(r.body["unit_kind"], "grid");
        assert_eq!(r.body["centre"], false);
        let r = app
            .send(reqwest::Method::GET, "/api/v1/me", None, None, &[])
            .await;
        assert_eq!(r.status, 401);
        app.finish().await;
    }
}

/// Reads the stream until `want` appears (or 10 s pass); returns what was read.
async fn read_until(resp: reqwest::Response, want: &str) -> String {
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(chunk)) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(want) {
                break;
            }
        }
    })
    .await;
    seen
}

#[tokio::test]
async fn the_live_feed_takes_the_token_in_the_query_for_event_source_and_starts_now() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let before = app.new_ticket().await;
        // On PostgreSQL "now" is the feed's settled horizon, which any open
        // transaction of the cluster holds back: let `before` settle first.
        let _ = app.all_events().await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let url = format!(
            "{}/api/v1/events/stream?from=now&access_token={disp}",
            app.base
        );
        let resp = app.client.get(&url).send().await.expect("stream");
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap_or_default()
                .starts_with("text/event-stream")
        );
        let after = app.new_ticket().await;
        let seen = read_until(resp, after["id"].as_str().expect("id")).await;
        assert!(seen.contains("event: TicketAccepted"), "{seen}");
        assert!(
            !seen.contains(before["id"].as_str().expect("id")),
            "from=now skips what came before: {seen}"
        );

        // A wrong token is refused; the query token works on this route only.
        let bad = format!("{}/api/v1/events/stream?access_token=yw_nope", app.base);
        let r = app.client.get(&bad).send().await.expect("stream");
        assert_eq!(r.status(), 401);
        let other = format!("{}/api/v1/units?access_token={disp}", app.base);
        let r = app.client.get(&other).send().await.expect("units");
        assert_eq!(r.status(), 401, "only the stream reads access_token");
        let r = app
            .client
            .get(format!("{}/api/v1/events/stream?from=later", app.base))
            .bearer_auth(&disp)
            .send()
            .await
            .expect("stream");
        assert_eq!(r.status(), 422);
        app.finish().await;
    }
}
