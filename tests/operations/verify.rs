//! `yiwang verify`, run as an operator runs it (the real binary) against a database on
//! each engine that someone with raw database access has tampered with: the
//! append-only triggers dropped, one event edited, two deleted (one in the middle of
//! its stream, one at its end) and a forged event appended with a hash that fits its
//! chain. The report names each with its stream and version, and `/metrics` shows the
//! outcome of the last verification.

use crate::support;

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
        Pool::Postgres(p) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(p)
            .await
            .map(|_| ()),
        Pool::Sqlite(p) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(p)
            .await
            .map(|_| ()),
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
        let report = yiwang::verify::verify_and_record(
            &app.app.store.pool(),
            &app.app.metrics,
            &app.app.integrity,
        )
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
            .filter(|l| l.contains(" stream "))
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
        // Two deleted and one forged: the log no longer matches its tally.
        assert!(
            r.stdout.lines().any(|l| l.starts_with("uncounted log: ")
                && l.contains("14 events where the appends counted 15")),
            "{engine:?}: {r:?}"
        );
        assert!(!r.stdout.contains(&clean.to_string()), "{r:?}");
        assert!(
            r.stdout.contains("1 edited, 2 deleted, 1 inserted"),
            "{r:?}"
        );
        assert!(r.stderr.contains("tampered"), "{r:?}");

        // The service's own verification says the same in /metrics.
        let report = yiwang::verify::verify_and_record(
            &app.app.store.pool(),
            &app.app.metrics,
            &app.app.integrity,
        )
        .await
        .expect("verification ran");
        let found: Vec<(Uuid, i64, &str)> = report
            .problems
            .iter()
            .filter(|p| !p.stream.is_nil())
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
        assert_eq!(
            metric(&app, "yiwang_verify_problems").await,
            report.problems.len() as f64
        );
        app.finish().await;
    }
}

// ---------------------------------------------------------------------------------
// The tamper suite (issue 19): each way of changing the database by hand is found
// by `verify::run`, which names the stream and the position.

/// The guards off, as an attacker with the database in hand (the owner on
/// PostgreSQL, the file on SQLite) would have them.
async fn unguard(engine: Engine, pool: &Pool) {
    match engine {
        Engine::Sqlite => {
            exec(
                pool,
                "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; \
                 DROP TRIGGER events_version_follows_head",
            )
            .await
        }
        Engine::Postgres => exec(pool, "ALTER TABLE events DISABLE TRIGGER USER").await,
    }
}

/// The positions of a stream's events, by version.
async fn positions(pool: &Pool, stream: Uuid) -> Vec<i64> {
    match pool {
        Pool::Postgres(p) => {
            sqlx::query_scalar("SELECT position FROM events WHERE stream_id = $1 ORDER BY version")
                .bind(stream)
                .fetch_all(p)
                .await
        }
        Pool::Sqlite(p) => {
            sqlx::query_scalar("SELECT position FROM events WHERE stream_id = ? ORDER BY version")
                .bind(stream.to_string())
                .fetch_all(p)
                .await
        }
    }
    .expect("positions")
}

/// Swaps the positions of two events (through a free position: keys are checked
/// row by row).
async fn swap(pool: &Pool, a: i64, b: i64) {
    let tmp = a.max(b) + 100_000;
    exec(
        pool,
        &format!(
            "UPDATE events SET position = {tmp} WHERE position = {a}; \
             UPDATE events SET position = {a} WHERE position = {b}; \
             UPDATE events SET position = {b} WHERE position = {tmp}"
        ),
    )
    .await;
}

async fn report(app: &TestApp) -> yiwang::verify::Report {
    yiwang::verify::run(&app.app.store.pool())
        .await
        .expect("verification runs")
}

/// The problems of one stream, as (kind, version, position).
fn of(r: &yiwang::verify::Report, stream: Uuid) -> Vec<(&'static str, i64, Option<i64>)> {
    r.problems
        .iter()
        .filter(|p| p.stream == stream)
        .map(|p| (p.kind.as_str(), p.version, p.position))
        .collect()
}

/// Only `streams` (and the whole log) are named.
fn only(r: &yiwang::verify::Report, streams: &[Uuid], what: &str) {
    for p in &r.problems {
        assert!(
            p.stream.is_nil() || streams.contains(&p.stream),
            "{what}: an untouched stream is named: {p}"
        );
    }
}

#[tokio::test]
async fn every_tampering_is_named_with_its_stream_and_position() {
    for engine in engines().await {
        // A payload edited.
        let app = TestApp::spawn(engine).await;
        let (t, clean) = (ticket(&app).await, ticket(&app).await);
        let r = report(&app).await;
        assert!(r.ok(), "{engine:?}: a clean log: {:?}", r.problems);
        assert_eq!((r.events, r.streams, r.views), (6, 2, 2), "{engine:?}");
        let pool = app.app.store.pool();
        let pos = positions(&pool, t).await;
        unguard(engine, &pool).await;
        let edit = match engine {
            Engine::Sqlite => {
                "UPDATE events SET data = json_set(data, '$.text', '已处理') WHERE position = {p}"
            }
            Engine::Postgres => {
                "UPDATE events SET data = jsonb_set(data::jsonb, '{text}', '\"已处理\"')::json WHERE position = {p}"
            }
        };
        exec(&pool, &edit.replace("{p}", &pos[2].to_string())).await;
        let r = report(&app).await;
        assert_eq!(
            of(&r, t),
            [("edited", 3, Some(pos[2]))],
            "{engine:?}: payload"
        );
        only(&r, &[t], "payload");
        assert!(of(&r, clean).is_empty());
        app.finish().await;

        // A ticket view edited: closed, and with another unit, in the columns and
        // in the doc (the service authorizes and masks from the doc).
        let app = TestApp::spawn(engine).await;
        let (t, clean) = (ticket(&app).await, ticket(&app).await);
        let pool = app.app.store.pool();
        let pos = positions(&pool, t).await;
        let edit = match engine {
            Engine::Sqlite => format!(
                "UPDATE ticket_view SET state = 'closed', unit = 'scjg', \
                 doc = json_set(doc, '$.state', 'closed', '$.unit', 'scjg') WHERE id = '{t}'"
            ),
            Engine::Postgres => format!(
                "UPDATE ticket_view SET state = 'closed', unit = 'scjg', \
                 doc = jsonb_set(jsonb_set(doc::jsonb, '{{state}}', '\"closed\"'), '{{unit}}', '\"scjg\"')::text \
                 WHERE id = '{t}'"
            ),
        };
        exec(&pool, &edit).await;
        let r = report(&app).await;
        assert_eq!(of(&r, t), [("view", 3, Some(pos[2]))], "{engine:?}: view");
        let detail = &r.problems[0].detail;
        for field in ["state", "unit", "doc.state", "doc.unit"] {
            assert!(
                detail.contains(&format!("{field}: ")),
                "{engine:?}: {field} named: {detail}"
            );
        }
        assert!(
            r.problems.len() == 1 && of(&r, clean).is_empty(),
            "{engine:?}: {:?}",
            r.problems
        );
        app.finish().await;

        // Two positions swapped within a stream.
        let app = TestApp::spawn(engine).await;
        let (t, _clean) = (ticket(&app).await, ticket(&app).await);
        let pool = app.app.store.pool();
        let pos = positions(&pool, t).await;
        unguard(engine, &pool).await;
        swap(&pool, pos[1], pos[2]).await;
        let r = report(&app).await;
        assert_eq!(
            of(&r, t),
            [("reordered", 3, Some(pos[1]))],
            "{engine:?}: swap"
        );
        let p = r.problems.iter().find(|p| p.stream == t).expect("named");
        assert!(
            p.detail.contains(&pos[1].to_string()) && p.detail.contains(&pos[2].to_string()),
            "{engine:?}: both positions named: {p}"
        );
        assert!(
            r.problems
                .iter()
                .any(|p| p.stream.is_nil() && p.kind.as_str() == "uncounted"),
            "{engine:?}: the digest differs: {:?}",
            r.problems
        );
        only(&r, &[t], "swap");
        app.finish().await;

        // Positions swapped across two streams.
        let app = TestApp::spawn(engine).await;
        let (a, b, _clean) = (ticket(&app).await, ticket(&app).await, ticket(&app).await);
        let pool = app.app.store.pool();
        let (pa, pb) = (positions(&pool, a).await, positions(&pool, b).await);
        unguard(engine, &pool).await;
        swap(&pool, pa[1], pb[2]).await;
        let r = report(&app).await;
        assert_eq!(
            of(&r, a),
            [("reordered", 3, Some(pa[2]))],
            "{engine:?}: across"
        );
        assert_eq!(
            of(&r, b),
            [("reordered", 3, Some(pa[1]))],
            "{engine:?}: across"
        );
        assert!(
            r.problems
                .iter()
                .any(|p| p.stream.is_nil() && p.kind.as_str() == "uncounted"),
            "{engine:?}: {:?}",
            r.problems
        );
        only(&r, &[a, b], "across");
        app.finish().await;

        // A whole ticket deleted: events, view and contact.
        let app = TestApp::spawn(engine).await;
        let (t, _clean) = (ticket(&app).await, ticket(&app).await);
        let pool = app.app.store.pool();
        let pos = positions(&pool, t).await;
        let contact = app
            .app
            .load(t)
            .await
            .expect("load")
            .and_then(|t| t.reporter_ref)
            .expect("a reporter");
        unguard(engine, &pool).await;
        exec(
            &pool,
            &format!(
                "DELETE FROM events WHERE stream_id = '{t}'; DELETE FROM ticket_view WHERE id = '{t}'; \
                 DELETE FROM contacts WHERE id = '{contact}'"
            ),
        )
        .await;
        let r = report(&app).await;
        assert_eq!(
            of(&r, t),
            [("deleted", 0, None)],
            "{engine:?}: whole ticket"
        );
        assert!(
            r.problems.iter().any(|p| p.stream.is_nil()
                && p.kind.as_str() == "uncounted"
                && p.detail.contains("3 events where the appends counted 6")),
            "{engine:?}: {:?}",
            r.problems
        );
        if engine == Engine::Sqlite {
            // SQLite's positions are dense: the hole is named.
            assert!(
                r.problems
                    .iter()
                    .any(|p| p.kind.as_str() == "reordered" && p.position == Some(pos[0])),
                "{engine:?}: {:?}",
                r.problems
            );
        }
        only(&r, &[t], "whole ticket");
        app.finish().await;

        // An event forged at the head, its hash fitting the chain.
        let app = TestApp::spawn(engine).await;
        let (t, _clean) = (ticket(&app).await, ticket(&app).await);
        let pool = app.app.store.pool();
        let head = app.app.store.read_stream(t).await.expect("read");
        let prev = head.last().expect("events");
        let data = json!({"text": "已办结（伪造）"});
        let at = yiwang::store::truncate_micros(chrono::Utc::now());
        let hash = yiwang::store::hash::event_hash(
            &prev.hash,
            t,
            4,
            "TicketCommented",
            1,
            &data,
            &prev.metadata,
            at,
            at,
        );
        let time = yiwang::store::hash::rfc3339(at);
        let position = match engine {
            Engine::Sqlite => "NULL".to_string(),
            Engine::Postgres => "(SELECT MAX(position) + 1 FROM events)".to_string(),
        };
        exec(
            &pool,
            &format!(
                "INSERT INTO events (position, stream_id, version, event_type, schema_version, data, metadata, \
                 occurred_at, recorded_at, prev_hash, hash) VALUES ({position}, '{t}', 4, 'TicketCommented', 1, \
                 '{data}', '{}', '{time}', '{time}', '{}', '{hash}')",
                prev.metadata, prev.hash
            ),
        )
        .await;
        let forged = *positions(&pool, t).await.last().expect("forged");
        // Finding 7: before any verification, a command on it is told what is wrong
        // rather than "changing too fast" for ever.
        let district = app.token(Role::Dispatcher, "etdz").await;
        let c = app
            .post(
                &format!("/api/v1/tickets/{t}/comment"),
                &district,
                json!({"text": "还在吗"}),
            )
            .await;
        assert_eq!(c.status, 409, "{engine:?}: {}", c.body);
        assert_eq!(
            c.body["code"], "integrity.tampered",
            "{engine:?}: {}",
            c.body
        );
        let r = report(&app).await;
        assert_eq!(
            of(&r, t),
            [("inserted", 4, Some(forged))],
            "{engine:?}: forged"
        );
        assert!(
            r.problems
                .iter()
                .any(|p| p.stream.is_nil() && p.kind.as_str() == "uncounted"),
            "{engine:?}: {:?}",
            r.problems
        );
        only(&r, &[t], "forged");

        // SQLite: REPLACE over a stored event is refused now (the guard is on
        // again in a fresh database), and the log stays clean.
        if engine == Engine::Sqlite {
            let app2 = TestApp::spawn(engine).await;
            let t2 = ticket(&app2).await;
            let pool2 = app2.app.store.pool();
            let first = app2.app.store.read_stream(t2).await.expect("read")[0].clone();
            let Pool::Sqlite(p) = &pool2 else {
                unreachable!()
            };
            let e = sqlx::query(
                "REPLACE INTO events (position, stream_id, version, event_type, schema_version, data, \
                 metadata, occurred_at, recorded_at, prev_hash, hash) \
                 SELECT position, stream_id, version, event_type, schema_version, '{\"forged\":true}', \
                 metadata, occurred_at, recorded_at, prev_hash, hash FROM events WHERE position = ?",
            )
            .bind(first.position)
            .execute(p)
            .await
            .expect_err("REPLACE is refused");
            assert!(e.to_string().contains("append-only"), "{e}");
            assert!(report(&app2).await.ok());
            app2.finish().await;
        }
        app.finish().await;
    }
}

async fn readyz(app: &TestApp) -> serde_json::Value {
    app.client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json")
}

/// A running service verifies in the background; once a round has found a ticket
/// tampered with, `/readyz` says degraded (still 200) with the count, commands and
/// reads on that ticket are refused with 409 `integrity.tampered`, and the other
/// tickets keep working. Every round appends its anchor to the anchor file.
#[tokio::test]
async fn a_tampered_ticket_is_frozen_and_the_service_says_degraded() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let (t, other) = (ticket(&app).await, ticket(&app).await);
        let dir = tempfile::tempdir().expect("dir");
        let anchors = dir.path().join("anchors.ndjson");
        yiwang::verify::spawn(
            app.app.store.pool(),
            app.app.metrics.clone(),
            app.app.integrity.clone(),
            std::time::Duration::from_millis(200),
            Some(anchors.clone()),
        );
        let ready = readyz(&app).await;
        assert_eq!(ready["integrity"]["findings"], 0, "{engine:?}: {ready}");

        // Finding 5: the view edited so that another unit leads the ticket.
        let pool = app.app.store.pool();
        let edit = match engine {
            Engine::Sqlite => format!(
                "UPDATE ticket_view SET unit = 'scjg', doc = json_set(doc, '$.unit', 'scjg') WHERE id = '{t}'"
            ),
            Engine::Postgres => format!(
                "UPDATE ticket_view SET unit = 'scjg', \
                 doc = jsonb_set(doc::jsonb, '{{unit}}', '\"scjg\"')::text WHERE id = '{t}'"
            ),
        };
        exec(&pool, &edit).await;
        let started = std::time::Instant::now();
        let ready = loop {
            let r = readyz(&app).await;
            if r["status"] == "degraded" {
                break r;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "{engine:?}: no verification round found it: {r}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert_eq!(ready["integrity"]["findings"], 1, "{engine:?}: {ready}");
        assert_eq!(ready["database"], "ok");

        let district = app.token(Role::Dispatcher, "etdz").await;
        let foreign = app.token(Role::Handler, "scjg").await;
        let lead = app.token(Role::Handler, "zhzf").await;
        let frozen = |r: &support::Resp, what: &str| {
            assert_eq!(r.status, 409, "{engine:?}: {what}: {}", r.body);
            assert_eq!(r.body["code"], "integrity.tampered", "{engine:?}: {what}");
            let detail = r.body["detail"].as_str().unwrap_or("");
            assert!(
                detail.contains("yiwang verify") && detail.contains(&t.to_string()),
                "{engine:?}: {what}: an operator can act on it: {detail}"
            );
        };
        let r = app
            .post(
                &format!("/api/v1/tickets/{t}/comment"),
                &district,
                json!({"text": "再催一次"}),
            )
            .await;
        frozen(&r, "a command");
        // The foreign unit the edited view names sees nothing: whether it may see
        // a frozen ticket is judged on the fold of its events, and to a unit
        // outside it a ticket is not found (its existence does not leak).
        let r = app.get(&format!("/api/v1/tickets/{t}"), &foreign).await;
        assert_eq!(
            r.status, 404,
            "{engine:?}: the foreign unit's read: {}",
            r.body
        );
        assert_eq!(r.body["detail"], json!(format!("no ticket {t}")));
        frozen(
            &app.get(&format!("/api/v1/tickets/{t}"), &lead).await,
            "the lead's read",
        );
        frozen(
            &app.get(&format!("/api/v1/tickets/{t}/events"), &district)
                .await,
            "its events",
        );

        // The other ticket is served as before.
        let r = app
            .post(
                &format!("/api/v1/tickets/{other}/comment"),
                &district,
                json!({"text": "照常办理"}),
            )
            .await;
        assert_eq!(r.status, 200, "{engine:?}: {}", r.body);
        let r = app.get(&format!("/api/v1/tickets/{other}"), &lead).await;
        assert_eq!(r.status, 200, "{engine:?}: {}", r.body);
        // The queue leaves the frozen ticket out and lists the other.
        let r = app.get("/api/v1/tickets", &district).await;
        assert_eq!(r.status, 200, "{engine:?}: {}", r.body);
        let ids: Vec<&str> = r.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["id"].as_str())
            .collect();
        assert!(
            ids.contains(&other.to_string().as_str()) && !ids.contains(&t.to_string().as_str()),
            "{engine:?}: {ids:?}"
        );
        assert_eq!(metric(&app, "yiwang_verify_problems").await, 1.0);

        // Every round appended its anchor.
        let kept = yiwang::verify::Anchor::last_in(&anchors).expect("an anchor");
        assert!(kept.position >= 0 && !kept.heads.is_empty(), "{kept:?}");
        app.finish().await;
    }
}

/// `yiwang verify --anchor FILE` holds the database to an anchor kept outside it:
/// it passes on the untouched log (and after more appends), and fails when a whole
/// ticket was deleted, even by someone who also rewrote the tally and removed the
/// stored answers so that the database agrees with itself again.
#[tokio::test]
async fn an_anchor_kept_outside_catches_a_deleted_ticket_the_database_no_longer_shows() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let (t, _clean) = (ticket(&app).await, ticket(&app).await);
        // On PostgreSQL the horizon waits for every older transaction of the
        // cluster (other tests run alongside): take the anchor once it covers all.
        let started = std::time::Instant::now();
        let anchor = loop {
            let r = report(&app).await;
            let a = r.anchor.expect("an anchor");
            if a.events == 6 {
                break a;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "{a:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert_eq!(anchor.streams, 2);
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("anchors.ndjson");
        anchor.append_to(&file).expect("write");
        let path = file.display().to_string();
        let r = yiwang(&app.db.url, &["verify", "--anchor", &path]).await;
        assert!(r.ok, "{engine:?}: {r:?}");
        assert!(r.stdout.contains("match the anchor kept"), "{r:?}");
        ticket(&app).await;
        let r = yiwang(&app.db.url, &["verify", "--anchor", &path]).await;
        assert!(
            r.ok,
            "{engine:?}: appends after the anchor change nothing: {r:?}"
        );

        // The whole ticket gone, and the traces in the database made to agree.
        let pool = app.app.store.pool();
        unguard(engine, &pool).await;
        exec(
            &pool,
            &format!(
                "DELETE FROM events WHERE stream_id = '{t}'; DELETE FROM ticket_view WHERE id = '{t}'; \
                 DELETE FROM idempotency_keys WHERE stream_id = '{t}'"
            ),
        )
        .await;
        let rows: Vec<(i64, String, i64)> = match &pool {
            Pool::Postgres(p) => {
                sqlx::query_as("SELECT position, stream_id::text, version FROM events")
                    .fetch_all(p)
                    .await
            }
            Pool::Sqlite(p) => {
                sqlx::query_as("SELECT position, stream_id, version FROM events")
                    .fetch_all(p)
                    .await
            }
        }
        .expect("rows");
        let mut tally = yiwang::store::hash::Tally::default();
        for (p, s, v) in &rows {
            tally.add(*p, s, *v);
        }
        let max = rows.iter().map(|r| r.0).max().unwrap_or(0);
        exec(
            &pool,
            &format!(
                "DELETE FROM log_tally; INSERT INTO log_tally (slot, events, streams, digest, dense_after) \
                 VALUES (0, {}, {}, {}, {max})",
                tally.events, tally.streams, tally.digest
            ),
        )
        .await;
        let r = verify(&app.db.url).await;
        assert!(r.ok, "{engine:?}: the database agrees with itself: {r:?}");
        let r = yiwang(&app.db.url, &["verify", "--anchor", &path]).await;
        assert!(!r.ok, "{engine:?}: {r:?}");
        let line = r
            .stdout
            .lines()
            .find(|l| l.starts_with("anchor log position "))
            .unwrap_or_else(|| panic!("{engine:?}: the anchor is named: {r:?}"));
        assert!(
            line.contains("events 6 then, 3 now") && line.contains("streams 2 then, 1 now"),
            "{engine:?}: {line}"
        );
        app.finish().await;
    }
}
