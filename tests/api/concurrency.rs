//! Optimistic concurrency and idempotency under concurrent requests.

use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;
use yiwang::auth::Role;

use crate::support::{TestApp, engines, ticket_body};

#[tokio::test]
async fn of_24_concurrent_commands_with_the_same_if_match_exactly_one_wins() {
    for engine in engines().await {
        let app = Arc::new(TestApp::spawn(engine).await);
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let t = app.new_ticket().await;
        let id = t["id"].as_str().unwrap().to_string();
        let before = app.all_events().await.len();
        let mut tasks = vec![];
        for i in 0..24 {
            let (app, disp, id) = (app.clone(), disp.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                app.send(
                    reqwest::Method::POST,
                    &format!("/api/v1/tickets/{id}/comment"),
                    Some(&disp),
                    Some(&json!({"text": format!("comment {i}")})),
                    &[
                        ("Idempotency-Key", Uuid::new_v4().to_string()),
                        ("If-Match", "\"1\"".into()),
                    ],
                )
                .await
            }));
        }
        let mut statuses = vec![];
        for t in tasks {
            statuses.push(t.await.unwrap().status);
        }
        let wins = statuses.iter().filter(|s| **s == 200).count();
        let lost = statuses.iter().filter(|s| **s == 412).count();
        assert_eq!((wins, lost), (1, 23), "{engine:?}: {statuses:?}");
        assert_eq!(
            app.all_events().await.len(),
            before + 1,
            "exactly one event appended"
        );
        let r = app.get(&format!("/api/v1/tickets/{id}"), &disp).await;
        assert_eq!(r.body["version"], 2);
        Arc::into_inner(app).unwrap().finish().await;
    }
}

#[tokio::test]
async fn concurrent_commands_without_if_match_all_apply_in_some_order() {
    for engine in engines().await {
        let app = Arc::new(TestApp::spawn(engine).await);
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let id = app.new_ticket().await["id"].as_str().unwrap().to_string();
        let mut tasks = vec![];
        for i in 0..12 {
            let (app, disp, id) = (app.clone(), disp.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                app.post(
                    &format!("/api/v1/tickets/{id}/comment"),
                    &disp,
                    json!({"text": format!("c{i}")}),
                )
                .await
                .status
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200);
        }
        let r = app
            .get(&format!("/api/v1/tickets/{id}/events"), &disp)
            .await;
        let versions: Vec<i64> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["version"].as_i64().unwrap())
            .collect();
        assert_eq!(versions, (1..=13).collect::<Vec<_>>());
        Arc::into_inner(app).unwrap().finish().await;
    }
}

#[tokio::test]
async fn ten_concurrent_retries_with_one_idempotency_key_create_one_ticket() {
    for engine in engines().await {
        let app = Arc::new(TestApp::spawn(engine).await);
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let key = Uuid::new_v4().to_string();
        let mut tasks = vec![];
        for _ in 0..10 {
            let (app, hot, key) = (app.clone(), hot.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                app.send(
                    reqwest::Method::POST,
                    "/api/v1/tickets",
                    Some(&hot),
                    Some(&ticket_body()),
                    &[("Idempotency-Key", key)],
                )
                .await
            }));
        }
        let mut ids = std::collections::HashSet::new();
        for t in tasks {
            let r = t.await.unwrap();
            assert_eq!(r.status, 201, "{engine:?}: {}", r.body);
            ids.insert(r.body["id"].as_str().unwrap().to_string());
        }
        assert_eq!(ids.len(), 1, "every retry answers with the same ticket");
        let accepted = app
            .all_events()
            .await
            .iter()
            .filter(|e| e.event_type == "TicketAccepted")
            .count();
        assert_eq!(accepted, 1);
        Arc::into_inner(app).unwrap().finish().await;
    }
}

#[tokio::test]
async fn a_retry_replays_the_first_answer_and_a_reused_key_with_another_body_is_refused() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let id = app.new_ticket().await["id"].as_str().unwrap().to_string();
        let key = [("Idempotency-Key", "assign-once".to_string())];
        let path = format!("/api/v1/tickets/{id}/assign");
        let body = json!({"unit": "zhzf"});
        let first = app
            .send(reqwest::Method::POST, &path, Some(&disp), Some(&body), &key)
            .await;
        let n = app.all_events().await.len();
        let again = app
            .send(reqwest::Method::POST, &path, Some(&disp), Some(&body), &key)
            .await;
        assert_eq!((first.status, again.status), (200, 200));
        assert_eq!(first.body, again.body);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(app.all_events().await.len(), n, "a retry appends nothing");
        let other = app
            .send(
                reqwest::Method::POST,
                &path,
                Some(&disp),
                Some(&json!({"unit": "scjg"})),
                &key,
            )
            .await;
        assert_eq!(other.status, 422, "{}", other.body);
        assert_eq!(other.body["field"], "Idempotency-Key");
        assert_eq!(app.all_events().await.len(), n);
        app.finish().await;
    }
}

/// Each instance keeps the tickets it wrote last in memory. When another instance
/// moves a ticket, the first one's copy is stale: its next command must still see
/// the move (decide on fresh state), and the log must stay one unbroken chain.
#[tokio::test]
async fn a_ticket_moved_by_another_instance_is_decided_on_fresh_state() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let (other, _other_app) = crate::support::another_instance(&app.db).await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let hand = app.token(Role::Handler, "zhzf").await;
        let id = app.new_ticket().await["id"].as_str().unwrap().to_string();
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/assign"),
                &disp,
                json!({"unit": "zhzf"}),
            )
            .await;
        assert_eq!(r.status, 200);
        // The other instance signs it: this instance's copy still says "unsigned".
        let r = app
            .client
            .post(format!("{other}/api/v1/tickets/{id}/sign"))
            .bearer_auth(&hand)
            .header("Idempotency-Key", Uuid::new_v4().to_string())
            .json(&json!({"handler": "钱工"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // Back on the first instance: signing again must be refused (it was signed),
        // and handling must be allowed (it was signed).
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/sign"),
                &hand,
                json!({"handler": "李"}),
            )
            .await;
        assert_eq!(
            r.status, 409,
            "{engine:?}: decided on stale state: {}",
            r.body
        );
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/handle"),
                &hand,
                json!({"result": "已处理"}),
            )
            .await;
        assert_eq!(
            (r.status, r.body["version"].as_i64()),
            (200, Some(4)),
            "{}",
            r.body
        );
        // If-Match with the version the other instance produced is honoured here.
        let r = app
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/tickets/{id}/comment"),
                Some(&disp),
                Some(&json!({"text": "ok"})),
                &[
                    ("Idempotency-Key", Uuid::new_v4().to_string()),
                    ("If-Match", "\"4\"".into()),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let evs = app
            .app
            .store
            .read_stream(uuid::Uuid::parse_str(&id).unwrap())
            .await
            .unwrap();
        assert_eq!(
            evs.iter().map(|e| e.version).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        for w in evs.windows(2) {
            assert_eq!(w[1].prev_hash, w[0].hash);
        }
        app.finish().await;
    }
}

/// The other way round: the stale copy would refuse a command that the stored state
/// allows (another instance already moved the ticket to where the command fits). A
/// refusal is judged on fresh state, so the command goes through. Found by the fault
/// harness's three-instance run (`yiwang-load faults --scenario cluster`).
#[tokio::test]
async fn a_refusal_is_never_decided_on_a_stale_copy() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let (other, _other_app) = crate::support::another_instance(&app.db).await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let hand = app.token(Role::Handler, "zhzf").await;
        let id = app.new_ticket().await["id"].as_str().unwrap().to_string();
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/assign"),
                &disp,
                json!({"unit": "zhzf"}),
            )
            .await;
        assert_eq!(r.status, 200);
        // The other instance signs and handles it: this instance's copy still says
        // "assigned, unsigned", where a verification is refused.
        for (action, body) in [
            ("sign", json!({"handler": "钱工"})),
            ("handle", json!({"result": "已处理"})),
        ] {
            let r = app
                .client
                .post(format!("{other}/api/v1/tickets/{id}/{action}"))
                .bearer_auth(&hand)
                .header("Idempotency-Key", Uuid::new_v4().to_string())
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{action}");
        }
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/verify"),
                &disp,
                json!({"passed": true, "note": "现场核实"}),
            )
            .await;
        assert_eq!(
            (
                r.status,
                r.body["state"].as_str(),
                r.body["version"].as_i64()
            ),
            (200, Some("verified"), Some(5)),
            "{engine:?}: refused on a stale copy: {}",
            r.body
        );
        app.finish().await;
    }
}

/// Idempotency keys are per user: two agents who happen to send the same key with
/// the same body get a ticket each (a key space shared by all would hand the
/// second agent the first one's ticket); and a retry that lands on another instance
/// of the service gets the first answer, with nothing appended twice.
#[tokio::test]
async fn a_key_belongs_to_its_user_and_a_retry_through_another_instance_replays_it() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let pool = app.app.store.pool();
        let mut agents = Vec::new();
        for user in ["agent-a@etdz", "agent-b@etdz"] {
            let (_, t) = yiwang::auth::create_token(&pool, user, Role::HotlineAgent, "etdz")
                .await
                .unwrap();
            agents.push(t);
        }
        let key = [("Idempotency-Key", "shift-start-1".to_string())];
        let create = |base: String, token: String| {
            let client = reqwest::Client::new();
            async move {
                let r = client
                    .post(format!("{base}/api/v1/tickets"))
                    .bearer_auth(token)
                    .header("Idempotency-Key", "shift-start-1")
                    .json(&ticket_body())
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let replayed = r.headers().get("idempotent-replayed").is_some();
                let body: serde_json::Value = r.json().await.unwrap();
                (status, replayed, body)
            }
        };
        let mut ids = Vec::new();
        for t in &agents {
            let r = app
                .send(
                    reqwest::Method::POST,
                    "/api/v1/tickets",
                    Some(t),
                    Some(&ticket_body()),
                    &key,
                )
                .await;
            assert_eq!(r.status, 201, "{engine:?}: {}", r.body);
            assert_eq!(r.header("idempotent-replayed"), None, "{engine:?}");
            ids.push(r.body["id"].as_str().unwrap().to_string());
        }
        assert_ne!(
            ids[0], ids[1],
            "{engine:?}: one key, two users, two tickets"
        );
        let accepted = |events: &[yiwang::store::RecordedEvent]| {
            events
                .iter()
                .filter(|e| e.event_type == "TicketAccepted")
                .count()
        };
        assert_eq!(accepted(&app.all_events().await), 2, "{engine:?}");

        // The first agent's retry reaches a second instance on the same database.
        let (other, _other_app) = crate::support::another_instance(&app.db).await;
        let (status, replayed, body) = create(other, agents[0].clone()).await;
        assert_eq!(status, 201, "{engine:?}: {body}");
        assert!(replayed, "{engine:?}: the answer is the stored first one");
        assert_eq!(body["id"], ids[0].as_str(), "{engine:?}");
        let events = app.all_events().await;
        assert_eq!(accepted(&events), 2, "{engine:?}: nothing appended again");
        app.finish().await;
    }
}
