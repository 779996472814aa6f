//! What several API test files share: reading a raw answer, the shape every problem
//! has, one refusal of each kind, and the live stream's events.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;
use yiwang::auth::Role;

use crate::support::{Resp, TestApp, ticket_body};

/// A command on a ticket (`POST /api/v1/tickets/{id}/{action}`), which must
/// succeed; returns the ticket.
pub(crate) async fn act(app: &TestApp, token: &str, id: &str, action: &str, body: Value) -> Value {
    let r = app
        .post(&format!("/api/v1/tickets/{id}/{action}"), token, body)
        .await;
    assert_eq!(r.status, 200, "{action}: {}", r.body);
    r.body
}

/// A raw answer (a request `TestApp::send` cannot make: a body that is no JSON, an
/// Accept-Encoding it refuses) as a `Resp`, its body JSON.
pub(crate) async fn resp(r: reqwest::Response) -> Resp {
    Resp {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.json::<Value>().await.expect("a JSON body"),
    }
}

/// A problem+json answer with `status`: its status, a title, a documented type and
/// a detail a person can act on.
#[track_caller]
pub(crate) fn assert_problem(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/problem+json")),
        "content type {:?}",
        r.header("content-type")
    );
    assert_eq!(r.body["status"], status);
    assert!(r.body["title"].is_string());
    assert!(
        r.body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("/problems/")),
        "a documented problem type: {}",
        r.body
    );
    assert!(r.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

/// One refusal of each kind a client meets, by status: 400 (a command without its
/// Idempotency-Key), 401 (no token), 403 (a hotline agent asking for unit
/// statistics), 404 (an unknown ticket), 405 (DELETE on the tickets), 406 (no
/// encoding it may use, answered before the routes), 409 (verifying the accepted
/// ticket `id`), 412 (a stale If-Match on it), 415 (a body that is not JSON), 422
/// (a latitude of 91). None of them appends an event.
pub(crate) async fn refusals(app: &TestApp, id: &str) -> BTreeMap<u16, Resp> {
    let hot = app.token(Role::HotlineAgent, "etdz").await;
    let disp = app.token(Role::Dispatcher, "etdz").await;
    let mut out = BTreeMap::new();
    let r = app
        .send(
            reqwest::Method::POST,
            "/api/v1/tickets",
            Some(&hot),
            Some(&ticket_body()),
            &[],
        )
        .await;
    out.insert(400, r);
    let r = app
        .send(reqwest::Method::GET, "/api/v1/units", None, None, &[])
        .await;
    out.insert(401, r);
    out.insert(403, app.get("/api/v1/stats/units", &hot).await);
    let r = app
        .get(&format!("/api/v1/tickets/{}", Uuid::new_v4()), &disp)
        .await;
    out.insert(404, r);
    let r = app
        .send(
            reqwest::Method::DELETE,
            "/api/v1/tickets",
            Some(&disp),
            None,
            &[],
        )
        .await;
    out.insert(405, r);
    let r = app
        .client
        .get(format!("{}/api/v1/units", app.base))
        .bearer_auth(&hot)
        .header("accept-encoding", "identity;q=0")
        .send()
        .await
        .expect("request");
    out.insert(406, resp(r).await);
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/verify"),
            &disp,
            json!({"passed": true, "note": ""}),
        )
        .await;
    out.insert(409, r);
    let r = app
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/tickets/{id}/comment"),
            Some(&disp),
            Some(&json!({"text": "x"})),
            &[
                ("Idempotency-Key", Uuid::new_v4().to_string()),
                ("If-Match", "\"7\"".to_string()),
            ],
        )
        .await;
    out.insert(412, r);
    let r = app
        .client
        .post(format!("{}/api/v1/tickets", app.base))
        .bearer_auth(&hot)
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .header("content-type", "text/plain")
        .body("title=x")
        .send()
        .await
        .expect("request");
    out.insert(415, resp(r).await);
    let mut bad = ticket_body();
    bad["location"]["lat"] = json!(91);
    out.insert(422, app.post("/api/v1/tickets", &hot, bad).await);
    out
}

/// The page of a problem type that does not exist (`/problems/no-such-kind`,
/// outside /api/v1): a 404 problem itself.
pub(crate) async fn unknown_problem_page(app: &TestApp) -> Resp {
    app.send(
        reqwest::Method::GET,
        "/problems/no-such-kind",
        None,
        None,
        &[],
    )
    .await
}

/// An event of the live stream (`text/event-stream`).
#[derive(Debug)]
pub(crate) struct SseEvent {
    pub(crate) id: Option<i64>,
    pub(crate) event: String,
    pub(crate) data: Option<Value>,
}

/// Reads the stream's frames until `n` events (frames with an `event:` line) have
/// arrived, each within 10 s.
pub(crate) async fn sse_events(resp: reqwest::Response, n: usize) -> Vec<SseEvent> {
    let mut out = vec![];
    let mut buf = String::new();
    let mut stream = resp.bytes_stream();
    while out.len() < n {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .expect("SSE event within 10 s")
            .expect("stream open")
            .expect("chunk");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let field = |name: &str| {
                frame
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::trim)
            };
            if let Some(event) = field("event:") {
                out.push(SseEvent {
                    id: field("id:").map(|s| s.parse().expect("a numeric id")),
                    event: event.to_string(),
                    data: field("data:").and_then(|s| serde_json::from_str(s).ok()),
                });
            }
        }
    }
    out
}
