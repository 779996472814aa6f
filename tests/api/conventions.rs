//! HTTP conventions (issue 23, point 10), over real HTTP on both engines: problem
//! types the service documents at their `type` URI, `Retry-After` on 429 and 503
//! (the 503 of a timeout: `tests/service/limits.rs`), strong `If-Match`,
//! `ETag`/`If-None-Match` and 304 on a ticket read, the 405's status and `Allow`,
//! and the bearer scheme in any letter case.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;
use yiwang::auth::Role;
use yiwang::clock::Clock;
use yiwang::http::error::TYPES;

use crate::helpers::{act, assert_problem, refusals, unknown_problem_page};
use crate::support::{Resp, TestApp, conforms, engines, ticket_body};

/// A problem (`helpers::assert_problem`) of the type `slug`, with the type's one title.
#[track_caller]
fn assert_type(r: &Resp, status: u16, slug: &str) {
    assert_problem(r, status);
    assert_eq!(r.body["type"], format!("/problems/{slug}"), "{}", r.body);
    let t = yiwang::http::error::problem_type(slug).expect("a known type");
    assert_eq!(r.body["title"], t.title, "the type's fixed title");
}

/// Each refusal names its type and the type's one title; each type URI, resolved
/// against the service, is a page that explains it; the index lists them all, and
/// so does docs/PROBLEMS.md.
#[tokio::test]
async fn problems_have_documented_types_with_fixed_titles() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let id = app.new_ticket().await["id"].as_str().unwrap().to_string();

        let got = refusals(&app, &id).await;
        for (status, slug) in [
            (400, "bad-request"),
            (401, "unauthorized"),
            (403, "forbidden"),
            (404, "not-found"),
            (405, "method-not-allowed"),
            (406, "not-acceptable"),
            (409, "conflict"),
            (412, "precondition-failed"),
            (415, "unsupported-media-type"),
            (422, "validation"),
        ] {
            assert_type(&got[&status], status, slug);
        }
        assert_eq!(got[&422].body["field"], "location.lat");

        // The type URI resolves against the service to a page that explains it.
        let type_uri = "/problems/not-found";
        let page = app
            .client
            .get(format!("{}{type_uri}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert!(
            page.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(page.headers().contains_key("content-security-policy"));
        let html = page.text().await.unwrap();
        assert!(html.contains("<h1>Not found</h1>"), "{html}");
        assert!(html.contains("existence does"), "the page explains: {html}");

        let index = app
            .client
            .get(format!("{}/problems", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let docs =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/PROBLEMS.md"))
                .expect("docs/PROBLEMS.md");
        for t in TYPES {
            assert!(
                index.contains(&format!("/problems/{}\"", t.slug)),
                "index lists {}",
                t.slug
            );
            let r = app
                .client
                .get(format!("{}/problems/{}", app.base, t.slug))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{}", t.slug);
            assert!(
                docs.contains(&format!("`/problems/{}`", t.slug)) && docs.contains(t.title),
                "docs/PROBLEMS.md documents {} ({})",
                t.slug,
                t.title
            );
        }
        let r = unknown_problem_page(&app).await;
        assert_type(&r, 404, "not-found");

        // The document allows only these types: a problem of another is caught.
        let other =
            json!({"type": "about:blank", "title": "Not found", "status": 404, "detail": "x"});
        assert!(
            conforms(
                "get",
                &format!("/api/v1/tickets/{id}"),
                404,
                "application/problem+json",
                &other
            )
            .is_err()
        );
        app.finish().await;
    }
}

/// A method the route does not have: 405 in the status line and in the document,
/// with `Allow` naming the methods it has.
#[tokio::test]
async fn a_405_says_405_and_names_the_allowed_methods() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let admin = app.token(Role::Admin, "etdz").await;
        let r = app
            .send(
                reqwest::Method::DELETE,
                "/api/v1/tickets",
                Some(&admin),
                None,
                &[],
            )
            .await;
        assert_type(&r, 405, "method-not-allowed");
        let allow = r.header("allow").unwrap_or_default().to_ascii_uppercase();
        assert!(
            allow.contains("GET") && allow.contains("POST") && !allow.contains("DELETE"),
            "Allow: {allow:?}"
        );
        let r = app
            .send(reqwest::Method::PUT, "/healthz", None, None, &[])
            .await;
        assert_type(&r, 405, "method-not-allowed");
        app.finish().await;
    }
}

/// `bearer`, `BEARER`: the scheme's name is case-insensitive, on a read, a command
/// and the live stream; another scheme is still a 401.
#[tokio::test]
async fn the_bearer_scheme_is_accepted_in_any_letter_case() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        for scheme in ["bearer", "BEARER", "bEaReR"] {
            let r = app
                .client
                .get(format!("{}/api/v1/me", app.base))
                .header("Authorization", format!("{scheme} {hot}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{scheme}");
        }
        let r = app
            .client
            .post(format!("{}/api/v1/tickets", app.base))
            .header("Authorization", format!("bearer {hot}"))
            .header("Idempotency-Key", Uuid::new_v4().to_string())
            .json(&ticket_body())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let r = app
            .client
            .get(format!("{}/api/v1/events/stream", app.base))
            .header("Authorization", format!("bearer {hot}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        drop(r);
        // The stream's query token still works without the header.
        let r = app
            .client
            .get(format!(
                "{}/api/v1/events/stream?access_token={hot}",
                app.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        drop(r);
        let r = app
            .client
            .get(format!("{}/api/v1/me", app.base))
            .header("Authorization", format!("Basic {hot}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        app.finish().await;
    }
}

/// `If-Match` compares strongly: the ETag as given matches; the same version as a
/// weak tag never does (412); `*` holds for any ticket; a list matches any of its
/// tags; what is no entity tag is a 422. Refusals append nothing.
#[tokio::test]
async fn if_match_compares_strongly() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let id = app.new_ticket().await["id"].as_str().unwrap().to_string();
        let path = format!("/api/v1/tickets/{id}/comment");
        let comment = |if_match: &'static str| {
            let (path, disp) = (path.clone(), disp.clone());
            let app = &app;
            async move {
                app.send(
                    reqwest::Method::POST,
                    &path,
                    Some(&disp),
                    Some(&json!({"text": "x"})),
                    &[
                        ("Idempotency-Key", Uuid::new_v4().to_string()),
                        ("If-Match", if_match.to_string()),
                    ],
                )
                .await
            }
        };
        let before = app.all_events().await.len();
        let r = comment("W/\"1\"").await;
        assert_type(&r, 412, "precondition-failed");
        assert!(
            r.body["detail"].as_str().unwrap().contains("weak"),
            "{}",
            r.body
        );
        let r = comment("1").await;
        assert_type(&r, 422, "validation");
        assert_eq!(r.body["field"], "If-Match");
        assert_eq!(app.all_events().await.len(), before, "nothing appended");

        let r = comment("\"1\"").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("etag"), Some("\"2\""));
        let r = comment("*").await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = comment("W/\"3\", \"9\", \"3\"").await;
        assert_eq!(
            r.status, 200,
            "a list matches by its strong tag: {}",
            r.body
        );
        assert_eq!(r.header("etag"), Some("\"4\""));
        let r = comment("\"3\", W/\"4\"").await;
        assert_type(&r, 412, "precondition-failed");
        app.finish().await;
    }
}

/// A ticket read carries its ETag; `If-None-Match` naming it (weak comparison: `W/`
/// or not, in a list, or `*`) is a 304 without a body, with the ETag; after a
/// command, or once a deadline has passed (the answer says `missed` now), the full
/// answer comes back.
#[tokio::test]
async fn ticket_reads_answer_304_while_unchanged() {
    for engine in engines().await {
        // A working Monday morning in Shanghai.
        let t0: DateTime<Utc> = "2026-10-12T02:00:00Z".parse().unwrap();
        let clock = Clock::manual(t0);
        let app = TestApp::spawn_with_clock(engine, clock.clone()).await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let id = app.new_ticket().await["id"].as_str().unwrap().to_string();
        act(&app, &disp, &id, "assign", json!({"unit": "zhzf"})).await;
        let path = format!("/api/v1/tickets/{id}");
        let read = |inm: Option<&'static str>| {
            let (path, disp) = (path.clone(), disp.clone());
            let app = &app;
            async move {
                let headers: Vec<(&str, String)> = inm
                    .map(|v| vec![("If-None-Match", v.to_string())])
                    .unwrap_or_default();
                app.send(reqwest::Method::GET, &path, Some(&disp), None, &headers)
                    .await
            }
        };
        let r = read(None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("etag"), Some("\"2\""));
        assert_eq!(r.body["deadlines"]["sign"], "running", "{}", r.body);
        assert!(
            r.header("vary")
                .is_some_and(|v| v.contains("Authorization"))
        );

        for inm in ["\"2\"", "W/\"2\"", "\"1\", \"2\"", "*"] {
            clock.set(t0 + Duration::minutes(5));
            let r = read(Some(inm)).await;
            assert_eq!(r.status, 304, "If-None-Match: {inm}: {}", r.body);
            assert_eq!(r.body, Value::String(String::new()), "no body");
            assert_eq!(r.header("etag"), Some("\"2\""));
        }
        // Another version, or a tag that is no entity tag: the full answer.
        for inm in ["\"1\"", "2"] {
            let r = read(Some(inm)).await;
            assert_eq!(r.status, 200, "If-None-Match: {inm}");
        }
        // Same version, but the sign deadline has passed since: the answer changed.
        clock.set(t0 + Duration::days(30));
        let r = read(Some("\"2\"")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("etag"), Some("\"2\""));
        assert_eq!(r.body["deadlines"]["sign"], "missed", "{}", r.body);
        // A command moves the version on: the old tag no longer matches.
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/comment"),
                &disp,
                json!({"text": "x"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = read(Some("\"2\"")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("etag"), Some("\"3\""));
        // The comment was written after the deadline: the new version reads the same
        // from then on.
        let r = read(Some("\"3\"")).await;
        assert_eq!(r.status, 304, "{}", r.body);
        app.finish().await;
    }
}

/// A 429 carries Retry-After, and its type.
#[tokio::test]
async fn a_429_carries_retry_after() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let admin = app.token(Role::Admin, "etdz").await;
        // The per-token cap of live streams (10 by default).
        let mut open = Vec::new();
        let mut refused = None;
        for _ in 0..11 {
            let r = app
                .client
                .get(format!("{}/api/v1/events/stream", app.base))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            if r.status() == 429 {
                refused = Some(r);
                break;
            }
            open.push(r);
        }
        let r = refused.expect("the 11th stream is refused");
        assert!(
            r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .is_ok_and(|s| s >= 1)
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["type"], "/problems/rate-limited");
        assert_eq!(body["title"], "Too many requests");
        drop(open);
        app.finish().await;
    }
}
