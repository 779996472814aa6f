//! Refusals: each is problem+json with a message a person can act on, and each
//! appends nothing.

use serde_json::{Value, json};
use uuid::Uuid;
use yiwang::auth::Role;

use crate::support::{Resp, TestApp, engines, ticket_body};

fn assert_problem(r: &Resp, status: u16) {
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

#[tokio::test]
async fn bad_requests_are_problems_and_append_nothing() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let hand = app.token(Role::Handler, "zhzf").await;
        let id = app.new_ticket().await["id"].as_str().unwrap().to_string();
        let before = app.all_events().await.len();
        let key = || [("Idempotency-Key", Uuid::new_v4().to_string())];

        // Malformed JSON: 400.
        let r = app
            .client
            .post(format!("{}/api/v1/tickets", app.base))
            .bearer_auth(&hot)
            .header("Idempotency-Key", "k1")
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        let r = Resp {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.json::<Value>().await.unwrap(),
        };
        assert_problem(&r, 400);

        // A missing field: 422 naming it.
        let mut body = ticket_body();
        body.as_object_mut().unwrap().remove("title");
        let r = app.post("/api/v1/tickets", &hot, body).await;
        assert_problem(&r, 422);
        assert_eq!(r.body["field"], "title");

        // A wrong type or value: 422 naming the path.
        let mut body = ticket_body();
        body["urgency"] = json!("whenever");
        let r = app.post("/api/v1/tickets", &hot, body).await;
        assert_problem(&r, 422);
        assert_eq!(r.body["field"], "urgency");
        let mut body = ticket_body();
        body["location"]["lat"] = json!("north");
        let r = app.post("/api/v1/tickets", &hot, body).await;
        assert_eq!(r.body["field"], "location.lat");
        let r = app
            .post(
                "/api/v1/tickets",
                &hot,
                json!({"source": "hotline", "category": "nope", "title": "x"}),
            )
            .await;
        assert_problem(&r, 422);
        assert_eq!(r.body["field"], "category");

        // Unknown ticket: 404. Unknown action: 404.
        let r = app
            .get(&format!("/api/v1/tickets/{}", Uuid::now_v7()), &disp)
            .await;
        assert_problem(&r, 404);
        let r = app
            .post(&format!("/api/v1/tickets/{id}/teleport"), &disp, json!({}))
            .await;
        assert_problem(&r, 404);

        // A transition the state forbids: 409.
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/sign"),
                &hand,
                json!({"handler": "x"}),
            )
            .await;
        // Not yet this handler's ticket, nor one it may see: as if it did not exist.
        assert_eq!(r.status, 404, "not yet this handler's ticket: {}", r.body);
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/verify"),
                &disp,
                json!({"passed": true, "note": ""}),
            )
            .await;
        assert_problem(&r, 409);
        assert!(r.body["detail"].as_str().unwrap().contains("accepted"));

        // A stale If-Match: 412.
        let r = app
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/tickets/{id}/comment"),
                Some(&disp),
                Some(&json!({"text": "x"})),
                &[
                    ("Idempotency-Key", Uuid::new_v4().to_string()),
                    ("If-Match", "\"7\"".into()),
                ],
            )
            .await;
        assert_problem(&r, 412);

        // Over 1 MiB: 413.
        let mut body = ticket_body();
        body["description"] = json!("长".repeat(400_000));
        let r = app
            .send(
                reqwest::Method::POST,
                "/api/v1/tickets",
                Some(&hot),
                Some(&body),
                &key(),
            )
            .await;
        assert_problem(&r, 413);

        // No Idempotency-Key: 400.
        let r = app
            .send(
                reqwest::Method::POST,
                "/api/v1/tickets",
                Some(&hot),
                Some(&ticket_body()),
                &[],
            )
            .await;
        assert_problem(&r, 400);

        // No token: 401; a bad one: 401.
        let r = app
            .send(reqwest::Method::GET, "/api/v1/tickets", None, None, &[])
            .await;
        assert_problem(&r, 401);
        let r = app.get("/api/v1/tickets", "yw_nope").await;
        assert_problem(&r, 401);

        // Control characters and oversized text.
        let mut body = ticket_body();
        body["title"] = json!("bad\u{0007}title");
        assert_problem(&app.post("/api/v1/tickets", &hot, body).await, 422);
        let mut body = ticket_body();
        body["title"] = json!("x".repeat(201));
        assert_problem(&app.post("/api/v1/tickets", &hot, body).await, 422);

        assert_eq!(
            app.all_events().await.len(),
            before,
            "no refusal appended anything"
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn sql_looking_text_is_stored_and_returned_verbatim() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let mut body = ticket_body();
        let nasty = "'); DROP TABLE events; -- \"路灯\" \\ %_";
        body["description"] = json!(nasty);
        let r = app.post("/api/v1/tickets", &hot, body).await;
        assert_eq!(r.status, 201);
        let r = app
            .get(
                &format!("/api/v1/tickets/{}", r.body["id"].as_str().unwrap()),
                &hot,
            )
            .await;
        assert_eq!(r.body["description"], nasty);
        app.finish().await;
    }
}
