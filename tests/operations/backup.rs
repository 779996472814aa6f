//! `yiwang export` and `yiwang restore`, run as an operator runs them (the real
//! binary). A history of three months is made through the HTTP API on one engine
//! (returns, an extension, supervision, a failed verification, feedback, a photo, a
//! repeat complaint, a duplicate closed from the queue), exported while the service
//! runs, and restored into a fresh database on the other engine (and the same one).
//! The restored service answers the appraisal, the statistics and every ticket with
//! the same JSON as the original, holds the same rows (every event with its position
//! and hash), verifies, still accepts the old tokens and answers a client's retry with
//! the first answer, and appends after the restored log. Truncated or edited
//! archives and targets that are not fresh are refused, leaving nothing written.

use crate::support;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use yiwang::auth::Role;
use yiwang::clock::Clock;
use yiwang::store::Pool;

use support::scenario::{Scenario, bj, the_end};
use support::{Engine, Run, TestApp, TestDb, engines, yiwang};

pub(crate) async fn export(url: &str, file: &Path) -> Run {
    let r = yiwang(url, &["export", "--out", &file.display().to_string()]).await;
    assert!(r.ok, "export: {r:?}");
    r
}

pub(crate) async fn restore(url: &str, file: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["restore".to_string(), file.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    yiwang(url, &args).await
}

/// A JPEG's first bytes, a tag, and its end marker.
fn jpeg(tag: &[u8]) -> Vec<u8> {
    let mut b = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00".to_vec();
    b.extend_from_slice(tag);
    b.extend_from_slice(b"\xFF\xD9");
    b
}

/// A command the original service answered, to be sent again after the restore.
struct Retry {
    path: String,
    key: String,
    body: Value,
    status: u16,
    answer: Value,
}

/// What a history leaves for the checks.
struct History {
    /// An admin's token, made on the original database.
    admin: String,
    hotline: String,
    retry: Retry,
}

/// Three months of tickets in the township hg and the district, each command at its
/// own business time.
async fn history(app: &TestApp) -> History {
    let s = Scenario::new(app).await;
    let admin = app.token(Role::Admin, "etdz").await;
    let (disp, zf, sc) = (&s.disp, &s.zf, &s.sc);

    // T1: signed late, handled with a photo, verified, satisfied, closed.
    let t1 = s.garbage_assigned().await;
    s.garbage_closed(&t1, &jpeg(b"backup")).await;

    // T2: supervised twice, handled late, failed verification, handled again.
    let t2 = s.reported("09-30T09:00", "city.road_spillage").await;
    s.assign("09-30T09:30", &t2, "hg-zfzd").await;
    s.sign("09-30T10:00", zf, &t2, "李").await;
    s.spillage_reworked(&t2).await;

    // T3: an approved extension, handled late anyway.
    let t3 = s.reported("09-28T09:00", "city.illegal_construction").await;
    s.assign("09-28T10:00", &t3, "hg-zfzd").await;
    s.sign("09-28T15:00", zf, &t3, "王").await;
    s.extended("09-29T09:00", "09-29T10:00", &t3, "需协调拆除")
        .await;
    s.act(
        "10-12T09:00",
        zf,
        &t3,
        "handle",
        json!({"result": "已拆除"}),
    )
    .await;
    let passed = json!({"passed": true, "note": "合格"});
    s.act("10-12T10:00", disp, &t3, "verify", passed).await;

    // T4: returned at once, dispatched again to the market office, signed.
    let t4 = s.reported("10-09T09:00", "city.exposed_garbage").await;
    s.assign("10-09T10:00", &t4, "hg-zfzd").await;
    s.returned("10-09T11:00", zf, &t4, "非本中队辖区").await;
    s.assign("10-09T14:00", &t4, "hg-scjgs").await;
    s.sign("10-10T09:00", sc, &t4, "赵").await;

    // T5: signed, never handled: overdue.
    let t5 = s.reported("09-30T14:00", "market.consumer_complaint").await;
    s.assign("09-30T15:00", &t5, "hg-scjgs").await;
    s.sign("10-08T09:00", sc, &t5, "赵").await;

    // T6: T1's garbage again: a repeat complaint.
    s.repeat_complaint(&t1).await;

    // T7: a citizen's call (a contact kept outside the log), at the district; its
    // creation is the command a client retries after the restore.
    s.at("11-02T09:00");
    let key = Uuid::new_v4().to_string();
    let body = support::ticket_body();
    let r = app
        .send(
            reqwest::Method::POST,
            "/api/v1/tickets",
            Some(&s.hot),
            Some(&body),
            &[("Idempotency-Key", key.clone())],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let t7 = r.body["id"].as_str().expect("id").to_string();
    let retry = Retry {
        path: "/api/v1/tickets".into(),
        key,
        body,
        status: r.status,
        answer: r.body,
    };
    s.call_signed(&t7, "钱工").await;
    let comment = json!({"text": "请尽快处理"});
    s.act("11-03T10:00", &s.district, &t7, "comment", comment)
        .await;

    // T8: the same call again, closed as a duplicate from the queue.
    let t8 = s
        .create("11-05T09:00", &s.hot, support::ticket_body())
        .await;
    let duplicate = json!({"code": "duplicate", "duplicate_of": t7});
    s.act("11-05T10:00", &s.district, &t8, "close", duplicate)
        .await;

    app.app.clock.set(the_end());
    History {
        admin,
        hotline: s.hot.clone(),
        retry,
    }
}

/// Every event row as stored, its times as RFC 3339 with microseconds.
type EventRow = (
    i64,
    String,
    i64,
    String,
    i32,
    String,
    String,
    String,
    String,
    String,
    String,
);

async fn event_rows(pool: &Pool) -> Vec<EventRow> {
    match pool {
        Pool::Postgres(p) => sqlx::query_as(
            "SELECT position, stream_id::text, version, event_type, schema_version, data::text, \
             metadata::text, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), \
             to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), prev_hash, hash \
             FROM events ORDER BY position",
        )
        .fetch_all(p)
        .await
        .expect("events"),
        Pool::Sqlite(p) => sqlx::query_as(
            "SELECT position, stream_id, version, event_type, schema_version, data, metadata, \
             occurred_at, recorded_at, prev_hash, hash FROM events ORDER BY position",
        )
        .fetch_all(p)
        .await
        .expect("events"),
    }
}

async fn count(pool: &Pool, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    match pool {
        Pool::Postgres(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
            .fetch_one(p)
            .await
            .expect("count"),
        Pool::Sqlite(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
            .fetch_one(p)
            .await
            .expect("count"),
    }
}

/// The rows of every table the archive carries, on a database the test has not
/// opened: (table, rows).
async fn table_counts(url: &str) -> Vec<(&'static str, i64)> {
    let s = yiwang::store::open(url, true).await.expect("open");
    let mut out = Vec::new();
    for t in [
        "events",
        "ticket_view",
        "contacts",
        "idempotency_keys",
        "tokens",
        "reference_data",
        "attachments",
    ] {
        out.push((t, count(&s.pool(), t).await));
    }
    out
}

/// Removes every `as_of` (when the answer was made) from an answer.
fn without_as_of(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("as_of");
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

/// The record lines of an archive, times written the same way (SQLite keeps the
/// millisecond times of its own defaults, PostgreSQL gives microseconds), sorted.
fn records(archive: &str) -> Vec<String> {
    fn norm(v: &mut Value) {
        match v {
            Value::String(s) => {
                if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                    *s = yiwang::store::hash::rfc3339(t.with_timezone(&Utc));
                }
            }
            Value::Object(m) => m.values_mut().for_each(norm),
            Value::Array(a) => a.iter_mut().for_each(norm),
            _ => {}
        }
    }
    let lines: Vec<&str> = archive.lines().collect();
    let mut out: Vec<String> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).expect("a record");
            norm(&mut v);
            v.to_string()
        })
        .collect();
    out.sort();
    out
}

/// The serial of a ticket number `YYYYMMDD-NNNNNN`.
fn serial(number: &str) -> i64 {
    number[9..].parse().expect("serial")
}

/// A history on `from`, exported, restored into a fresh `to`; everything compared.
async fn round_trip(from: Engine, to: Engine, restore_args: &[&str]) {
    let src = TestApp::spawn_with_clock(from, Clock::manual(bj("09-28T08:00"))).await;
    let h = history(&src).await;
    src.catch_up().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.ndjson");
    // Exported while the service runs.
    let ex = export(&src.db.url, &file).await;
    let src_events = src.all_events().await;
    assert!(
        ex.stderr
            .contains(&format!("exported {} events", src_events.len())),
        "{ex:?}"
    );
    assert!(
        ex.stderr.contains("copy the attachment directory"),
        "{ex:?}"
    );
    let archive = std::fs::read_to_string(&file).unwrap();
    let header: Value = serde_json::from_str(archive.lines().next().unwrap()).unwrap();
    assert_eq!(header["format"], "yiwang-export");
    assert_eq!(header["version"], 1);
    assert_eq!(
        header["engine"],
        if from == Engine::Sqlite {
            "sqlite"
        } else {
            "postgres"
        }
    );
    // The last migration this build has: the highest number before a file's
    // first `_` (a number may be missing while a branch holds a later one).
    let latest = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/sqlite"))
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            let number = name.strip_suffix(".sql")?.split('_').next()?;
            number.parse::<u64>().ok()
        })
        .max()
        .expect("migrations");
    assert_eq!(header["schema_version"], latest);
    let trailer: Value = serde_json::from_str(archive.lines().last().unwrap()).unwrap();
    assert_eq!(trailer["kind"], "end");
    assert_eq!(trailer["events"], src_events.len());
    assert_eq!(trailer["records"], archive.lines().count() - 2);
    let body_end = archive.len() - archive.lines().last().unwrap().len() - 1;
    assert_eq!(
        trailer["sha256"],
        hex::encode(Sha256::digest(&archive.as_bytes()[..body_end]))
    );
    assert!(!archive.contains("yw_"), "no token in clear");
    assert!(!archive.contains(&h.admin), "no token in clear");

    let db = TestDb::new(to).await;
    let r = restore(&db.url, &file, restore_args).await;
    assert!(r.ok, "{from:?} -> {to:?}: {r:?}");
    assert!(
        r.stdout
            .contains(&format!("restored {} events", src_events.len())),
        "{r:?}"
    );
    assert!(r.stdout.contains("every hash chain is intact"), "{r:?}");
    let dst = TestApp::attach(db, Clock::manual(the_end())).await;
    dst.catch_up().await;

    // Every event the same row: positions, hashes, payload text, times.
    let dst_events = dst.all_events().await;
    assert_eq!(dst_events, src_events, "{from:?} -> {to:?}");
    assert_eq!(
        event_rows(&dst.app.store.pool()).await,
        event_rows(&src.app.store.pool()).await
    );
    // And every row of every table the archive carries: export the copy again.
    let again = dir.path().join("again.ndjson");
    export(&dst.db.url, &again).await;
    let again = std::fs::read_to_string(&again).unwrap();
    assert_eq!(records(&again), records(&archive), "{from:?} -> {to:?}");
    if from == to {
        // Same engine: the record lines are the same bytes.
        let body = |a: &str| a.lines().skip(1).collect::<Vec<_>>().join("\n");
        let (a, b) = (body(&archive), body(&again));
        assert_eq!(a.lines().count(), b.lines().count());
        assert_eq!(
            a.rsplit_once('\n').unwrap().0,
            b.rsplit_once('\n').unwrap().0
        );
    }

    // The same answers, with the token made on the original.
    let mut paths = vec![
        "/api/v1/appraisal?period=2026-09&unit=hg".to_string(),
        "/api/v1/appraisal?period=2026-10&unit=hg".to_string(),
        "/api/v1/appraisal?period=2026-11".to_string(),
        "/api/v1/appraisal?period=2026-Q4".to_string(),
        "/api/v1/stats/units?unit=etdz&granularity=month&from=2026-09-01&to=2026-11-30".to_string(),
        "/api/v1/stats/units?unit=hg&granularity=day&from=2026-09-28&to=2026-10-20".to_string(),
        "/api/v1/stats/units?unit=hg&granularity=quarter&from=2026-07-01&to=2026-12-31".to_string(),
        "/api/v1/tickets?limit=100".to_string(),
        // A search within a scope reads the filter columns of the search index,
        // which `serve`'s start-up backfill writes from the restored view.
        "/api/v1/tickets?limit=100&q=%E8%B7%AF&state=closed&unit=hg".to_string(),
    ];
    let list = src.get("/api/v1/tickets?limit=100", &h.admin).await;
    let ids: Vec<String> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 8);
    for id in &ids {
        paths.push(format!("/api/v1/tickets/{id}"));
        paths.push(format!("/api/v1/tickets/{id}/events"));
    }
    for p in &paths {
        let a = src.get(p, &h.admin).await;
        let b = dst.get(p, &h.admin).await;
        assert_eq!(a.status, 200, "{p}: {}", a.body);
        assert_eq!(b.status, 200, "{from:?} -> {to:?} {p}: {}", b.body);
        assert_eq!(
            without_as_of(b.body),
            without_as_of(a.body),
            "{from:?} -> {to:?} {p}"
        );
    }
    let appraisal = src
        .get("/api/v1/appraisal?period=2026-10&unit=hg", &h.admin)
        .await;
    assert!(
        appraisal.body.to_string().contains("\"evidence\":[{"),
        "the comparison covers deductions with evidence: {}",
        appraisal.body
    );

    // `yiwang verify` on the copy.
    let v = yiwang(&dst.db.url, &["verify"]).await;
    assert!(v.ok, "{v:?}");
    assert!(
        v.stdout.contains(&format!(
            "verified {} events in 8 streams",
            src_events.len()
        )) && v.stdout.contains("every hash chain is intact"),
        "{v:?}"
    );

    // A client retrying its command after the move gets the first answer, and
    // nothing is appended.
    let before = dst.count_rows("events").await;
    let r = dst
        .send(
            reqwest::Method::POST,
            &h.retry.path,
            Some(&h.hotline),
            Some(&h.retry.body),
            &[("Idempotency-Key", h.retry.key.clone())],
        )
        .await;
    assert_eq!(r.status, h.retry.status);
    assert_eq!(r.body, h.retry.answer);
    assert_eq!(r.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(dst.count_rows("events").await, before);

    // New commands continue after the restored log: a higher position and serial.
    let max_position = src_events.iter().map(|e| e.position).max().unwrap();
    let max_serial = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| serial(t["number"].as_str().unwrap()))
        .max()
        .unwrap();
    let created = dst.new_ticket().await;
    assert!(
        serial(created["number"].as_str().unwrap()) > max_serial,
        "{} after serial {max_serial}",
        created["number"]
    );
    let after = dst.all_events().await;
    assert_eq!(after.len(), src_events.len() + 1);
    let last = after.last().unwrap();
    assert_eq!(last.stream_id.to_string(), created["id"].as_str().unwrap());
    assert!(
        last.position > max_position,
        "{} > {max_position}",
        last.position
    );
    let v = yiwang(&dst.db.url, &["verify"]).await;
    assert!(v.ok, "{v:?}");

    src.finish().await;
    dst.finish().await;
}

async fn with_postgres() -> bool {
    let has = engines().await.contains(&Engine::Postgres);
    if !has {
        eprintln!("skipping: this test needs PostgreSQL ({})", support::PG_ENV);
    }
    has
}

#[tokio::test]
async fn sqlite_to_postgres() {
    if with_postgres().await {
        round_trip(Engine::Sqlite, Engine::Postgres, &[]).await;
    }
}

#[tokio::test]
async fn postgres_to_sqlite() {
    if with_postgres().await {
        round_trip(Engine::Postgres, Engine::Sqlite, &[]).await;
    }
}

#[tokio::test]
async fn sqlite_to_sqlite_with_projections_left_to_the_service() {
    round_trip(Engine::Sqlite, Engine::Sqlite, &["--skip-projections"]).await;
}

#[tokio::test]
async fn postgres_to_postgres() {
    if with_postgres().await {
        round_trip(Engine::Postgres, Engine::Postgres, &[]).await;
    }
}

/// One ticket through assign and sign on SQLite, exported: (app, archive path, dir).
async fn small_archive() -> (TestApp, PathBuf, tempfile::TempDir) {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let t = app.new_ticket().await;
    let id = t["id"].as_str().unwrap();
    let disp = app.token(Role::Dispatcher, "etdz").await;
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/assign"),
            &disp,
            json!({"unit": "zhzf"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("small.ndjson");
    export(&app.db.url, &file).await;
    (app, file, dir)
}

fn nothing_written(counts: &[(&str, i64)]) -> bool {
    counts.iter().all(|(_, n)| *n == 0)
}

#[tokio::test]
async fn truncated_edited_and_foreign_archives_are_refused_leaving_nothing() {
    let (src, file, dir) = small_archive().await;
    let archive = std::fs::read(&file).unwrap();
    let text = String::from_utf8(archive.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    // Cut after a whole line: the trailer and two records gone.
    let keep: usize = lines[..lines.len() - 3].iter().map(|l| l.len() + 1).sum();
    let cut_at_line = write("cut-line.ndjson", &archive[..keep]);
    // Cut in the middle of an event line.
    let event_line = lines
        .iter()
        .position(|l| l.starts_with("{\"kind\":\"event\""))
        .unwrap();
    let start: usize = lines[..event_line].iter().map(|l| l.len() + 1).sum();
    let cut_mid = write("cut-mid.ndjson", &archive[..start + 40]);
    // One byte of an event's hash changed: still valid JSON, the checksum catches it.
    let hash_at = start + lines[event_line].find("\"hash\":\"").unwrap() + 8;
    let mut edited = archive.clone();
    edited[hash_at] = if edited[hash_at] == b'0' { b'1' } else { b'0' };
    let edited_hash = write("edited-hash.ndjson", &edited);
    // One byte of a payload changed so that the line is no longer JSON.
    let mut broken = archive.clone();
    let brace = start + lines[event_line].find("\"data\":{").unwrap() + 7;
    broken[brace] = b'(';
    let broken_json = write("broken-json.ndjson", &broken);
    // One byte of the trailer's checksum changed.
    let mut trailer = archive.clone();
    let at = archive.len() - 4; // the last hex digit, before `"}` and the newline
    trailer[at] = if trailer[at] == b'a' { b'b' } else { b'a' };
    let edited_trailer = write("edited-trailer.ndjson", &trailer);
    // Not an archive at all; an archive of a later format.
    let foreign = write(
        "foreign.ndjson",
        b"{\"ticket\":\"GD-1\",\"action\":\"create\"}\n",
    );
    let later = write(
        "later.ndjson",
        text.replacen("\"version\":1", "\"version\":2", 1)
            .as_bytes(),
    );
    let cases: [(&Path, &str); 7] = [
        (&cut_at_line, "without its trailer: it is truncated"),
        (&cut_mid, "ends in the middle of line"),
        (&edited_hash, "checksum does not match"),
        (&broken_json, "is not a valid record"),
        (&edited_trailer, "checksum does not match"),
        (&foreign, "not the header of a yiwang export archive"),
        (&later, "format version 2 and this yiwang reads version 1"),
    ];
    for engine in engines().await {
        let db = TestDb::new(engine).await;
        for (f, why) in &cases {
            let r = restore(&db.url, f, &[]).await;
            assert!(!r.ok, "{engine:?} {}: {r:?}", f.display());
            assert!(
                r.stderr.contains(why),
                "{engine:?} {}: {why:?}: {r:?}",
                f.display()
            );
            assert!(!r.stderr.contains("panicked"), "{r:?}");
            let counts = table_counts(&db.url).await;
            assert!(
                nothing_written(&counts),
                "{engine:?} {}: {counts:?}",
                f.display()
            );
        }
        // The intact archive still goes in: the refusals left the target fresh.
        let r = restore(&db.url, &file, &[]).await;
        assert!(r.ok, "{engine:?}: {r:?}");
        assert!(r.stdout.contains("restored 2 events"), "{r:?}");
        db.drop_db().await;
    }
    src.finish().await;
}

/// An archive whose event was edited and whose trailer was then recomputed (a plain
/// SHA-256 anyone can redo) passes the checksum, but not the hash chain: the restore
/// is refused before it commits, naming the stream and version, and leaves nothing.
#[tokio::test]
async fn an_edited_event_with_a_recomputed_checksum_is_refused_leaving_nothing() {
    let (src, file, dir) = small_archive().await;
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("{\"kind\":\"event\"") && l.contains("\"version\":2"))
        .expect("the assignment's event");
    let mut event: Value = serde_json::from_str(&lines[at]).unwrap();
    let stream = event["stream_id"].as_str().unwrap().to_string();
    assert_eq!(event["data"]["unit"], "zhzf", "{event}");
    event["data"]["unit"] = json!("scjg");
    // The record keeps its key order (`kind` first), as the archive writes it.
    lines[at] = serde_json::to_string(&event).unwrap();
    let body: String = lines[..lines.len() - 1]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    let mut trailer: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    trailer["sha256"] = json!(hex::encode(Sha256::digest(body.as_bytes())));
    let edited = dir.path().join("edited-resummed.ndjson");
    std::fs::write(&edited, format!("{body}{trailer}\n")).unwrap();
    for engine in engines().await {
        let db = TestDb::new(engine).await;
        let r = restore(&db.url, &edited, &[]).await;
        assert!(!r.ok, "{engine:?}: {r:?}");
        assert!(
            r.stderr
                .contains(&format!("edited stream {stream} version 2"))
                && r.stderr.contains("its content does not match its hash")
                && r.stderr.contains("without anything from the archive"),
            "{engine:?}: {r:?}"
        );
        let counts = table_counts(&db.url).await;
        assert!(nothing_written(&counts), "{engine:?}: {counts:?}");
        // --keep-damaged loads it as it is, and says it does not verify.
        let r = restore(&db.url, &edited, &["--keep-damaged"]).await;
        assert!(!r.ok, "{engine:?}: {r:?}");
        assert!(r.stdout.contains("restored 2 events"), "{r:?}");
        assert!(
            r.stdout
                .contains(&format!("edited stream {stream} version 2")),
            "{r:?}"
        );
        db.drop_db().await;
    }
    src.finish().await;
}

#[tokio::test]
async fn restore_into_a_database_with_events_is_refused() {
    let (src, file, _dir) = small_archive().await;
    for engine in engines().await {
        let db = TestDb::new(engine).await;
        let r = restore(&db.url, &file, &[]).await;
        assert!(r.ok, "{engine:?}: {r:?}");
        let before = table_counts(&db.url).await;
        // Again into the restored database, and into the original.
        for url in [&db.url, &src.db.url] {
            let r = restore(url, &file, &[]).await;
            assert!(!r.ok, "{engine:?}: {r:?}");
            assert!(
                r.stderr.contains("is not a fresh database")
                    && r.stderr.contains("2 in events")
                    && r.stderr.contains("nothing was written"),
                "{engine:?}: {r:?}"
            );
        }
        assert_eq!(table_counts(&db.url).await, before);
        db.drop_db().await;
    }
    assert_eq!(src.count_rows("events").await, 2);
    src.finish().await;
}

/// A log someone tampered with before the export (the last event of a stream
/// deleted, the guard dropped) is refused by default; with `--keep-damaged` it is
/// restored as it is and stays visibly tampered: the restore reports the same
/// problem as `yiwang verify` on the original and exits non-zero.
#[tokio::test]
async fn a_tampered_log_is_restored_as_it_is_and_reported() {
    let (src, _, dir) = small_archive().await;
    let Pool::Sqlite(p) = src.app.store.pool() else {
        unreachable!("small_archive is on SQLite")
    };
    sqlx::raw_sql("DROP TRIGGER events_no_delete; DELETE FROM events WHERE version = 2")
        .execute(&p)
        .await
        .unwrap();
    let problems = |r: &Run| -> Vec<String> {
        r.stdout
            .lines()
            .filter(|l| {
                l.starts_with("deleted ") || l.starts_with("edited ") || l.starts_with("inserted ")
            })
            .map(str::to_string)
            .collect()
    };
    let original = yiwang(&src.db.url, &["verify"]).await;
    assert!(!original.ok);
    assert_eq!(problems(&original).len(), 1, "{original:?}");
    assert!(
        problems(&original)[0].contains("version 2: missing"),
        "{original:?}"
    );
    let file = dir.path().join("tampered.ndjson");
    export(&src.db.url, &file).await;
    for engine in engines().await {
        let db = TestDb::new(engine).await;
        // Refused by default, naming the problem, and nothing loaded ...
        let r = restore(&db.url, &file, &[]).await;
        assert!(!r.ok, "{engine:?}: {r:?}");
        assert!(r.stderr.contains("version 2: missing"), "{r:?}");
        assert!(nothing_written(&table_counts(&db.url).await), "{r:?}");
        // ... and loaded as it is, for inspection, with --keep-damaged.
        let r = restore(&db.url, &file, &["--keep-damaged"]).await;
        assert!(!r.ok, "{engine:?}: {r:?}");
        assert!(r.stdout.contains("restored 1 events"), "{r:?}");
        assert_eq!(problems(&r), problems(&original), "{engine:?}: {r:?}");
        assert!(
            r.stderr
                .contains("was restored, but its log does not verify"),
            "{r:?}"
        );
        let v = yiwang(&db.url, &["verify"]).await;
        assert_eq!(problems(&v), problems(&original), "{engine:?}: {v:?}");
        db.drop_db().await;
    }
    src.finish().await;
}

/// PostgreSQL positions come from transaction ids: an archive whose positions lie
/// above the ids the target cluster would give next (another cluster's, here made
/// by moving a SQLite archive's positions up) is restored with the cluster's counter
/// moved past them first, so that new events still come after the restored ones.
#[tokio::test]
async fn restore_into_postgres_puts_new_positions_after_the_archive() {
    if !with_postgres().await {
        return;
    }
    let (src, file, dir) = small_archive().await;
    let admin_url = std::env::var(support::PG_ENV).unwrap();
    let next: i64 = {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
            .fetch_one(&mut c)
            .await
            .unwrap()
    };
    let offset = (next + 3000) << 10;
    let text = std::fs::read_to_string(&file).unwrap();
    let mut out = String::new();
    let mut max = 0;
    let lines: Vec<&str> = text.lines().collect();
    for l in &lines[1..lines.len() - 1] {
        let mut v: Value = serde_json::from_str(l).unwrap();
        if v["kind"] == "event" {
            let p = v["position"].as_i64().unwrap() + offset;
            v["position"] = json!(p);
            max = max.max(p);
        }
        // (Restore reads fields by name: their order does not matter.)
        out.push_str(&v.to_string());
        out.push('\n');
    }
    let mut header: Value = serde_json::from_str(lines[0]).unwrap();
    header["max_position"] = json!(max);
    let body = format!("{header}\n{out}");
    let trailer: Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
    let trailer = json!({
        "kind": "end", "events": trailer["events"], "records": trailer["records"],
        "sha256": hex::encode(Sha256::digest(body.as_bytes())),
    });
    let moved = dir.path().join("moved.ndjson");
    std::fs::write(&moved, format!("{body}{trailer}\n")).unwrap();

    let db = TestDb::new(Engine::Postgres).await;
    let r = restore(&db.url, &moved, &[]).await;
    assert!(r.ok, "{r:?}");
    assert!(
        r.stderr
            .contains("advancing the cluster's transaction counter"),
        "{r:?}"
    );
    assert!(r.stdout.contains("every hash chain is intact"), "{r:?}");
    let dst = TestApp::attach(db, Clock::system()).await;
    let restored = dst.all_events().await;
    assert_eq!(restored.last().unwrap().position, max);
    dst.new_ticket().await;
    let after = dst.all_events().await;
    assert_eq!(after.len(), restored.len() + 1);
    assert!(after.last().unwrap().position > max);
    src.finish().await;
    dst.finish().await;
}

/// Token expiry (schema 9) travels in the archive: an expiring token keeps its
/// expiry and an expired one stays refused, on either engine. An archive made
/// before schema 9 (its token records have no `expires_at`) restores, its tokens
/// not expiring.
#[tokio::test]
async fn token_expiry_travels_and_an_archive_without_it_restores() {
    let (src, file, dir) = small_archive().await;
    let pool = src.app.store.pool();
    let later = Utc::now() + chrono::Duration::days(30);
    let (later_id, later_token) =
        yiwang::auth::create_token_expiring(&pool, "later", Role::Admin, "etdz", Some(later))
            .await
            .unwrap();
    let (_, past_token) = yiwang::auth::create_token_expiring(
        &pool,
        "past",
        Role::Admin,
        "etdz",
        Some(Utc::now() - chrono::Duration::minutes(1)),
    )
    .await
    .unwrap();
    let with = dir.path().join("with-expiry.ndjson");
    export(&src.db.url, &with).await;
    let text = std::fs::read_to_string(&with).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains(&later_id) && l.contains("\"expires_at\":\"")),
        "the archive carries the expiry:\n{text}"
    );
    let me = |app: &TestApp, token: String| {
        let url = format!("{}/api/v1/me", app.base);
        let client = app.client.clone();
        async move {
            let r = client.get(url).bearer_auth(token).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    for engine in engines().await {
        let db = TestDb::new(engine).await;
        let r = restore(&db.url, &with, &[]).await;
        assert!(r.ok, "{engine:?}: {r:?}");
        let dst = TestApp::attach(db, Clock::system()).await;
        let listed = yiwang::auth::list_tokens(&dst.app.store.pool())
            .await
            .unwrap();
        let t = listed.iter().find(|t| t.id == later_id).expect("restored");
        let at = DateTime::parse_from_rfc3339(t.expires_at.as_deref().expect("an expiry"))
            .unwrap()
            .with_timezone(&Utc);
        assert!(
            (at - later).num_milliseconds().abs() < 1,
            "{engine:?}: {at} != {later}"
        );
        assert_eq!(me(&dst, later_token.clone()).await.0, 200, "{engine:?}");
        let (status, body) = me(&dst, past_token.clone()).await;
        assert_eq!(status, 401, "{engine:?}: {body}");
        assert!(body.contains("expired at"), "{engine:?}: {body}");
        dst.finish().await;
    }

    // The archive of `small_archive`, as a yiwang before schema 9 wrote it.
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut body = format!("{}\n", lines[0]);
    let mut tokens = 0;
    for l in &lines[1..lines.len() - 1] {
        let mut v: Value = serde_json::from_str(l).unwrap();
        if v["kind"] == "token" {
            assert!(
                v.as_object_mut().unwrap().remove("expires_at").is_some(),
                "{l}"
            );
            tokens += 1;
        }
        body.push_str(&v.to_string());
        body.push('\n');
    }
    assert!(tokens >= 1, "{text}");
    let trailer: Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
    let trailer = json!({
        "kind": "end", "events": trailer["events"], "records": trailer["records"],
        "sha256": hex::encode(Sha256::digest(body.as_bytes())),
    });
    let old = dir.path().join("before-schema-9.ndjson");
    std::fs::write(&old, format!("{body}{trailer}\n")).unwrap();
    let db = TestDb::new(Engine::Sqlite).await;
    let r = restore(&db.url, &old, &[]).await;
    assert!(r.ok, "{r:?}");
    let dst = TestApp::attach(db, Clock::system()).await;
    let listed = yiwang::auth::list_tokens(&dst.app.store.pool())
        .await
        .unwrap();
    assert_eq!(listed.len(), tokens, "{listed:?}");
    assert!(listed.iter().all(|t| t.expires_at.is_none()), "{listed:?}");
    dst.finish().await;
    src.finish().await;
}

/// Since schema 16 a ticket command's stored answer travels as its stream's version
/// (`"body":null,"version":N`), and a retry after the restore renders the first
/// answer from the restored log. An archive made before (its idempotency records
/// with a body and no `version`) restores on either engine, and its records are
/// answered from their bodies.
#[tokio::test]
async fn stored_answers_travel_as_versions_and_an_archive_of_bodies_restores() {
    let src = TestApp::spawn(Engine::Sqlite).await;
    let hot = src.token(Role::HotlineAgent, "etdz").await;
    let key = Uuid::new_v4().to_string();
    let body = support::ticket_body();
    async fn create(app: &TestApp, hot: &str, key: &str, body: &Value) -> support::Resp {
        app.send(
            reqwest::Method::POST,
            "/api/v1/tickets",
            Some(hot),
            Some(body),
            &[("Idempotency-Key", key.to_string())],
        )
        .await
    }
    let first = create(&src, &hot, &key, &body).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slim.ndjson");
    export(&src.db.url, &file).await;
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let stored: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["kind"] == "idempotency")
        .collect();
    assert_eq!(stored.len(), 1, "{text}");
    assert_eq!(stored[0]["body"], Value::Null, "{text}");
    assert_eq!(stored[0]["version"], first.body["version"], "{text}");

    // The same archive as a yiwang before schema 16 wrote it: the answer whole.
    let mut old = String::new();
    for l in &lines[..lines.len() - 1] {
        let mut v: Value = serde_json::from_str(l).unwrap();
        if v["kind"] == "idempotency" {
            let o = v.as_object_mut().unwrap();
            assert!(o.remove("version").is_some(), "{l}");
            o.insert("body".into(), Value::String(first.body.to_string()));
        }
        old.push_str(&v.to_string());
        old.push('\n');
    }
    let trailer: Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
    let trailer = json!({
        "kind": "end", "events": trailer["events"], "records": trailer["records"],
        "sha256": hex::encode(Sha256::digest(old.as_bytes())),
    });
    let old_file = dir.path().join("before-schema-16.ndjson");
    std::fs::write(&old_file, format!("{old}{trailer}\n")).unwrap();

    for engine in engines().await {
        for archive in [&file, &old_file] {
            let db = TestDb::new(engine).await;
            let r = restore(&db.url, archive, &[]).await;
            assert!(r.ok, "{engine:?} {archive:?}: {r:?}");
            let dst = TestApp::attach(db, Clock::system()).await;
            let before = dst.count_rows("events").await;
            let again = create(&dst, &hot, &key, &body).await;
            assert_eq!(again.status, 201, "{engine:?} {archive:?}: {}", again.body);
            assert_eq!(again.body, first.body, "{engine:?} {archive:?}");
            assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
            assert_eq!(again.header("ETag"), first.header("ETag"));
            assert_eq!(dst.count_rows("events").await, before);
            dst.finish().await;
        }
    }
    src.finish().await;
}
