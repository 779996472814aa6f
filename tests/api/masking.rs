//! The reporter's contact on every route and for every reader: in full only for the
//! hotline, admins and the lead unit's handlers; masked, or absent, everywhere else.
//! Not one route's answer to a masked reader holds the full name or phone: the ticket,
//! the list, its events, the feed, the live stream, Open311's list and read, the
//! statistics' CSV, the answer to a create and its idempotent replay, and a former
//! lead unit after the ticket moved on.

use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;
use yiwang::auth::Role;

use crate::support::{TestApp, engines, ticket_body};

const NAME: &str = "赵先生";
const PHONE: &str = "13800000000";

fn leaks(text: &str) -> bool {
    text.contains(NAME) || text.contains(PHONE)
}

async fn text_of(app: &TestApp, path: &str, token: &str, accept: &str) -> (u16, String) {
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("accept", accept)
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.text().await.expect("body"))
}

/// The live stream from the start of the log (`Last-Event-ID: 0`), read until it
/// has delivered `n` events: their frames as text.
async fn stream_text(app: &TestApp, token: &str, n: usize) -> (u16, String) {
    let r = app
        .client
        .get(format!("{}/api/v1/events/stream", app.base))
        .bearer_auth(token)
        .header("Last-Event-ID", "0")
        .send()
        .await
        .expect("stream");
    let status = r.status().as_u16();
    if status != 200 {
        return (status, r.text().await.unwrap_or_default());
    }
    let mut text = String::new();
    let mut body = r.bytes_stream();
    while frames(&text) < n {
        let Ok(chunk) = tokio::time::timeout(std::time::Duration::from_secs(5), body.next()).await
        else {
            panic!(
                "the stream delivered {} of {n} events: {text}",
                frames(&text)
            );
        };
        text.push_str(&String::from_utf8_lossy(
            &chunk.expect("open").expect("a chunk"),
        ));
    }
    (status, text)
}

/// How many events the stream's text holds.
fn frames(text: &str) -> usize {
    text.lines().filter(|l| l.starts_with("event:")).count()
}

async fn act(app: &TestApp, token: &str, id: &str, action: &str, body: Value) {
    let r = app
        .post(&format!("/api/v1/tickets/{id}/{action}"), token, body)
        .await;
    assert_eq!(r.status, 200, "{action}: {}", r.body);
}

#[tokio::test]
async fn no_route_shows_a_masked_reader_the_reporters_full_contact() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let district = app.token(Role::Dispatcher, "etdz").await;
        let hg = app.token(Role::Dispatcher, "hg").await;
        let lead = app.token(Role::Handler, "hg-zfzd").await;

        // A grid worker's report with the resident's contact: the worker gets the
        // masked view, in the first answer and in its replay.
        let grid = app.token(Role::GridWorker, "hg-01-g01").await;
        let mut report = ticket_body();
        report["source"] = json!("grid");
        let key = [("Idempotency-Key", Uuid::new_v4().to_string())];
        let mut answers = Vec::new();
        for _ in 0..2 {
            let r = app
                .send(
                    reqwest::Method::POST,
                    "/api/v1/tickets",
                    Some(&grid),
                    Some(&report),
                    &key,
                )
                .await;
            assert_eq!(r.status, 201, "{engine:?}: {}", r.body);
            assert_eq!(r.body["reporter"]["masked"], true, "{engine:?}: {}", r.body);
            assert!(!leaks(&r.body.to_string()), "{engine:?}: {}", r.body);
            answers.push(r);
        }
        assert_eq!(answers[1].header("idempotent-replayed"), Some("true"));

        // A hotline ticket, dispatched to 综合执法中队 with 派出所 as co-unit, then
        // returned by the lead and sent to 派出所 with 综合执法中队 helping: the former
        // lead still reads the ticket, now masked.
        let t = app.new_ticket().await;
        let id = t["id"].as_str().expect("id").to_string();
        act(&app, &district, &id, "assign", json!({"unit": "hg"})).await;
        let body = json!({"unit": "hg-zfzd", "co_units": ["hg-pcs"]});
        act(&app, &hg, &id, "assign", body).await;
        let r = app.get(&format!("/api/v1/tickets/{id}"), &lead).await;
        assert_eq!(
            r.body["reporter"]["masked"], false,
            "the lead sees it in full"
        );
        act(
            &app,
            &lead,
            &id,
            "return",
            json!({"reason": "属派出所职责"}),
        )
        .await;
        let body = json!({"unit": "hg-pcs", "co_units": ["hg-zfzd"]});
        act(&app, &hg, &id, "assign", body).await;
        let events = app.all_events().await.len();

        let masked = [
            (Role::Handler, "hg-zfzd", "the former lead unit"),
            (Role::Dispatcher, "etdz", "the district dispatcher"),
            (Role::Dispatcher, "hg", "the township dispatcher"),
            (Role::Analyst, "etdz", "an analyst"),
            (Role::GridWorker, "hg-01-g01", "the grid's worker"),
        ];
        let (mut feeds, mut streams, mut open311) = (0, 0, 0);
        for (role, unit, who) in masked {
            let token = app.token(role, unit).await;
            let what = |route: &str| format!("{engine:?}: {who} on {route}");
            let (s, text) = text_of(&app, &format!("/api/v1/tickets/{id}"), &token, "*/*").await;
            assert_eq!(s, 200, "{}: {text}", what("the ticket"));
            assert!(
                text.contains("\"masked\":true"),
                "{}: {text}",
                what("the ticket")
            );
            assert!(!leaks(&text), "{}: {text}", what("the ticket"));
            let routes = [
                "/api/v1/tickets?limit=500".to_string(),
                format!("/api/v1/tickets/{id}/events"),
                "/api/v1/events?after=0&limit=1000".to_string(),
                format!("/open311/v2/requests.json?api_key={token}"),
                format!("/open311/v2/requests.xml?api_key={token}"),
                format!("/open311/v2/requests/{id}.json?api_key={token}"),
                format!("/open311/v2/requests/{id}.xml?api_key={token}"),
            ];
            for route in &routes {
                let (s, text) = text_of(&app, route, &token, "*/*").await;
                assert!(s < 500, "{}: {s}", what(route));
                assert!(!leaks(&text), "{}: {text}", what(route));
                if s == 200 && route.starts_with("/api/v1/events") {
                    feeds += 1;
                }
                if s == 200 && route.starts_with("/open311/") {
                    open311 += 1;
                }
            }
            for route in [
                "/api/v1/stats/units?unit=hg&granularity=month",
                "/api/v1/appraisal?period=2026",
            ] {
                let (s, text) = text_of(&app, route, &token, "text/csv").await;
                assert!(s < 500 && !leaks(&text), "{}: {text}", what(route));
            }
            // The live stream, from the first event on: everything the feed shows
            // this reader.
            let n = seen_in_feed(&app, &token).await;
            if n > 0 {
                let (s, text) = stream_text(&app, &token, n).await;
                assert_eq!(s, 200, "{}: {text}", what("the live stream"));
                assert!(!leaks(&text), "{}: {text}", what("the live stream"));
                streams += 1;
            }
        }
        // Not vacuous: the feed, the stream and Open311 were read by masked readers.
        assert!(
            feeds > 0 && streams > 0 && open311 > 0,
            "{feeds} {streams} {open311}"
        );
        // The log holds no contact at all (it lives outside, erasable).
        assert_eq!(app.all_events().await.len(), events);
        for e in app.all_events().await {
            assert!(!leaks(&format!("{} {}", e.data, e.metadata)), "{e:?}");
        }
        app.finish().await;
    }
}

/// How many events the feed shows this reader (the live stream shows the same).
async fn seen_in_feed(app: &TestApp, token: &str) -> usize {
    let r = app.get("/api/v1/events?after=0&limit=1000", token).await;
    if r.status != 200 {
        return 0;
    }
    r.body["items"].as_array().map_or(0, Vec::len)
}
