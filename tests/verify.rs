//! `yiwang verify`, run as an operator runs it (the real binary) against a database on
//! each engine that someone with raw database access has tampered with: the
//! append-only triggers dropped, one event edited, two deleted (one in the middle of
//! its stream, one at its end) and a forged event appended with a hash that fits its
//! chain. The report names each with its stream and version, and `/metrics` shows the
//! outcome of the last verification.

#[path = "support/mod.rs"]
mod support;

use serde_json::json;
use uuid::Uuid;
use yiwang::auth::Role;
use yiwang::store::Pool;

use support::{Engine, Run, TestApp, engines, yiwang};

async fn verify(url: &str) -> Run {
    yiwang(url, &["verify"]).await
}

async fn exec(pool: &Pool, sql: &str) {
    match pool {
        Pool::Postgres(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
        Pool::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A ticket with three events: accepted, assigned, commented.
async fn ticket(app: &TestApp) -> Uuid {
    let district = app.token(Role::Dispatcher, "etdz").await;
    let t = app.new_ticket().await;
    let id = t["id"].as_str().expect("id").to_string();
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/assign"),
            &district,
            json!({"unit": "zhzf"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/comment"),
            &district,
            json!({"text": "请尽快处理"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    id.parse().expect("uuid")
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let r = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics");
    let text = r.text().await.expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

#[tokio::test]
async fn verify_names_each_edited_deleted_and_inserted_event() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let (edited, middle, last, forged) = (
            ticket(&app).await,
            ticket(&app).await,
            ticket(&app).await,
            ticket(&app).await,
        );
        let clean = ticket(&app).await;

        let r = verify(&app.db.url).await;
        assert!(r.ok, "{engine:?}: an untouched log verifies: {r:?}");
        assert!(
            r.stdout.contains("verified 15 events in 5 streams")
                && r.stdout.contains("every hash chain is intact"),
            "{r:?}"
        );
        let report = yiwang::verify::verify_and_record(&app.app)
            .await
            .expect("verification ran");
        assert!(report.ok());
        assert_eq!(metric(&app, "yiwang_verify_last_ok").await, 1.0);
        assert_eq!(metric(&app, "yiwang_verify_problems").await, 0.0);
        assert!(metric(&app, "yiwang_verify_last_run_timestamp_seconds").await > 1.7e9);

        // An attacker with the database in hand: off with the append-only guard,
        // then edit, delete, and append a forged event whose hash fits its chain.
        let pool = app.app.store.pool();
        let head = app.app.store.read_stream(forged).await.expect("read");
        let prev = head.last().expect("events");
        let data = json!({"text": "已办结（伪造）"});
        let metadata = prev.metadata.clone();
        let at = yiwang::store::truncate_micros(chrono::Utc::now());
        let hash = yiwang::store::hash::event_hash(
            &prev.hash,
            forged,
            4,
            "TicketCommented",
            1,
            &data,
            &metadata,
            at,
            at,
        );
        let time = yiwang::store::hash::rfc3339(at);
        match engine {
            Engine::Sqlite => {
                exec(
                    &pool,
                    "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete",
                )
                .await;
                exec(
                    &pool,
                    &format!(
                        "UPDATE events SET data = json_set(data, '$.title', '没有垃圾') \
                         WHERE stream_id = '{edited}' AND version = 1;
                         DELETE FROM events WHERE stream_id = '{middle}' AND version = 2;
                         DELETE FROM events WHERE stream_id = '{last}' AND version = 3;
                         INSERT INTO events (stream_id, version, event_type, schema_version, data, metadata, \
                           occurred_at, recorded_at, prev_hash, hash) VALUES ('{forged}', 4, 'TicketCommented', 1, \
                           '{data}', '{metadata}', '{time}', '{time}', '{}', '{hash}')",
                        prev.hash
                    ),
                )
                .await;
            }
            Engine::Postgres => {
                exec(
                    &pool,
                    "ALTER TABLE events DISABLE TRIGGER events_no_update_delete",
                )
                .await;
                exec(
                    &pool,
                    &format!(
                        "UPDATE events SET data = jsonb_set(data::jsonb, '{{title}}', '\"没有垃圾\"')::json \
                         WHERE stream_id = '{edited}' AND version = 1;
                         DELETE FROM events WHERE stream_id = '{middle}' AND version = 2;
                         DELETE FROM events WHERE stream_id = '{last}' AND version = 3;
                         INSERT INTO events (position, stream_id, version, event_type, schema_version, data, metadata, \
                           occurred_at, recorded_at, prev_hash, hash) SELECT MAX(position) + 1, '{forged}', 4, \
                           'TicketCommented', 1, '{data}', '{metadata}', '{time}', '{time}', '{}', '{hash}' FROM events",
                        prev.hash
                    ),
                )
                .await;
            }
        }

        let r = verify(&app.db.url).await;
        assert!(!r.ok, "{engine:?}: tampering fails the command: {r:?}");
        let problems: Vec<&str> = r
            .stdout
            .lines()
            .filter(|l| !l.starts_with("verified "))
            .collect();
        let expected = [
            format!("edited stream {edited} version 1 position "),
            format!("deleted stream {middle} version 2: missing"),
            format!("deleted stream {last} version 3: missing"),
            format!("inserted stream {forged} version 4 position "),
        ];
        assert_eq!(problems.len(), expected.len(), "{engine:?}: {r:?}");
        for e in &expected {
            assert!(
                problems.iter().any(|p| p.starts_with(e.as_str())),
                "{engine:?}: expected a line starting {e:?}: {r:?}"
            );
        }
        assert!(!r.stdout.contains(&clean.to_string()), "{r:?}");
        assert!(
            r.stdout
                .contains("4 problem(s): 1 edited, 2 deleted, 1 inserted"),
            "{r:?}"
        );
        assert!(r.stderr.contains("tampered"), "{r:?}");

        // The service's own verification says the same in /metrics.
        let report = yiwang::verify::verify_and_record(&app.app)
            .await
            .expect("verification ran");
        let found: Vec<(Uuid, i64, &str)> = report
            .problems
            .iter()
            .map(|p| (p.stream, p.version, p.kind.as_str()))
            .collect();
        let mut want = vec![
            (edited, 1, "edited"),
            (middle, 2, "deleted"),
            (last, 3, "deleted"),
            (forged, 4, "inserted"),
        ];
        want.sort();
        assert_eq!(found, want, "{engine:?}");
        assert_eq!(metric(&app, "yiwang_verify_last_ok").await, 0.0);
        assert_eq!(metric(&app, "yiwang_verify_problems").await, 4.0);
        app.finish().await;
    }
}
