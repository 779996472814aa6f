//! The slim idempotency record (issue 24, point 2): a ticket command keeps its
//! status, stream and version, not its answer's body, and a retry renders the
//! answer again from the log at that version: byte for byte the first answer, however
//! far the ticket has moved since and whatever the time now. A record written
//! before migration 0016 (a body, no version) is answered from its body as before.
//! A retry moments after its first request is answered from the instance's memory
//! (`app::answers`) with the same bytes, reading nothing and taking no ticket number.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;
use yiwang::auth::Role;
use yiwang::clock::Clock;
use yiwang::store::Pool;

use crate::support::{TestApp, engines, ticket_body};

fn bj(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{s}+08:00"))
        .expect("a time")
        .with_timezone(&Utc)
}

/// A command's raw answer: status, the `Idempotent-Replayed` and `ETag` headers,
/// and the body's bytes as sent.
#[derive(Debug, PartialEq)]
struct Raw {
    status: u16,
    replayed: bool,
    etag: Option<String>,
    body: Vec<u8>,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON answer")
    }
}

async fn command(app: &TestApp, token: &str, path: &str, key: &str, body: &Value) -> Raw {
    let r = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("request");
    let header = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (replayed, etag) = (header("idempotent-replayed").is_some(), header("etag"));
    Raw {
        status: r.status().as_u16(),
        replayed,
        etag,
        body: r.bytes().await.expect("body").to_vec(),
    }
}

/// The stored record of a key: (body, version).
async fn record(app: &TestApp, key: &str) -> (Option<String>, Option<i64>) {
    match app.app.store.pool() {
        Pool::Postgres(p) => {
            sqlx::query_as("SELECT body, version FROM idempotency_keys WHERE key = $1")
                .bind(key)
                .fetch_one(&p)
                .await
        }
        Pool::Sqlite(p) => {
            sqlx::query_as("SELECT body, version FROM idempotency_keys WHERE key = ?")
                .bind(key)
                .fetch_one(&p)
                .await
        }
    }
    .expect("the key's record")
}

/// Turns a key's record into one as a release before 0016 wrote it: `body`, no
/// version.
async fn make_legacy(app: &TestApp, key: &str, body: &str) {
    match app.app.store.pool() {
        Pool::Postgres(p) => {
            sqlx::query("UPDATE idempotency_keys SET body = $1, version = NULL WHERE key = $2")
                .bind(body)
                .bind(key)
                .execute(&p)
                .await
                .map(|_| ())
        }
        Pool::Sqlite(p) => {
            sqlx::query("UPDATE idempotency_keys SET body = ?, version = NULL WHERE key = ?")
                .bind(body)
                .bind(key)
                .execute(&p)
                .await
                .map(|_| ())
        }
    }
    .expect("make the record a legacy one");
}

#[tokio::test]
async fn a_retry_after_the_ticket_moved_on_gets_the_first_answer_byte_for_byte() {
    for engine in engines().await {
        let clock = Clock::manual(bj("2026-10-12T09:00:00"));
        let app = TestApp::spawn_with_clock(engine, clock.clone()).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let hand = app.token(Role::Handler, "zhzf").await;

        // Created (the answer shows the reporter in full to the hotline agent), then
        // dispatched: the sign deadline is running.
        let mut create = ticket_body();
        // A point with every digit a double holds (a phone's GPS), values that the
        // JSON parser does not read back exactly from their shortest text: the
        // service's own reading of them is what the log holds, and reads back the same.
        create["location"]["lat"] = json!(37.847_458_546_605_644);
        create["location"]["lon"] = json!(122.480_587_874_049_49);
        let create_key = format!("create-{}", Uuid::new_v4());
        let created = command(&app, &hot, "/api/v1/tickets", &create_key, &create).await;
        assert_eq!(created.status, 201, "{engine:?}: {:?}", created.json());
        assert_eq!(created.json()["reporter"]["masked"], false);
        let id = created.json()["id"].as_str().expect("id").to_string();

        clock.set(bj("2026-10-12T09:10:00"));
        let assign_path = format!("/api/v1/tickets/{id}/assign");
        let assign_key = format!("assign-{}", Uuid::new_v4());
        let assign = json!({"unit": "zhzf", "note": "请尽快处理"});
        let assigned = command(&app, &disp, &assign_path, &assign_key, &assign).await;
        assert_eq!(assigned.status, 200, "{engine:?}: {:?}", assigned.json());
        assert_eq!(assigned.json()["deadlines"]["sign"], "running");
        assert_eq!(assigned.json()["overdue"], false);

        // The stored records hold no body, only the versions the commands left.
        assert_eq!(
            record(&app, &create_key).await,
            (
                None,
                Some(created.json()["version"].as_i64().expect("version"))
            ),
            "{engine:?}"
        );
        assert_eq!(
            record(&app, &assign_key).await,
            (
                None,
                Some(assigned.json()["version"].as_i64().expect("version"))
            ),
            "{engine:?}"
        );

        // Days later, past the sign deadline, the ticket moves on: signed late, a
        // comment, handled.
        clock.set(bj("2026-10-20T15:00:00"));
        for (token, action, body) in [
            (&hand, "sign", json!({"handler": "钱工"})),
            (&disp, "comment", json!({"text": "已催办"})),
            (&hand, "handle", json!({"result": "已清运"})),
        ] {
            let r = app
                .post(&format!("/api/v1/tickets/{id}/{action}"), token, body)
                .await;
            assert_eq!(r.status, 200, "{engine:?} {action}: {}", r.body);
        }
        let now = app.get(&format!("/api/v1/tickets/{id}"), &disp).await;
        assert_eq!(now.body["state"], "handled");
        assert_eq!(now.body["deadlines"]["sign"], "missed");
        clock.set(bj("2026-10-21T08:00:00") + Duration::days(1));

        // The retries: the first answers again, to the byte, with their status and
        // ETag, marked as replayed; nothing appended.
        let events = app.count_rows("events").await;
        let again = command(&app, &hot, "/api/v1/tickets", &create_key, &create).await;
        assert_eq!(
            (again.status, again.etag.as_deref(), again.replayed),
            (201, created.etag.as_deref(), true),
            "{engine:?}"
        );
        assert_eq!(
            String::from_utf8_lossy(&again.body),
            String::from_utf8_lossy(&created.body),
            "{engine:?}: the creation's retry"
        );
        let again = command(&app, &disp, &assign_path, &assign_key, &assign).await;
        assert_eq!(
            (again.status, again.etag.as_deref(), again.replayed),
            (200, assigned.etag.as_deref(), true),
            "{engine:?}"
        );
        assert_eq!(
            String::from_utf8_lossy(&again.body),
            String::from_utf8_lossy(&assigned.body),
            "{engine:?}: the assignment's retry"
        );
        assert_eq!(
            app.count_rows("events").await,
            events,
            "a retry appends nothing"
        );

        // The same key with another body is still refused.
        let other = json!({"unit": "scjg"});
        let r = command(&app, &disp, &assign_path, &assign_key, &other).await;
        assert_eq!(r.status, 422, "{engine:?}: {:?}", r.json());
        assert_eq!(r.json()["field"], "Idempotency-Key");

        // A record as a release before 0016 wrote it (the body, no version) is
        // answered from its body. (Past what the instance keeps of its answers in
        // memory, `app::answers::KEEP_FOR`, so the retry reads the record.)
        clock.set(bj("2026-10-21T08:00:00") + Duration::days(1) + Duration::minutes(11));
        let mut legacy = assigned.json();
        legacy["note_for_the_test"] = json!("kept whole");
        let legacy = legacy.to_string();
        make_legacy(&app, &assign_key, &legacy).await;
        let r = command(&app, &disp, &assign_path, &assign_key, &assign).await;
        assert_eq!(
            (r.status, r.etag.as_deref(), r.replayed),
            (200, assigned.etag.as_deref(), true),
            "{engine:?}"
        );
        assert_eq!(String::from_utf8_lossy(&r.body), legacy, "{engine:?}");
        app.finish().await;
    }
}

/// How many retries this instance answered from `from` (`memory` or `log`).
fn replays(app: &TestApp, from: &str) -> u64 {
    app.app.metrics.replays.with_label_values(&[from]).get()
}

/// A ticket number's serial (`20261012-000042` → 42).
fn serial(answer: &Raw) -> u64 {
    let number = answer.json()["number"]
        .as_str()
        .expect("number")
        .to_string();
    number
        .rsplit('-')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a ticket number: {number}"))
}

#[tokio::test]
async fn a_retry_moments_later_is_answered_from_memory_and_takes_no_ticket_number() {
    for engine in engines().await {
        let clock = Clock::manual(bj("2026-10-12T09:00:00"));
        let app = TestApp::spawn_with_clock(engine, clock.clone()).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;

        let create = ticket_body();
        let key = format!("create-{}", Uuid::new_v4());
        let before = app.count_rows("events").await;
        let first = command(&app, &hot, "/api/v1/tickets", &key, &create).await;
        assert_eq!(first.status, 201, "{engine:?}: {:?}", first.json());
        let id = first.json()["id"].as_str().expect("id").to_string();
        let events = app.count_rows("events").await;
        let per_ticket = events - before;

        // The phone lost the answer and sends again a moment later: the first
        // answer, to the byte, from memory.
        clock.set(bj("2026-10-12T09:00:30"));
        let again = command(&app, &hot, "/api/v1/tickets", &key, &create).await;
        assert_eq!(
            (again.status, again.etag.as_deref(), again.replayed),
            (201, first.etag.as_deref(), true),
            "{engine:?}"
        );
        assert_eq!(
            String::from_utf8_lossy(&again.body),
            String::from_utf8_lossy(&first.body),
            "{engine:?}"
        );
        // Decided again, the retry would have taken the next number and left a gap
        // in the day's numbering before the next ticket.
        let next = command(
            &app,
            &hot,
            "/api/v1/tickets",
            &format!("create-{}", Uuid::new_v4()),
            &create,
        )
        .await;
        assert_eq!(next.status, 201, "{engine:?}: {:?}", next.json());
        assert_eq!(
            serial(&next),
            serial(&first) + 1,
            "{engine:?}: no number skipped"
        );
        assert_eq!(
            (replays(&app, "memory"), replays(&app, "log")),
            (1, 0),
            "{engine:?}"
        );
        assert_eq!(
            app.count_rows("events").await,
            events + per_ticket,
            "{engine:?}: the retry appended nothing"
        );

        // A ticket command the same way; the same key with another body is not the
        // same request, and the record refuses it.
        let path = format!("/api/v1/tickets/{id}/assign");
        let assign_key = format!("assign-{}", Uuid::new_v4());
        let assign = json!({"unit": "zhzf"});
        let assigned = command(&app, &disp, &path, &assign_key, &assign).await;
        assert_eq!(assigned.status, 200, "{engine:?}: {:?}", assigned.json());
        let again = command(&app, &disp, &path, &assign_key, &assign).await;
        assert_eq!(
            (again.status, again.replayed, again.body),
            (200, true, assigned.body.clone())
        );
        assert_eq!(replays(&app, "memory"), 2, "{engine:?}");
        let other = command(&app, &disp, &path, &assign_key, &json!({"unit": "scjg"})).await;
        assert_eq!(other.status, 422, "{engine:?}: {:?}", other.json());
        assert_eq!(other.json()["field"], "Idempotency-Key");

        // Another user's request under the same key is that user's own first request.
        let theirs = command(&app, &disp, "/api/v1/tickets", &key, &create).await;
        assert_eq!((theirs.status, theirs.replayed), (201, false), "{engine:?}");
        assert_ne!(theirs.json()["id"], first.json()["id"]);

        // Past what memory keeps, the record answers, with the same bytes.
        clock.set(bj("2026-10-12T09:11:00"));
        let later = command(&app, &hot, "/api/v1/tickets", &key, &create).await;
        assert_eq!((later.status, later.replayed), (201, true), "{engine:?}");
        assert_eq!(
            String::from_utf8_lossy(&later.body),
            String::from_utf8_lossy(&first.body),
            "{engine:?}"
        );
        assert_eq!(
            (replays(&app, "memory"), replays(&app, "log")),
            (2, 1),
            "{engine:?}"
        );
        app.finish().await;
    }
}
