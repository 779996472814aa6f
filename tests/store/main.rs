//! The event store contract, one suite for both engines.

#[path = "../support/mod.rs"]
mod support;
mod tls;

use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;
use yiwang::store::{
    self, AppendRequest, IdempotencyRecord, Metadata, NewEvent, Store, StoreError, hash,
};

use support::{Engine, TestDb, engines};

fn ev(n: i64) -> NewEvent {
    NewEvent {
        event_type: "TicketCommented".into(),
        schema_version: 1,
        data: json!({"text": format!("event {n}"), "nested": {"b": 1, "a": [1.5, "二"]}}),
        occurred_at: Utc::now(),
    }
}

fn req(stream: Uuid, expected: i64, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest {
        stream_id: stream,
        expected_version: expected,
        prev_hash: None,
        events,
        metadata: Metadata {
            actor: "tester".into(),
            role: "admin".into(),
            unit: Some("etdz".into()),
            correlation_id: Uuid::now_v7(),
            ..Default::default()
        },
        idempotency: None,
        views: Vec::new(),
    }
}

async fn open(engine: Engine) -> (TestDb, Store) {
    let db = TestDb::new(engine).await;
    let s = store::open(&db.url, true).await.expect("open store");
    (db, s)
}

#[tokio::test]
async fn appends_read_back_in_order_with_a_valid_hash_chain() {
    for engine in engines().await {
        let (db, s) = open(engine).await;
        let a = Uuid::now_v7();
        let r1 = s.append(req(a, 0, vec![ev(1), ev(2)])).await.unwrap();
        assert_eq!(r1.version, 2);
        let r2 = s.append(req(a, 2, vec![ev(3)])).await.unwrap();
        assert!(r2.first_position > r1.last_position);
        let evs = s.read_stream(a).await.unwrap();
        assert_eq!(evs.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(evs[0].prev_hash, hash::GENESIS);
        for w in evs.windows(2) {
            assert_eq!(
                w[1].prev_hash, w[0].hash,
                "each event chains to the previous"
            );
        }
        for e in &evs {
            assert_eq!(
                hash::recompute(e),
                e.hash,
                "{engine:?}: the stored hash covers what was read back"
            );
        }
        assert_eq!(evs[1].data["nested"]["a"][1], "二");
        assert_eq!(evs[0].metadata["actor"], "tester");
        assert!(s.read_stream(Uuid::now_v7()).await.unwrap().is_empty());
        db.drop_db().await;
    }
}

#[tokio::test]
async fn a_stale_expected_version_is_a_conflict_and_writes_nothing() {
    for engine in engines().await {
        let (db, s) = open(engine).await;
        let a = Uuid::now_v7();
        s.append(req(a, 0, vec![ev(1)])).await.unwrap();
        for stale in [0, 2, 5] {
            match s.append(req(a, stale, vec![ev(9)])).await {
                Err(StoreError::Conflict {
                    expected, actual, ..
                }) => {
                    assert_eq!((expected, actual), (stale, 1));
                }
                other => panic!("{engine:?}: expected a conflict, got {other:?}"),
            }
        }
        // The right version with the wrong previous hash is refused too.
        let mut r = req(a, 1, vec![ev(9)]);
        r.prev_hash = Some(hash::GENESIS.to_string());
        assert!(
            matches!(s.append(r).await, Err(StoreError::Conflict { .. })),
            "{engine:?}"
        );
        assert_eq!(s.read_stream(a).await.unwrap().len(), 1);
        let mut r = req(a, 1, vec![ev(10)]);
        r.prev_hash = Some(s.read_stream(a).await.unwrap()[0].hash.clone());
        assert_eq!(
            s.append(r).await.unwrap().version,
            2,
            "{engine:?}: the right head is accepted"
        );
        db.drop_db().await;
    }
}

#[tokio::test]
async fn concurrent_appends_at_one_version_let_exactly_one_through() {
    for engine in engines().await {
        let (db, s) = open(engine).await;
        let a = Uuid::now_v7();
        s.append(req(a, 0, vec![ev(0)])).await.unwrap();
        let mut tasks = vec![];
        for i in 0..16 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.append(req(a, 1, vec![ev(i)])).await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => panic!("{engine:?}: unexpected {e}"),
            }
        }
        assert_eq!(ok, 1);
        assert_eq!(s.read_stream(a).await.unwrap().len(), 2);
        db.drop_db().await;
    }
}

#[tokio::test]
async fn a_reused_idempotency_key_rolls_back_the_whole_append() {
    for engine in engines().await {
        let (db, s) = open(engine).await;
        let key = |stream| IdempotencyRecord {
            scope: "u".into(),
            key: "k".into(),
            request_hash: "h".into(),
            status: 201,
            body: Some("{}".into()),
            stream_id: stream,
            version: Some(1),
        };
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut r = req(a, 0, vec![ev(1)]);
        r.idempotency = Some(key(a));
        s.append(r).await.unwrap();
        let mut r = req(b, 0, vec![ev(2)]);
        r.idempotency = Some(key(b));
        assert!(matches!(s.append(r).await, Err(StoreError::DuplicateKey)));
        assert!(
            s.read_stream(b).await.unwrap().is_empty(),
            "nothing of the refused append remains"
        );
        let rec = s.find_idempotency("u", "k").await.unwrap().unwrap();
        assert_eq!((rec.stream_id, rec.status), (a, 201));
        assert_eq!((rec.body.as_deref(), rec.version), (Some("{}"), Some(1)));
        db.drop_db().await;
    }
}

/// A request whose key is already stored is refused alone: the requests batched
/// with it on PostgreSQL go in with the same statement, not one by one after it
/// aborted (a replay holding up every command behind it).
#[tokio::test]
async fn a_stored_key_in_a_batch_refuses_only_its_own_request() {
    for engine in engines().await {
        let (db, s) = open(engine).await;
        let key = |k: &str, stream| IdempotencyRecord {
            scope: "u".into(),
            key: k.into(),
            request_hash: "h".into(),
            status: 201,
            body: None,
            stream_id: stream,
            version: Some(1),
        };
        let first = Uuid::now_v7();
        let mut r = req(first, 0, vec![ev(1)]);
        r.idempotency = Some(key("stored", first));
        s.append(r).await.unwrap();
        let s = Arc::new(s);
        let before = store::statements_retried_one_by_one();
        let dup = Uuid::now_v7();
        let mut tasks = Vec::new();
        for i in 0..40 {
            let stream = if i == 20 { dup } else { Uuid::now_v7() };
            let mut r = req(stream, 0, vec![ev(i)]);
            let k = if i == 20 {
                "stored".to_string()
            } else {
                format!("k{i}")
            };
            r.idempotency = Some(key(&k, stream));
            let s = s.clone();
            tasks.push(tokio::spawn(async move { (stream, s.append(r).await) }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                (_, Ok(_)) => ok += 1,
                (stream, Err(StoreError::DuplicateKey)) => assert_eq!(stream, dup),
                (_, Err(e)) => panic!("{engine:?}: unexpected {e}"),
            }
        }
        assert_eq!(ok, 39, "{engine:?}: every other request went in");
        assert!(s.read_stream(dup).await.unwrap().is_empty());
        let rec = s.find_idempotency("u", "stored").await.unwrap().unwrap();
        assert_eq!(
            rec.stream_id, first,
            "the stored key still names the first stream"
        );
        assert_eq!((rec.body, rec.version), (None, Some(1)), "{engine:?}");
        if engine == Engine::Postgres {
            assert_eq!(
                store::statements_retried_one_by_one(),
                before,
                "no statement was written again one by one"
            );
        }
        db.drop_db().await;
    }
}

/// The view handlers an append carries write in its transaction: the ticket view
/// gets the hash of the stream's new head, and a view that is refused (a ticket
/// number already taken) takes the request's events with it, alone in its batch.
#[tokio::test]
async fn view_handlers_write_with_their_events_or_not_at_all() {
    use yiwang::repo::contacts::{self, Contact};
    use yiwang::repo::tickets::{self, NUMBER_TAKEN, TicketViewRow};
    let row = |id: Uuid, number: &str, version: i64| TicketViewRow {
        id,
        number: number.into(),
        state: "ACCEPTED".into(),
        unit: Some("etdz".into()),
        centre: "etdz".into(),
        category: "roads".into(),
        grid: None,
        co_units: vec!["hg".into()],
        version,
        created_at: store::truncate_micros(Utc::now()),
        updated_at: store::truncate_micros(Utc::now()),
        due_at: None,
        doc: "{}".into(),
        head_hash: String::new(),
    };
    for engine in engines().await {
        let (db, s) = open(engine).await;
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let contact = Contact {
            id: Uuid::now_v7(),
            name: Some("王".into()),
            phone: None,
        };
        let mut first = req(a, 0, vec![ev(1), ev(2)]);
        first.views = vec![Arc::new(contact.clone()), Arc::new(row(a, "N-1", 2))];
        let mut other = req(c, 0, vec![ev(1)]);
        other.views = vec![Arc::new(row(c, "N-2", 1))];
        let (r1, r2) = tokio::join!(s.append(first), s.append(other));
        let (r1, r2) = (r1.unwrap(), r2.unwrap());
        let pool = s.pool();
        let view = tickets::ticket_view(&pool, a).await.unwrap().expect("view");
        assert_eq!(view.head_hash, r1.head_hash, "{engine:?}");
        assert_eq!(
            (view.version, view.co_units.clone()),
            (2, vec!["hg".to_string()])
        );
        let view = tickets::ticket_view(&pool, c).await.unwrap().expect("view");
        assert_eq!(view.head_hash, r2.head_hash, "{engine:?}");
        assert_eq!(
            contacts::contact(&pool, contact.id).await.unwrap(),
            Some(contact),
            "{engine:?}"
        );
        // Another stream's view with a number already taken: refused, and its
        // events are not written either.
        let mut clash = req(b, 0, vec![ev(3)]);
        clash.views = vec![Arc::new(row(b, "N-1", 1))];
        match s.append(clash).await {
            Err(StoreError::Refused(why)) => assert_eq!(why, NUMBER_TAKEN, "{engine:?}"),
            other => panic!("{engine:?}: {other:?}"),
        }
        assert!(s.read_stream(b).await.unwrap().is_empty(), "{engine:?}");
        assert!(tickets::ticket_view(&pool, b).await.unwrap().is_none());
        db.drop_db().await;
    }
}

#[tokio::test]
async fn events_cannot_be_updated_or_deleted() {
    for engine in engines().await {
        let (db, s) = open(engine).await;
        s.append(req(Uuid::now_v7(), 0, vec![ev(1)])).await.unwrap();
        let (upd, del) = match s.pool() {
            store::Pool::Postgres(p) => (
                sqlx::query("UPDATE events SET event_type = 'X'")
                    .execute(&p)
                    .await
                    .is_err(),
                sqlx::query("DELETE FROM events").execute(&p).await.is_err(),
            ),
            store::Pool::Sqlite(p) => (
                sqlx::query("UPDATE events SET event_type = 'X'")
                    .execute(&p)
                    .await
                    .is_err(),
                sqlx::query("DELETE FROM events").execute(&p).await.is_err(),
            ),
        };
        assert!(upd && del, "{engine:?}: the log is append-only");
        db.drop_db().await;
    }
}

/// Writers on many streams and a reader following positions concurrently: the reader
/// sees every event exactly once, in increasing position order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_following_positions_under_concurrent_appends_never_skips() {
    for engine in engines().await {
        let (db, s) = open(engine).await;
        const WRITERS: usize = 8;
        const EACH: usize = 40;
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut writers = vec![];
        for w in 0..WRITERS {
            let (s, done) = (s.clone(), done.clone());
            writers.push(tokio::spawn(async move {
                for i in 0..EACH {
                    s.append(req(Uuid::now_v7(), 0, vec![ev((w * EACH + i) as i64)]))
                        .await
                        .unwrap();
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }));
        }
        let mut seen = vec![];
        let mut after = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while seen.len() < WRITERS * EACH {
            assert!(
                std::time::Instant::now() < deadline,
                "reader stalled at {}",
                seen.len()
            );
            let batch = s.read_all(after, 7).await.unwrap();
            for e in &batch {
                assert!(e.position > after, "positions only increase");
                after = e.position;
                seen.push(e.position);
            }
            if batch.is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        }
        for w in writers {
            w.await.unwrap();
        }
        let all: Vec<i64> = s
            .read_all(0, 100_000)
            .await
            .unwrap()
            .iter()
            .map(|e| e.position)
            .collect();
        assert_eq!(seen, all, "{engine:?}: the follower saw exactly the log");
        db.drop_db().await;
    }
}

/// Group commit under bursts (the writers batch and pipeline them, and wait a
/// little for more once they have measured a batch): every request is answered,
/// each only once its transaction has committed (what an answer says is already
/// readable elsewhere), a conflict and a reused key are answered per request while
/// the requests beside them go through, and the log holds exactly the answered
/// appends, in position order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bursts_are_answered_per_request_and_only_after_their_commit() {
    #[derive(Debug)]
    enum Seen {
        Written(Uuid, store::Appended),
        Conflict(Uuid),
        Duplicate,
    }
    for engine in engines().await {
        let (db, s) = open(engine).await;
        let key = |k: String, stream| IdempotencyRecord {
            scope: "burst".into(),
            key: k,
            request_hash: "h".into(),
            status: 201,
            body: None,
            stream_id: stream,
            version: Some(2),
        };
        let mut seen = Vec::new();
        // Waves, so that the later ones meet a writer that has measured its batches.
        for wave in 0..4 {
            let mut tasks = Vec::new();
            let mut push = |stream: Uuid, r: AppendRequest| {
                let s = s.clone();
                tasks.push(tokio::spawn(async move {
                    match s.append(r).await {
                        Ok(a) => {
                            // Answered: committed, so another connection reads it.
                            let evs = s.read_stream(stream).await.unwrap();
                            assert_eq!(
                                evs.last().map(|e| (e.version, e.hash.clone(), e.position)),
                                Some((a.version, a.head_hash.clone(), a.last_position)),
                                "an append is answered only once it can be read"
                            );
                            Seen::Written(stream, a)
                        }
                        Err(StoreError::Conflict {
                            expected, actual, ..
                        }) => {
                            assert_eq!(expected, 0);
                            assert!(actual > 0, "the stream's head had moved: {actual}");
                            assert_eq!(
                                s.read_stream(stream).await.unwrap().len(),
                                2,
                                "a conflict is answered once the append it lost to committed"
                            );
                            Seen::Conflict(stream)
                        }
                        Err(StoreError::DuplicateKey) => {
                            assert!(
                                s.read_stream(stream).await.unwrap().is_empty(),
                                "a refused append writes nothing"
                            );
                            Seen::Duplicate
                        }
                        Err(e) => panic!("unexpected {e}"),
                    }
                }));
            };
            // 20 streams fought over by three requests each; 60 streams of their own,
            // each with an idempotency key; one request reusing a key of the wave
            // before (refused alone).
            for _ in 0..20 {
                let stream = Uuid::now_v7();
                for i in 0..3 {
                    push(stream, req(stream, 0, vec![ev(i), ev(i + 1)]));
                }
            }
            for i in 0..60 {
                let stream = Uuid::now_v7();
                let mut r = req(stream, 0, vec![ev(i), ev(i + 1)]);
                r.idempotency = Some(key(format!("{wave}-{i}"), stream));
                push(stream, r);
            }
            if wave > 0 {
                let stream = Uuid::now_v7();
                let mut r = req(stream, 0, vec![ev(0), ev(1)]);
                r.idempotency = Some(key(format!("{}-7", wave - 1), stream));
                push(stream, r);
            }
            for t in tasks {
                seen.push(t.await.unwrap());
            }
        }
        let mut by_stream: std::collections::HashMap<Uuid, (usize, usize)> = Default::default();
        let mut written = Vec::new();
        for s in &seen {
            match s {
                Seen::Written(stream, a) => {
                    by_stream.entry(*stream).or_default().0 += 1;
                    written.push((a.first_position, a.last_position, *stream));
                }
                Seen::Conflict(stream) => by_stream.entry(*stream).or_default().1 += 1,
                Seen::Duplicate => {}
            }
        }
        assert_eq!(
            seen.iter().filter(|s| matches!(s, Seen::Duplicate)).count(),
            3,
            "{engine:?}: each reused key is refused"
        );
        assert!(
            by_stream.values().all(|&(ok, _)| ok == 1),
            "{engine:?}: one append per stream goes in"
        );
        assert_eq!(
            by_stream.values().filter(|&&(_, lost)| lost == 2).count(),
            4 * 20,
            "{engine:?}: the two others of each fought-over stream are conflicts"
        );
        assert_eq!(written.len(), 4 * 80, "{engine:?}");
        // The log holds exactly the answered appends, in position order.
        written.sort();
        // (PostgreSQL's feed waits for every older transaction of the cluster,
        // other tests' included.)
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let log = loop {
            let log = s.read_all(0, 100_000).await.unwrap();
            if log.len() >= 2 * written.len() || std::time::Instant::now() > deadline {
                break log;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(log.len(), 2 * written.len(), "{engine:?}");
        for (pair, (first, last, stream)) in log.chunks(2).zip(&written) {
            assert_eq!(
                (
                    pair[0].position,
                    pair[1].position,
                    pair[0].stream_id,
                    pair[1].version
                ),
                (*first, *last, *stream, 2),
                "{engine:?}"
            );
        }
        db.drop_db().await;
    }
}

/// The first position an append in this (open) transaction would take.
async fn position_of_open_transaction(c: &mut sqlx::PgConnection) -> i64 {
    let xid: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
        .fetch_one(c)
        .await
        .unwrap();
    xid.parse::<i64>().unwrap() << 10
}

/// Inserts an event row at a position taken by hand, as the store does.
async fn insert_raw(c: &mut sqlx::PgConnection, position: i64, stream: Uuid) {
    sqlx::query(
        "INSERT INTO events (position, stream_id, version, event_type, schema_version, data, metadata, \
         occurred_at, recorded_at, prev_hash, hash) VALUES ($1, $2, 1, 'TicketCommented', 1, '{}', '{}', \
         now(), now(), $3, 'x')",
    )
    .bind(position)
    .bind(stream)
    .bind(hash::GENESIS)
    .execute(c)
    .await
    .unwrap();
}

/// The PostgreSQL sequence-gap hazard, made to happen: one append holds a position
/// uncommitted while a later position commits. The feed must not pass the open one.
/// A reader that simply follows the sequence returns the later event here and, with
/// its checkpoint moved past, never sees the earlier one.
#[tokio::test]
async fn the_feed_never_passes_a_position_that_may_still_commit() {
    if !engines().await.contains(&Engine::Postgres) {
        return;
    }
    let (db, s) = open(Engine::Postgres).await;
    let base = s
        .append(req(Uuid::now_v7(), 0, vec![ev(0)]))
        .await
        .unwrap()
        .last_position;

    for insert_before_commit in [true, false] {
        // T1: the store's own protocol, stopped before COMMIT: the transaction's xid
        // names its position; then (or not yet) the row.
        let mut t1 = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut t1).await.unwrap();
        let p1 = position_of_open_transaction(&mut t1).await;
        let stream1 = Uuid::now_v7();
        if insert_before_commit {
            insert_raw(&mut t1, p1, stream1).await;
        }

        // T2 commits a later position through the store.
        let r2 = s.append(req(Uuid::now_v7(), 0, vec![ev(2)])).await.unwrap();
        assert!(r2.first_position > p1);

        // The hazard is real: the plain sequence-following query sees p2 already.
        let naive: Vec<i64> = match s.pool() {
            store::Pool::Postgres(p) => sqlx::query_scalar(
                "SELECT position FROM events WHERE position > $1 ORDER BY position",
            )
            .bind(base)
            .fetch_all(&p)
            .await
            .unwrap(),
            _ => unreachable!(),
        };
        assert!(naive.contains(&r2.first_position) && !naive.contains(&p1));

        // The store's feed does not pass p1 while T1 is open.
        let feed: Vec<i64> = s
            .read_all(base, 100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.position)
            .collect();
        assert!(
            feed.iter().all(|p| *p < p1),
            "the feed returned {feed:?} while position {p1} may still commit"
        );

        if !insert_before_commit {
            insert_raw(&mut t1, p1, stream1).await;
        }
        sqlx::query("COMMIT").execute(&mut t1).await.unwrap();

        // Now both arrive, in order.
        let mut feed = vec![];
        for _ in 0..100 {
            feed = s
                .read_all(base, 100)
                .await
                .unwrap()
                .iter()
                .map(|e| e.position)
                .collect();
            if feed.contains(&r2.first_position) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let i1 = feed.iter().position(|p| *p == p1).expect("p1 arrives");
        let i2 = feed
            .iter()
            .position(|p| *p == r2.first_position)
            .expect("p2 arrives");
        assert!(i1 < i2);
    }

    // A rolled-back position leaves a gap that the feed steps over once settled.
    let mut t3 = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut t3).await.unwrap();
    let gap = position_of_open_transaction(&mut t3).await;
    let r4 = s.append(req(Uuid::now_v7(), 0, vec![ev(4)])).await.unwrap();
    sqlx::query("ROLLBACK").execute(&mut t3).await.unwrap();
    let mut got = vec![];
    for _ in 0..100 {
        got = s
            .read_all(gap - 1, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.position)
            .collect();
        if got.contains(&r4.first_position) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(got.contains(&r4.first_position) && !got.contains(&gap));
    db.drop_db().await;
}

/// The append statement is prepared once per connection and PostgreSQL keeps its
/// generic plan, often made while the tables are young. That plan must reach the
/// idempotency keys and the stream heads through their indexes only: a sequential
/// scan frozen into it would read every stored key on every later command. Planned
/// here on a table of 800 keys that has never been analysed, as in a new
/// deployment's first minutes (an earlier form of the statement got a hash join
/// over a sequential scan of the keys exactly so).
#[tokio::test]
async fn a_generic_plan_of_the_append_scans_no_table() {
    for engine in engines().await {
        if engine != Engine::Postgres {
            continue;
        }
        let (db, s) = open(engine).await;
        // A few streams and 800 keys, no ANALYZE.
        for i in 0..5 {
            s.append(req(Uuid::now_v7(), 0, vec![ev(i)])).await.unwrap();
        }
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status, body, stream_id) \
             SELECT 'u', 'k' || g, 'h', 200, repeat('x', 100), gen_random_uuid() \
             FROM generate_series(1, 800) g",
        )
        .execute(&mut c)
        .await
        .unwrap();
        sqlx::raw_sql("SET plan_cache_mode = force_generic_plan")
            .execute(&mut c)
            .await
            .unwrap();
        // The statement of a batch that writes a ticket view and a contact (the
        // parts in the order of their names, as the store puts them).
        let (statement, params) = store::append_statement(&[
            &yiwang::repo::contacts::CONTACT_PART,
            &yiwang::repo::tickets::VIEW_PART,
        ]);
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PREPARE app AS {statement}")))
            .execute(&mut c)
            .await
            .unwrap();
        let nulls = vec!["NULL"; params].join(", ");
        let plan: Vec<(String,)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN EXECUTE app({nulls})")))
                .fetch_all(&mut c)
                .await
                .unwrap();
        let plan: Vec<String> = plan.into_iter().map(|(l,)| l).collect();
        assert!(
            plan.iter().any(|l| l.contains("idempotency_keys")),
            "the plan was read: {plan:#?}"
        );
        for table in [
            "idempotency_keys",
            "events",
            "log_tally",
            "ticket_view",
            "contacts",
        ] {
            assert!(
                !plan
                    .iter()
                    .any(|l| l.contains(&format!("Seq Scan on {table}"))),
                "a sequential scan of {table} in the append's generic plan:\n{}",
                plan.join("\n")
            );
        }
        db.drop_db().await;
    }
}

/// The view's trigger that copies the filter columns onto the search rows
/// (schema 0017) runs one UPDATE joined to the batch's rows, which PL/pgSQL plans
/// once per connection and keeps. Planned on a young table it was a hash join over
/// a sequential scan of ticket_search, and every later batch of that connection
/// read every search row (migration 0019). Here the plan is made on 3 tickets,
/// the table then grows to 5,000, and a batch of 7 state changes on the same
/// connection must reach their search rows through the primary key alone.
#[tokio::test]
async fn the_search_filter_trigger_reads_search_rows_by_key_only() {
    for engine in engines().await {
        if engine != Engine::Postgres {
            continue;
        }
        let (db, _s) = open(engine).await;
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let tickets = |prefix: &str, n: i64| {
            format!(
                "WITH v AS (INSERT INTO ticket_view (id, number, state, unit, centre, category, grid, version, \
                 created_at, updated_at, doc, head_hash) \
                 SELECT gen_random_uuid(), '{prefix}' || g, 'accepted', NULL, 'etdz', 'c', NULL, 1, now(), now(), \
                 '{{}}', 'h' FROM generate_series(1, {n}) g RETURNING id, state, centre, category) \
                 INSERT INTO ticket_search (id, search, grams, created_at, state, centre, category) \
                 SELECT id, 'x', '{{}}', now(), state, centre, category FROM v"
            )
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(tickets("A", 3)))
            .execute(&mut c)
            .await
            .unwrap();
        // Plans the trigger's UPDATE in this connection, on a table of 3 rows.
        sqlx::raw_sql("UPDATE ticket_view SET state = 'assigned', unit = 'hg', version = 2")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(tickets("B", 5000)))
            .execute(&mut c)
            .await
            .unwrap();
        let mut tx = c.begin().await.unwrap();
        sqlx::raw_sql(
            "UPDATE ticket_view SET state = 'assigned', unit = 'hg', version = 2 \
             WHERE number IN ('B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7')",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        let (seq, idx): (i64, i64) = sqlx::query_as(
            "SELECT seq_scan, COALESCE(idx_scan, 0) FROM pg_stat_xact_user_tables WHERE relname = 'ticket_search'",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        let (copied,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM ticket_search WHERE unit = 'hg' AND state = 'assigned'",
        )
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert_eq!(
            copied, 10,
            "the 3 and the 7 tickets' search rows follow the view"
        );
        assert_eq!(seq, 0, "sequential scans of ticket_search in the batch");
        assert!(idx >= 1, "the search rows were reached by the index: {idx}");
        tx.rollback().await.unwrap();
        db.drop_db().await;
    }
}

/// SQLite's append-only guard holds against `INSERT OR REPLACE` (its implicit
/// delete fires the no-delete trigger: every connection of the store turns
/// recursive triggers on) and against an event put in at a version that is not its
/// stream's head + 1, on a connection opened as the store opens its own.
#[tokio::test]
async fn sqlite_refuses_a_replaced_event_and_an_event_off_the_head() {
    let (db, s) = open(Engine::Sqlite).await;
    let a = Uuid::now_v7();
    s.append(req(a, 0, vec![ev(1), ev(2)])).await.unwrap();
    let opts = store::sqlite::connect_options(&db.url).unwrap();
    let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
    let first = s.read_stream(a).await.unwrap()[0].clone();
    let insert = |verb: &str, position: Option<i64>, version: i64| {
        format!(
            "{verb} INTO events (position, stream_id, version, event_type, schema_version, data, metadata, \
             occurred_at, recorded_at, prev_hash, hash) VALUES ({}, '{a}', {version}, 'TicketCommented', 1, \
             '{{\"text\":\"forged\"}}', '{{}}', '{}', '{}', '{}', '{}')",
            position.map_or("NULL".to_string(), |p| p.to_string()),
            hash::rfc3339(first.occurred_at),
            hash::rfc3339(first.recorded_at),
            first.prev_hash,
            first.hash
        )
    };
    // Over the stored first event, by its position and by its (stream, version).
    for sql in [
        insert("INSERT OR REPLACE", Some(first.position), 1),
        insert("REPLACE", None, 1),
        insert("INSERT OR REPLACE", Some(first.position), 3),
    ] {
        let e = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .execute(&mut c)
            .await
            .expect_err(&sql);
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    // Below the head, past a gap, and at a new stream's version 2.
    for (stream, version) in [(a, 2), (a, 4), (Uuid::now_v7(), 2)] {
        let sql = insert("INSERT", None, version).replace(&a.to_string(), &stream.to_string());
        let e = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .execute(&mut c)
            .await
            .expect_err(&sql);
        assert!(
            e.to_string().contains("head") || e.to_string().contains("last version"),
            "{sql}: {e}"
        );
    }
    let evs = s.read_stream(a).await.unwrap();
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0], first, "the first event is as it was");
    // The head + 1 still goes in (what the store does).
    sqlx::query(sqlx::AssertSqlSafe(insert("INSERT", None, 3)))
        .execute(&mut c)
        .await
        .unwrap();
    db.drop_db().await;
}

/// On PostgreSQL the service runs as a role that may append to the log and read
/// it, nothing more (deploy/postgres/roles.sql, run here as the owner on a fresh
/// database): it opens the store (nothing pending: the migrator is not run) and
/// appends through it, but every way to change or hide what is stored is refused.
#[tokio::test]
async fn the_service_role_appends_but_cannot_rewrite_the_log() {
    for engine in engines().await {
        if engine != Engine::Postgres {
            continue;
        }
        let (db, owner) = open(engine).await;
        owner
            .append(req(Uuid::now_v7(), 0, vec![ev(1)]))
            .await
            .unwrap();
        let role = format!("yiwang_app_{}", Uuid::new_v4().simple());
        let store::Pool::Postgres(op) = owner.pool() else {
            unreachable!()
        };
        let grants = include_str!("../../deploy/postgres/roles.sql").replace("yiwang_app", &role);
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE ROLE {role} LOGIN; {grants}"
        )))
        .execute(&op)
        .await
        .expect("roles.sql runs as the owner");
        let (_, rest) = db.url.split_once('@').expect("user@host in the URL");
        let url = format!("postgres://{role}@{rest}");

        let s = store::open(&url, true)
            .await
            .expect("the service role opens a migrated database");
        let a = Uuid::now_v7();
        s.append(req(a, 0, vec![ev(1)])).await.unwrap();
        s.append(req(a, 1, vec![ev(2)])).await.unwrap();
        assert_eq!(s.read_stream(a).await.unwrap().len(), 2);
        let store::Pool::Postgres(p) = s.pool() else {
            unreachable!()
        };
        for sql in [
            "UPDATE events SET event_type = 'X'",
            "DELETE FROM events",
            "TRUNCATE events",
            "ALTER TABLE events DISABLE TRIGGER ALL",
            "ALTER TABLE events DISABLE TRIGGER events_no_update_delete",
            "SET session_replication_role = replica",
            "UPDATE idempotency_keys SET body = '{}'",
            "DELETE FROM idempotency_keys",
            "DROP TABLE events",
            "CREATE TABLE sneaky (x int)",
        ] {
            let mut c = p.acquire().await.unwrap();
            let r = sqlx::raw_sql(sql).execute(&mut *c).await;
            assert!(r.is_err(), "{sql}: the service role must be refused");
        }
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&p)
            .await
            .unwrap();
        assert_eq!(n, 3, "nothing was removed");
        p.close().await;
        op.close().await;
        db.drop_db().await;
        if let Ok(admin) = std::env::var(support::PG_ENV)
            && let Ok(mut c) = sqlx::PgConnection::connect(&admin).await
        {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}")))
                .execute(&mut c)
                .await;
        }
    }
}
