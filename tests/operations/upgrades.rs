//! Upgrades, on both engines: migrations are forward-only and tested from every
//! earlier schema version, and events of an old payload shape are read through
//! their upcasters.
//!
//! For every schema version k before the latest (the list comes from the migration
//! files, so a new migration is covered without touching this file) a database gets
//! migrations 1..=k only, recorded in `_sqlx_migrations` as sqlx records them, and
//! the data a release at k held: the organisation, a history of tickets (every
//! event with a valid hash chain, at version 1 as those releases wrote them, in the
//! payload shapes of the time), their view rows and contacts, and the statistics
//! projection's rows. It is then opened as `serve` opens it (migrations, then the
//! projection runner's rebuild when a migration reset it) and compared with a
//! database built fresh at the latest version from the same events: every migration
//! is recorded, every event row is unchanged (positions, payload text, hashes), the
//! chains verify, and the tickets, their events, the projection's tables and the
//! statistics and appraisal answers are the same.

use crate::support;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;
use yiwang::auth::Role;
use yiwang::clock::Clock;
use yiwang::domain::{Ticket, TicketEvent};
use yiwang::projections::unit_stats::UnitStats;
use yiwang::sla::Calendar;
use yiwang::store::hash::{GENESIS, event_hash, rfc3339};
use yiwang::store::{Pool, RecordedEvent};

use support::scenario::{Scenario, bj, the_end};
use support::{Engine, TestApp, TestDb, engines, yiwang};

const DEMO_ORG: &str = include_str!("../../schema/reference/demo-org.json");

// ---------------------------------------------------------------------------------
// Migrations, from the files

fn schema_dir(engine: Engine) -> PathBuf {
    let sub = match engine {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    };
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(sub)
}

/// The engine's migration files, by version (the number before the first `_`).
fn migration_files(engine: Engine) -> Vec<(i64, PathBuf)> {
    let mut out: Vec<(i64, PathBuf)> = std::fs::read_dir(schema_dir(engine))
        .expect("schema dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let version = name
                .split('_')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name}: no version"));
            (version, p)
        })
        .collect();
    out.sort();
    out
}

fn latest(engine: Engine) -> i64 {
    migration_files(engine).last().expect("a migration").0
}

/// The raw pool of a database (no migrations run).
async fn raw_pool(db: &TestDb) -> Pool {
    match db.engine {
        Engine::Sqlite => Pool::Sqlite(
            sqlx::SqlitePool::connect_with(
                yiwang::store::sqlite::connect_options(&db.url).expect("sqlite url"),
            )
            .await
            .expect("connect sqlite"),
        ),
        Engine::Postgres => Pool::Postgres(
            sqlx::PgPool::connect(&db.url)
                .await
                .expect("connect postgres"),
        ),
    }
}

/// Applies migrations 1..=k (the files as they are, so their checksums are the
/// ones the current binary expects) through sqlx's migrator, which records them in
/// `_sqlx_migrations` exactly as `yiwang migrate` does.
async fn migrate_up_to(db: &TestDb, pool: &Pool, k: i64) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (v, p) in migration_files(db.engine) {
        if v <= k {
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).expect("copy");
        }
    }
    let m = sqlx::migrate::Migrator::new(dir.path())
        .await
        .expect("migrator");
    match pool {
        Pool::Sqlite(p) => m.run(p).await.expect("migrate sqlite"),
        Pool::Postgres(p) => m.run(p).await.expect("migrate postgres"),
    }
}

async fn applied(pool: &Pool) -> Vec<(i64, bool)> {
    let sql = "SELECT version, success FROM _sqlx_migrations ORDER BY version";
    match pool {
        Pool::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await.expect("applied"),
        Pool::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await.expect("applied"),
    }
}

async fn exec(pool: &Pool, sql: &str) {
    match pool {
        Pool::Sqlite(p) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(p)
            .await
            .map(|_| ()),
        Pool::Postgres(p) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(p)
            .await
            .map(|_| ()),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

// ---------------------------------------------------------------------------------
// The log, written as the store writes it

/// An event of the history, before it has a position and a hash.
#[derive(Clone, Debug)]
struct Ev {
    stream: Uuid,
    version: i64,
    event_type: String,
    schema_version: i32,
    data: Value,
    metadata: Value,
    occurred_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
}

impl Ev {
    fn of(e: &RecordedEvent) -> Ev {
        Ev {
            stream: e.stream_id,
            version: e.version,
            event_type: e.event_type.clone(),
            schema_version: e.schema_version,
            data: e.data.clone(),
            metadata: e.metadata.clone(),
            occurred_at: e.occurred_at,
            recorded_at: e.recorded_at,
        }
    }
}

/// Where the positions of a written log start. SQLite counts up from 1.
/// PostgreSQL forms a position from the appending transaction's xid (see
/// store/postgres.rs): the log is written as if one past transaction of the
/// cluster (one that has committed, so the feed's horizon is past it) had appended
/// it, so the same positions can be written into several databases of the cluster.
async fn position_base(engine: Engine) -> i64 {
    match engine {
        Engine::Sqlite => 0,
        Engine::Postgres => {
            let admin = std::env::var(support::PG_ENV).expect("engines() checked it");
            let pool = sqlx::PgPool::connect(&admin).await.expect("connect admin");
            let xid: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
                .fetch_one(&pool)
                .await
                .expect("an xid");
            pool.close().await;
            xid.parse::<i64>().expect("xid") << 10
        }
    }
}

/// The event rows, each at its position after `base` and with its hash chained to
/// the stream's previous event (as `store::hash` computes it over the stored
/// content).
fn chain(base: i64, evs: &[Ev]) -> Vec<RecordedEvent> {
    assert!(evs.len() < 1024, "one xid's positions hold the log");
    let mut heads: std::collections::HashMap<Uuid, String> = Default::default();
    evs.iter()
        .enumerate()
        .map(|(i, e)| {
            let prev = heads
                .get(&e.stream)
                .cloned()
                .unwrap_or_else(|| GENESIS.to_string());
            let hash = event_hash(
                &prev,
                e.stream,
                e.version,
                &e.event_type,
                e.schema_version,
                &e.data,
                &e.metadata,
                e.occurred_at,
                e.recorded_at,
            );
            heads.insert(e.stream, hash.clone());
            RecordedEvent {
                position: base + 1 + i as i64,
                stream_id: e.stream,
                version: e.version,
                event_type: e.event_type.clone(),
                schema_version: e.schema_version,
                data: e.data.clone(),
                metadata: e.metadata.clone(),
                occurred_at: e.occurred_at,
                recorded_at: e.recorded_at,
                prev_hash: prev,
                hash,
            }
        })
        .collect()
}

async fn insert_event(pool: &Pool, e: &RecordedEvent) {
    let cols = "position, stream_id, version, event_type, schema_version, data, metadata, \
                occurred_at, recorded_at, prev_hash, hash";
    match pool {
        Pool::Sqlite(p) => sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO events ({cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )))
        .bind(e.position)
        .bind(e.stream_id.to_string())
        .bind(e.version)
        .bind(&e.event_type)
        .bind(e.schema_version)
        .bind(e.data.to_string())
        .bind(e.metadata.to_string())
        .bind(rfc3339(e.occurred_at))
        .bind(rfc3339(e.recorded_at))
        .bind(&e.prev_hash)
        .bind(&e.hash)
        .execute(p)
        .await
        .map(|_| ()),
        Pool::Postgres(p) => sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO events ({cols}) VALUES ($1, $2, $3, $4, $5, $6::json, $7::json, $8, $9, $10, $11)"
        )))
        .bind(e.position)
        .bind(e.stream_id)
        .bind(e.version)
        .bind(&e.event_type)
        .bind(e.schema_version)
        .bind(e.data.to_string())
        .bind(e.metadata.to_string())
        .bind(e.occurred_at)
        .bind(e.recorded_at)
        .bind(&e.prev_hash)
        .bind(&e.hash)
        .execute(p)
        .await
        .map(|_| ()),
    }
    .expect("insert event");
}

/// Sets the log tally from the events in the database, as migration 0008 does for
/// a log written before it: rows inserted here stand for what a release wrote, not
/// for an edit behind the service's back.
async fn count_log(pool: &Pool) {
    let rows: Vec<(i64, String, i64)> = match pool {
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
    .expect("events");
    let mut tally = yiwang::store::hash::Tally::default();
    for (position, stream, version) in &rows {
        tally.add(*position, stream, *version);
    }
    exec(
        pool,
        &format!(
            "DELETE FROM log_tally; INSERT INTO log_tally (slot, events, streams, digest) VALUES (0, {}, {}, {})",
            tally.events, tally.streams, tally.digest
        ),
    )
    .await;
}

/// Each stream's ticket folded from its events (through the upcasters), with the
/// hash of its last event.
fn fold(rows: &[RecordedEvent]) -> Vec<(Ticket, String)> {
    let mut out: Vec<(Ticket, String)> = Vec::new();
    let mut at: std::collections::HashMap<Uuid, usize> = Default::default();
    for e in rows {
        let ev = TicketEvent::from_parts(&e.event_type, e.schema_version, &e.data)
            .unwrap_or_else(|err| panic!("event {} reads: {err}", e.position));
        match at.get(&e.stream_id) {
            Some(&i) => {
                let t = Ticket::apply(Some(out[i].0.clone()), e.stream_id, &ev, e.occurred_at);
                out[i] = (t, e.hash.clone());
            }
            None => {
                at.insert(e.stream_id, out.len());
                out.push((
                    Ticket::apply(None, e.stream_id, &ev, e.occurred_at),
                    e.hash.clone(),
                ));
            }
        }
    }
    out
}

/// The ticket view row the store writes with each append: `doc` is the folded
/// ticket as JSON text (`doc` given: as an older release wrote it).
async fn insert_view(pool: &Pool, t: &Ticket, head_hash: &str, doc: Option<String>) {
    let v = yiwang::app::decide::view_row(t);
    let doc = doc.unwrap_or(v.doc);
    let cols = "id, number, state, unit, centre, category, grid, version, created_at, updated_at, \
                doc, head_hash, co_units";
    match pool {
        Pool::Sqlite(p) => sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO ticket_view ({cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )))
        .bind(v.id.to_string())
        .bind(&v.number)
        .bind(&v.state)
        .bind(&v.unit)
        .bind(&v.centre)
        .bind(&v.category)
        .bind(&v.grid)
        .bind(v.version)
        .bind(rfc3339(v.created_at))
        .bind(rfc3339(v.updated_at))
        .bind(&doc)
        .bind(head_hash)
        .bind(Value::from(v.co_units.clone()).to_string())
        .execute(p)
        .await
        .map(|_| ()),
        Pool::Postgres(p) => sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO ticket_view ({cols}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        )))
        .bind(v.id)
        .bind(&v.number)
        .bind(&v.state)
        .bind(&v.unit)
        .bind(&v.centre)
        .bind(&v.category)
        .bind(&v.grid)
        .bind(v.version)
        .bind(v.created_at)
        .bind(v.updated_at)
        .bind(&doc)
        .bind(head_hash)
        .bind(&v.co_units)
        .execute(p)
        .await
        .map(|_| ()),
    }
    .expect("insert ticket view");
}

async fn insert_contact(pool: &Pool, c: &yiwang::repo::contacts::Contact) {
    match pool {
        Pool::Sqlite(p) => sqlx::query("INSERT INTO contacts (id, name, phone) VALUES (?, ?, ?)")
            .bind(c.id.to_string())
            .bind(&c.name)
            .bind(&c.phone)
            .execute(p)
            .await
            .map(|_| ()),
        Pool::Postgres(p) => {
            sqlx::query("INSERT INTO contacts (id, name, phone) VALUES ($1, $2, $3)")
                .bind(c.id)
                .bind(&c.name)
                .bind(&c.phone)
                .execute(p)
                .await
                .map(|_| ())
        }
    }
    .expect("insert contact");
}

/// What a database holds besides its schema: the organisation, the log, the view
/// rows (docs as written at schema version `era`), the contacts.
struct Data {
    events: Vec<Ev>,
    contacts: Vec<yiwang::repo::contacts::Contact>,
}

/// Writes `data` into `pool` as a release at schema version `era` held it;
/// returns the event rows written.
async fn write_data(base: i64, pool: &Pool, data: &Data, era: i64) -> Vec<RecordedEvent> {
    yiwang::org::save(pool, DEMO_ORG, "demo")
        .await
        .expect("save org")
        .expect("demo org is valid");
    let rows = chain(base, &data.events);
    for e in &rows {
        insert_event(pool, e).await;
    }
    // From 0008 on, a release's appends kept the log tally (before it, the
    // migration counts the log it finds).
    if era >= 8 {
        count_log(pool).await;
    }
    for (t, head) in fold(&rows) {
        // Before attachments (migration 0003) the folded ticket had no photos.
        let doc = (era < 3).then(|| {
            let mut doc = serde_json::to_value(&t).expect("ticket json");
            doc.as_object_mut().expect("object").remove("photos");
            doc.to_string()
        });
        insert_view(pool, &t, &head, doc).await;
    }
    for c in &data.contacts {
        insert_contact(pool, c).await;
    }
    rows
}

/// Every event row as stored, every column as text: what "byte for byte" compares.
async fn dump_events(pool: &Pool) -> Vec<Vec<String>> {
    dump(pool, "events", "position").await
}

/// Every row of `table`, each column as text (NULL as `∅`), in `order`.
async fn dump(pool: &Pool, table: &str, order: &str) -> Vec<Vec<String>> {
    let cols: Vec<String> = match pool {
        Pool::Sqlite(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
        )))
        .fetch_all(p)
        .await
        .expect("columns"),
        Pool::Postgres(p) => sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = $1 \
             AND table_schema = current_schema() ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(p)
        .await
        .expect("columns"),
    };
    assert!(!cols.is_empty(), "table {table} has columns");
    // Columns joined by the unit separator (U+001F), which no value holds.
    let sep = match pool {
        Pool::Sqlite(_) => " || char(31) || ",
        Pool::Postgres(_) => " || chr(31) || ",
    };
    let expr = cols
        .iter()
        .map(|c| format!("COALESCE(CAST(\"{c}\" AS TEXT), '∅')"))
        .collect::<Vec<_>>()
        .join(sep);
    let sql = format!("SELECT {expr} FROM {table} ORDER BY {order}");
    let rows: Vec<String> = match pool {
        Pool::Sqlite(p) => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
                .fetch_all(p)
                .await
        }
        Pool::Postgres(p) => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
                .fetch_all(p)
                .await
        }
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.into_iter()
        .map(|r| r.split('\u{1f}').map(str::to_string).collect())
        .collect()
}

// ---------------------------------------------------------------------------------
// The history, made once through the real service

/// Three months of tickets made through the HTTP API on a scratch SQLite database
/// (returns, an extension, two supervisions, a failed verification, feedback, a
/// photo, a repeat complaint, an overdue ticket, the SLA watcher's warnings and
/// breaches, a citizen's contact). Returns its events and contacts.
async fn history() -> Data {
    let app = TestApp::spawn_with_clock(Engine::Sqlite, Clock::manual(bj("09-28T08:00"))).await;
    let s = Scenario::new(&app).await;
    let (zf, sc) = (&s.zf, &s.sc);
    let watch = |at: &str| {
        s.at(at);
        let app = &app;
        async move {
            yiwang::sla::watcher::run_once(&app.app)
                .await
                .expect("SLA watcher");
        }
    };

    // T1: signed late, handled with a photo, verified, satisfied, closed.
    let t1 = s.garbage_assigned().await;
    watch("10-08T08:00").await;
    // SOI, a comment segment, EOI: a JPEG whose end an upload can find.
    s.garbage_closed(&t1, b"\xFF\xD8\xFF\xFE\x00\x09upgrade\xFF\xD9")
        .await;

    // T2: returned, dispatched again, an approved extension, supervised twice, a
    // failed verification, handled again.
    let t2 = s.reported("09-30T09:00", "city.road_spillage").await;
    s.assign("09-30T09:30", &t2, "hg-scjgs").await;
    s.returned("09-30T10:00", sc, &t2, "非本所职责").await;
    s.assign("09-30T11:00", &t2, "hg-zfzd").await;
    s.sign("09-30T14:00", zf, &t2, "李").await;
    s.extended("10-08T09:00", "10-08T10:00", &t2, "需协调")
        .await;
    s.spillage_reworked(&t2).await;

    // T3: signed, never handled: overdue at the end.
    let t3 = s.reported("10-09T14:00", "market.consumer_complaint").await;
    s.assign("10-09T15:00", &t3, "hg-scjgs").await;
    s.sign("10-12T09:00", sc, &t3, "赵").await;
    s.act(
        "10-13T09:00",
        sc,
        &t3,
        "comment",
        json!({"text": "已联系商户"}),
    )
    .await;

    // T4: T1's garbage again: a repeat complaint.
    s.repeat_complaint(&t1).await;

    // T5: a citizen's call (a contact outside the log), at the district.
    let t5 = s
        .create("11-02T09:00", &s.hot, support::ticket_body())
        .await;
    s.call_signed(&t5, "钱").await;
    watch("11-20T08:00").await;

    let events: Vec<Ev> = app.all_events().await.iter().map(Ev::of).collect();
    let mut contacts = Vec::new();
    for e in &events {
        if let Some(r) = e.data.get("reporter_ref").and_then(Value::as_str) {
            let id = Uuid::parse_str(r).expect("reporter uuid");
            contacts.push(
                yiwang::repo::contacts::contact(&app.app.store.pool(), id)
                    .await
                    .expect("contact")
                    .expect("kept"),
            );
        }
    }
    assert!(!contacts.is_empty(), "the history has a citizen's contact");
    for ty in [
        "TicketReturned",
        "ExtensionDecided",
        "VerificationFailed",
        "SlaBreached",
        "TicketHandled",
    ] {
        assert!(
            events.iter().any(|e| e.event_type == ty),
            "the history has a {ty}"
        );
    }
    app.finish().await;
    Data { events, contacts }
}

/// The history as releases at schema version `era` wrote it: every event at schema
/// version 1 (no release before upcasters wrote another), and before attachments
/// (migration 0003) no `photos` on a report and free-form names in a handling's
/// `photos` (the first release's `handle` took any name).
fn as_written_at(data: &Data, era: i64) -> Data {
    let events = data
        .events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.schema_version = 1;
            if era < 3 {
                let obj = e.data.as_object_mut().expect("payload object");
                match e.event_type.as_str() {
                    "TicketAccepted" => {
                        obj.remove("photos");
                    }
                    "TicketHandled" => {
                        let n = obj
                            .get("photos")
                            .and_then(Value::as_array)
                            .map_or(0, Vec::len);
                        let names: Vec<String> =
                            (1..=n).map(|i| format!("现场照片{i}.jpg")).collect();
                        obj.insert("photos".into(), json!(names));
                    }
                    _ => {}
                }
            }
            e
        })
        .collect();
    Data {
        events,
        contacts: data.contacts.clone(),
    }
}

// ---------------------------------------------------------------------------------
// The projection, as a release at schema version k left it

/// Rows of the statistics projection as a release at `k` left them, with its
/// checkpoint at the end of the log. From 0004 on the projection has the tables
/// this build writes: they are filled by this build's fold (the figures a service
/// had computed), less what that release did not keep yet (at 0004: the report
/// lists that came with 0005; before 0006: the months' revisions; before 0018: the
/// evidence lists in parts, each list whole in one row instead). Before, the first statistics release kept per-ticket
/// documents, episodes and occurrences in another shape (0004 empties those tables
/// and resets the checkpoint): a row of each stands for them.
async fn projection_as_left_at(engine: Engine, db: &TestDb, pool: &Pool, k: i64, last: i64) {
    if k < 2 {
        return;
    }
    if k < 4 {
        let t = Uuid::now_v7();
        exec(
            pool,
            &format!(
                "INSERT INTO stats_tickets (ticket, doc) VALUES ('{t}', '{{\"episodes\":[]}}');
                 INSERT INTO stats_episodes (ticket, seq, unit, category, assigned_at, assign_pos, reworks, \
                   ext_requested, ext_approved, after_return, span_end) \
                   VALUES ('{t}', 0, 'hg-zfzd', 'city.exposed_garbage', 0, 1, 0, 0, 0, 0, 0);
                 INSERT INTO stats_occurrences (position, kind, ticket, unit, at, category, source) \
                   VALUES (1, 'return', '{t}', 'hg-zfzd', 0, 'city.exposed_garbage', 'grid');
                 INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ('unit_stats', {last}, 0)"
            ),
        )
        .await;
        return;
    }
    let store = yiwang::store::open(&db.url, false)
        .await
        .expect("open without migrating");
    let org = yiwang::org::current_or_demo(&store.pool())
        .await
        .expect("org");
    let p = UnitStats::new(
        store.pool(),
        yiwang::org::OrgHandle::new(org),
        Calendar::embedded(),
    );
    use yiwang::projections::Projection;
    // This build's fold also writes each month's revision (0006); a release before
    // 0006 kept none: the table lives only while the fold runs.
    if k < 6 {
        exec(
            pool,
            "CREATE TABLE stats_evidence_revs (month BIGINT NOT NULL PRIMARY KEY, rev BIGINT NOT NULL)",
        )
        .await;
    }
    // It also writes the evidence lists in parts (0018); a release before 0018 kept
    // each list whole in one row: the table has the parts' shape while the fold
    // runs, and each list's parts are joined into one row after.
    if k < 18 {
        exec(pool, &evidence_parts_migration(engine)).await;
    }
    while yiwang::projections::step(&store, &p, 1000)
        .await
        .expect("the projection at schema version k")
        .is_some()
    {}
    if k < 6 {
        exec(pool, "DROP TABLE stats_evidence_revs").await;
    }
    if k < 18 {
        evidence_lists_whole(engine, pool).await;
    }
    assert_eq!(
        p.checkpoint().await.expect("checkpoint"),
        last,
        "{engine:?} k={k}"
    );
    if k == 4 {
        exec(
            pool,
            "DELETE FROM stats_evidence_monthly WHERE list LIKE 'report:%'",
        )
        .await;
    }
}

/// The SQL of migration 0018, which keeps the evidence lists in parts.
fn evidence_parts_migration(engine: Engine) -> String {
    let (_, path) = migration_files(engine)
        .into_iter()
        .find(|(v, _)| *v == 18)
        .expect("migration 0018");
    std::fs::read_to_string(path).expect("read migration 0018")
}

/// `stats_evidence_monthly` back in the shape before 0018 (0004's table): each
/// list's parts, joined in the order of their bounds (as bytes, as the service
/// orders them), one row per list.
async fn evidence_lists_whole(engine: Engine, pool: &Pool) {
    let sql = "SELECT unit, month, list, part, items FROM stats_evidence_monthly";
    let mut rows: Vec<(String, i64, String, String, String)> = match pool {
        Pool::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await,
        Pool::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await,
    }
    .expect("the evidence parts");
    rows.sort_by(|a, b| (a.1, &a.0, &a.2, &a.3).cmp(&(b.1, &b.0, &b.2, &b.3)));
    let without_rowid = match engine {
        Engine::Sqlite => " WITHOUT ROWID",
        Engine::Postgres => "",
    };
    exec(
        pool,
        &format!(
            "DROP TABLE stats_evidence_monthly;
             CREATE TABLE stats_evidence_monthly (unit TEXT NOT NULL, month BIGINT NOT NULL, \
               list TEXT NOT NULL, items TEXT NOT NULL, PRIMARY KEY (month, unit, list)){without_rowid}"
        ),
    )
    .await;
    for parts in rows.chunk_by(|a, b| (a.1, &a.0, &a.2) == (b.1, &b.0, &b.2)) {
        let (unit, month, list, _, _) = &parts[0];
        let items: Vec<&str> = parts.iter().map(|p| p.4.as_str()).collect();
        let insert =
            "INSERT INTO stats_evidence_monthly (unit, month, list, items) VALUES ($1, $2, $3, $4)";
        let items = items.join(",");
        match pool {
            Pool::Sqlite(p) => sqlx::query(insert)
                .bind(unit)
                .bind(month)
                .bind(list)
                .bind(&items)
                .execute(p)
                .await
                .map(|_| ()),
            Pool::Postgres(p) => sqlx::query(insert)
                .bind(unit)
                .bind(month)
                .bind(list)
                .bind(&items)
                .execute(p)
                .await
                .map(|_| ()),
        }
        .expect("a whole list");
    }
}

// ---------------------------------------------------------------------------------
// Opening as `serve` does, and what is compared

/// Opens the database as `serve` does (migrations, the organisation), then does
/// what the projection runner does first: a projection at checkpoint 0 over a
/// non-empty log is rebuilt in one pass; then it follows the feed to the end.
async fn open_as_serve(db: TestDb) -> TestApp {
    let app = TestApp::attach(db, Clock::manual(the_end())).await;
    for p in yiwang::projections::all(&app.app.projection_handles()) {
        if p.checkpoint().await.expect("checkpoint") == 0 {
            yiwang::projections::rebuild_holding_lease(
                &app.app.store,
                p.as_ref(),
                "upgrade-test",
                false,
                &|_| {},
            )
            .await
            .expect("rebuild");
        }
    }
    app.catch_up().await;
    app
}

const PROJECTION_TABLES: [(&str, &str); 10] = [
    ("stats_tickets", "ticket"),
    ("stats_episodes", "ticket, seq"),
    ("stats_occurrences", "position, kind"),
    ("stats_daily", "day, unit"),
    ("stats_turnaround", "day, unit"),
    ("stats_monthly", "month, unit"),
    ("stats_turnaround_monthly", "month, unit"),
    ("stats_evidence_monthly", "month, unit, list, part"),
    ("people_tickets", "ticket"),
    ("stats_people", "day, unit, person"),
];

const READS: [&str; 6] = [
    "/api/v1/stats/units?unit=etdz&granularity=month&from=2026-09-01&to=2026-11-30",
    "/api/v1/stats/units?unit=hg&granularity=day&from=2026-09-28&to=2026-10-20",
    "/api/v1/appraisal?period=2026-10&unit=hg",
    "/api/v1/appraisal?period=2026-Q4",
    "/api/v1/tickets?limit=100",
    "/api/v1/stats/people?unit=etdz&from=2026-09-01&to=2026-11-30",
];

/// Asserts that `a` (upgraded) answers and holds what `b` (fresh) does.
async fn assert_same(what: &str, a: &TestApp, b: &TestApp, tickets: &[Uuid]) {
    let (pa, pb) = (a.app.store.pool(), b.app.store.pool());
    assert_eq!(
        dump_events(&pa).await,
        dump_events(&pb).await,
        "{what}: events"
    );
    for (table, order) in PROJECTION_TABLES {
        let (ra, rb) = (dump(&pa, table, order).await, dump(&pb, table, order).await);
        assert_eq!(ra, rb, "{what}: projection table {table}");
    }
    // The search index's filter columns (migration 0017): filled by the migration
    // from the view on the upgraded database, written with each ticket and kept by
    // the view's triggers on the fresh one.
    support::assert_search_filters_follow_view(&pa, &format!("{what}: upgraded")).await;
    support::assert_search_filters_follow_view(&pb, &format!("{what}: fresh")).await;
    let admin_a = a.token(Role::Admin, "etdz").await;
    let admin_b = b.token(Role::Admin, "etdz").await;
    let mut paths: Vec<String> = READS.iter().map(|s| s.to_string()).collect();
    for t in tickets {
        paths.push(format!("/api/v1/tickets/{t}"));
        paths.push(format!("/api/v1/tickets/{t}/events"));
    }
    for path in &paths {
        let (ra, rb) = (a.get(path, &admin_a).await, b.get(path, &admin_b).await);
        assert_eq!(ra.status, 200, "{what}: {path}: {}", ra.body);
        assert_eq!(ra.body, rb.body, "{what}: {path}");
    }
}

/// The figures are not empty: the comparison compares something.
async fn assert_figures(what: &str, b: &TestApp) {
    let admin = b.token(Role::Admin, "etdz").await;
    let r = b.get(READS[0], &admin).await;
    let text = r.body.to_string();
    assert!(text.contains("\"handled\":"), "{what}: {text}");
    let sept_oct: i64 = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["handled"].as_i64())
        .sum();
    assert!(sept_oct > 0, "{what}: something was handled: {text}");
    let r = b.get(READS[2], &admin).await;
    assert!(
        r.body.to_string().contains("\"evidence\""),
        "{what}: the appraisal has deductions: {}",
        r.body
    );
}

async fn verify_ok(what: &str, app: &TestApp, events: usize) {
    let report = yiwang::verify::run(&app.app.store.pool())
        .await
        .expect("verify runs");
    assert!(report.ok(), "{what}: {:?}", report.problems);
    assert_eq!(
        report.events as usize,
        events,
        "{what}: {}",
        report.summary()
    );
}

/// From every earlier schema version to the latest, on each engine.
#[tokio::test]
async fn a_database_at_every_earlier_schema_version_upgrades_to_the_same_state_as_a_fresh_one() {
    let source = history().await;
    for engine in engines().await {
        let latest = latest(engine);
        let base = position_base(engine).await;
        let all: Vec<(i64, bool)> = migration_files(engine)
            .iter()
            .map(|(v, _)| (*v, true))
            .collect();
        assert!(latest >= 2, "there are earlier versions to upgrade from");
        for k in 1..latest {
            let what = format!("{engine:?} from schema version {k} to {latest}");
            let data = as_written_at(&source, k);

            // The database as a release at k left it.
            let old = TestDb::new(engine).await;
            let pool = raw_pool(&old).await;
            migrate_up_to(&old, &pool, k).await;
            assert_eq!(
                applied(&pool).await,
                all.iter()
                    .copied()
                    .filter(|(v, _)| *v <= k)
                    .collect::<Vec<_>>(),
                "{what}: the starting point"
            );
            let rows = write_data(base, &pool, &data, k).await;
            let last = rows.last().expect("events").position;
            projection_as_left_at(engine, &old, &pool, k, last).await;
            let before = dump_events(&pool).await;
            assert_eq!(before.len(), rows.len());
            if let Pool::Postgres(p) = &pool {
                p.close().await;
            }

            // Opened by this build.
            let a = open_as_serve(old).await;
            let pa = a.app.store.pool();
            assert_eq!(applied(&pa).await, all, "{what}: every migration recorded");
            assert_eq!(
                dump_events(&pa).await,
                before,
                "{what}: every event row unchanged"
            );
            verify_ok(&what, &a, rows.len()).await;

            // The same events into a database made at the latest version.
            let fresh = TestDb::new(engine).await;
            let fresh_pool = raw_pool(&fresh).await;
            yiwang::store::open(&fresh.url, true)
                .await
                .expect("migrate the fresh database");
            write_data(base, &fresh_pool, &data, latest).await;
            if let Pool::Postgres(p) = &fresh_pool {
                p.close().await;
            }
            let b = open_as_serve(fresh).await;
            assert_figures(&what, &b).await;

            let tickets: Vec<Uuid> = fold(&rows).iter().map(|(t, _)| t.id).collect();
            assert_same(&what, &a, &b, &tickets).await;

            // The upgraded database takes new commands, chained onto the old log.
            let open = fold(&rows)
                .into_iter()
                .map(|(t, _)| t)
                .find(|t| t.state == yiwang::domain::State::Assigned && t.handler.is_some())
                .expect("an open ticket");
            let handler = a
                .token(Role::Handler, open.unit.as_deref().expect("unit"))
                .await;
            let r = a
                .post(
                    &format!("/api/v1/tickets/{}/comment", open.id),
                    &handler,
                    json!({"text": "升级后继续办理"}),
                )
                .await;
            assert_eq!(
                r.status, 200,
                "{what}: a command after the upgrade: {}",
                r.body
            );
            verify_ok(&what, &a, rows.len() + 1).await;

            a.finish().await;
            b.finish().await;
        }
    }
}

// ---------------------------------------------------------------------------------
// Forward only

/// A database that records a migration this build does not have (a later release
/// migrated it) is refused by the library and by `yiwang migrate`, with sqlx's
/// message naming the migration, and nothing in it is changed. A migration whose
/// file changed after it was applied is refused the same way.
#[tokio::test]
async fn a_database_migrated_by_a_later_release_is_refused() {
    for engine in engines().await {
        let next = latest(engine) + 1;
        let db = TestDb::new(engine).await;
        let store = yiwang::store::open(&db.url, true).await.expect("migrate");
        let pool = store.pool();
        let checksum = match engine {
            Engine::Sqlite => "x'00'",
            Engine::Postgres => "'\\x00'::bytea",
        };
        exec(
            &pool,
            &format!(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES ({next}, 'from a later release', TRUE, {checksum}, 0)"
            ),
        )
        .await;
        let before = applied(&pool).await;

        let message = format!("migration {next} was previously applied but is missing");
        let err = match yiwang::store::open(&db.url, true).await {
            Ok(_) => panic!("{engine:?}: a database from a later release is refused"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(&message), "{engine:?}: {err}");
        let r = yiwang(&db.url, &["migrate"]).await;
        assert!(!r.ok, "{engine:?}: {r:?}");
        assert!(r.stderr.contains(&message), "{engine:?}: {r:?}");
        assert_eq!(applied(&pool).await, before, "{engine:?}: nothing changed");

        // An applied migration edited afterwards.
        exec(
            &pool,
            &format!("DELETE FROM _sqlx_migrations WHERE version = {next}"),
        )
        .await;
        exec(
            &pool,
            &format!("UPDATE _sqlx_migrations SET checksum = {checksum} WHERE version = 1"),
        )
        .await;
        let r = yiwang(&db.url, &["migrate"]).await;
        assert!(!r.ok, "{engine:?}: {r:?}");
        assert!(
            r.stderr
                .contains("migration 1 was previously applied but has been modified"),
            "{engine:?}: {r:?}"
        );
        drop(store);
        db.drop_db().await;
    }
}

// ---------------------------------------------------------------------------------
// Upcasters

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A ticket of the first release, written with raw SQL as that release stored it
/// (a report without `photos`, a handling at schema version 1 whose `photos` mix
/// free-form names and an attachment hash, every hash over the stored bytes),
/// is read through the upcaster: the ticket lists the hash only, the folded stream
/// gives the view's ticket, the statistics count the handling (by the rebuild's
/// text route and the runner's batch route alike), the events API hands out the
/// rows as stored, and the chain verifies.
#[tokio::test]
async fn an_event_of_an_old_shape_is_read_through_its_upcaster() {
    let source = history().await;
    let old = as_written_at(&source, 1);
    let handled = old
        .events
        .iter()
        .find(|e| e.event_type == "TicketHandled" && e.data["photos"] != json!([]))
        .expect("a handling with photos")
        .clone();
    let ticket = handled.stream;
    let legacy: Vec<Ev> = old
        .events
        .iter()
        .filter(|e| e.stream == ticket)
        .cloned()
        .map(|mut e| {
            if e.version == handled.version {
                e.data["photos"] = json!(["现场照片1.jpg", HASH, "整改后.png"]);
            }
            e
        })
        .collect();
    for engine in engines().await {
        let what = format!("{engine:?}");
        let app = TestApp::spawn_with_clock(engine, Clock::manual(the_end())).await;
        let pool = app.app.store.pool();
        let rows = chain(position_base(engine).await, &legacy);
        for e in &rows {
            insert_event(&pool, e).await;
        }
        count_log(&pool).await;
        let (t, head) = fold(&rows).pop().expect("the ticket");
        insert_view(&pool, &t, &head, None).await;
        let stored = dump_events(&pool).await;

        // The ticket: only the hash is a photo; the log gives the view's ticket.
        let admin = app.token(Role::Admin, "etdz").await;
        let r = app.get(&format!("/api/v1/tickets/{ticket}"), &admin).await;
        assert_eq!(r.status, 200, "{what}: {}", r.body);
        assert_eq!(r.body["state"], "closed", "{what}");
        let photos: Vec<&str> = r.body["photos"]
            .as_array()
            .expect("photos")
            .iter()
            .map(|p| p["hash"].as_str().expect("hash"))
            .collect();
        assert_eq!(photos, [HASH], "{what}");
        let (from_log, log_head) = app
            .app
            .load_from_stream(ticket)
            .await
            .expect("the stream reads")
            .expect("the ticket");
        assert_eq!(
            Some(from_log.clone()),
            app.app.load(ticket).await.expect("load"),
            "{what}"
        );
        assert_eq!(log_head.as_deref(), Some(head.as_str()), "{what}");
        let Some(TicketEvent::TicketHandled(h)) = app
            .app
            .store
            .read_stream(ticket)
            .await
            .expect("stream")
            .iter()
            .find(|e| e.version == handled.version)
            .map(|e| {
                TicketEvent::from_parts(&e.event_type, e.schema_version, &e.data).expect("reads")
            })
        else {
            panic!("{what}: the handling");
        };
        assert_eq!(h.photos, [HASH]);
        assert_eq!(h.legacy_photo_names, ["现场照片1.jpg", "整改后.png"]);

        // The events API: the rows as stored (schema version 1, the names in photos).
        let r = app
            .get(&format!("/api/v1/tickets/{ticket}/events"), &admin)
            .await;
        let items = r.body["items"].as_array().expect("items");
        let served = items
            .iter()
            .find(|i| i["version"] == handled.version)
            .expect("the handling");
        assert_eq!(served["schema_version"], 1, "{what}");
        assert_eq!(
            served["data"]["photos"],
            json!(["现场照片1.jpg", HASH, "整改后.png"]),
            "{what}"
        );
        assert!(served["data"].get("legacy_photo_names").is_none(), "{what}");

        // The statistics: the batch route (the runner following the feed) ...
        app.catch_up().await;
        let stats = "/api/v1/stats/units?unit=hg&granularity=month&from=2026-10-01&to=2026-10-31";
        let by_batches = app.get(stats, &admin).await;
        let handled_in = |body: &Value| -> i64 {
            body["items"]
                .as_array()
                .expect("items")
                .iter()
                .filter_map(|i| i["handled"].as_i64())
                .sum()
        };
        assert!(
            handled_in(&by_batches.body) > 0,
            "{what}: {}",
            by_batches.body
        );
        // ... and the rebuild (the text route) count the same.
        for p in yiwang::projections::all(&app.app.projection_handles()) {
            p.reset().await.expect("reset");
            yiwang::projections::rebuild_holding_lease(
                &app.app.store,
                p.as_ref(),
                "t",
                true,
                &|_| {},
            )
            .await
            .expect("rebuild");
        }
        let rebuilt = app.get(stats, &admin).await;
        assert_eq!(rebuilt.body, by_batches.body, "{what}");

        // The chain verifies, and no row was rewritten by reading.
        verify_ok(&what, &app, rows.len()).await;
        let r = yiwang(&app.db.url, &["verify"]).await;
        assert!(r.ok, "{what}: {r:?}");
        assert_eq!(
            dump_events(&pool).await,
            stored,
            "{what}: the rows as stored"
        );
        app.finish().await;
    }
}

/// An event of a schema version newer than this build reads (written by a later
/// release on the same database) is a clear error wherever it is decoded: loading
/// the ticket from its stream, the statistics (which stop on it instead of skipping
/// it) and their rebuild. The chain still verifies (its hash covers the stored
/// bytes), and the events API hands it out as stored.
#[tokio::test]
async fn an_event_of_a_newer_schema_version_is_an_error_not_a_misread() {
    for engine in engines().await {
        let what = format!("{engine:?}");
        let app = TestApp::spawn_with_clock(engine, Clock::manual(the_end())).await;
        let t = app.new_ticket().await;
        let id = Uuid::parse_str(t["id"].as_str().expect("id")).expect("uuid");
        app.catch_up().await;
        let pool = app.app.store.pool();
        let head = app.app.store.read_stream(id).await.expect("stream");
        let last = head.last().expect("an event");
        let at = yiwang::store::truncate_micros(Utc::now());
        let ev = Ev {
            stream: id,
            version: last.version + 1,
            event_type: "TicketCommented".into(),
            schema_version: 7,
            data: json!({"text": "来自更新的版本", "mentions": ["hg"]}),
            metadata: last.metadata.clone(),
            occurred_at: at,
            recorded_at: at,
        };
        let hash = event_hash(
            &last.hash,
            ev.stream,
            ev.version,
            &ev.event_type,
            ev.schema_version,
            &ev.data,
            &ev.metadata,
            at,
            at,
        );
        let row = RecordedEvent {
            // PostgreSQL: a free index of the last append's xid (below the horizon).
            position: match engine {
                Engine::Sqlite => last.position + 1,
                Engine::Postgres => last.position + 512,
            },
            stream_id: id,
            version: ev.version,
            event_type: ev.event_type.clone(),
            schema_version: ev.schema_version,
            data: ev.data.clone(),
            metadata: ev.metadata.clone(),
            occurred_at: at,
            recorded_at: at,
            prev_hash: last.hash.clone(),
            hash: hash.clone(),
        };
        insert_event(&pool, &row).await;
        count_log(&pool).await;
        let version_sql = format!(
            "UPDATE ticket_view SET version = {}, head_hash = '{hash}' WHERE id = '{id}'",
            ev.version
        );
        exec(&pool, &version_sql).await;

        let err = match app.app.load_from_stream(id).await {
            Ok(_) => panic!("{what}: a newer event was read"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains("TicketCommented schema version 7 is newer than this build"),
            "{what}: {err}"
        );

        let p = yiwang::projections::all(&app.app.projection_handles())
            .pop()
            .expect("unit_stats");
        let before = p.checkpoint().await.expect("checkpoint");
        let err = loop {
            match yiwang::projections::step(&app.app.store, p.as_ref(), 1000).await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("{what}: the projection passed the newer event"),
                Err(e) => break e.to_string(),
            }
        };
        assert!(err.contains("newer than this build"), "{what}: {err}");
        assert!(
            err.contains(&format!("position {}", row.position)),
            "{what}: {err}"
        );
        assert_eq!(
            p.checkpoint().await.expect("checkpoint"),
            before,
            "{what}: not skipped"
        );
        let err = yiwang::projections::rebuild_holding_lease(
            &app.app.store,
            p.as_ref(),
            "t",
            true,
            &|_| {},
        )
        .await
        .expect_err("the rebuild stops too")
        .to_string();
        assert!(err.contains("newer than this build"), "{what}: {err}");

        verify_ok(&what, &app, head.len() + 1).await;
        let admin = app.token(Role::Admin, "etdz").await;
        let r = app
            .get(&format!("/api/v1/tickets/{id}/events"), &admin)
            .await;
        let served = r.body["items"]
            .as_array()
            .expect("items")
            .last()
            .expect("event")
            .clone();
        assert_eq!(served["schema_version"], 7, "{what}");
        assert_eq!(served["data"], ev.data, "{what}");
        app.finish().await;
    }
}
