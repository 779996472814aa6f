//! The pure part of each command kind, without a database (issue 24, points 4 and
//! 5): what `App::create` / `App::act` do in memory between the request body and
//! the store's INSERT, and what the store computes before it (event text, metadata
//! text, the hash chain). Each command kind is its own benchmark id, and a counting
//! global allocator prints the allocations and bytes of each before criterion runs.
//!
//! One command here is, in the order the service does it:
//! - parse and check the JSON body (`app::commands::parse_command`);
//! - for an action, this process's cached copy of the ticket (`RecentTickets::get`,
//!   a clone); for a creation, the ticket number and the reporter's contact;
//! - policy, organisation and aggregate: decide and fold (`app::decide`);
//! - the answer's ticket JSON (`views::ticket::render_string`);
//! - what `App::commit` builds: the events' stored form (`new_events`), the
//!   ticket-view row with its document (`view_row`), a new ticket's search row,
//!   the metadata and the idempotency record;
//! - what both engines' appends compute before writing (`store/sqlite.rs`,
//!   `store/pg_append.rs`): the metadata as JSON text, each event's data as JSON
//!   text and its hash chained to the previous one (`store::hash::event_hash`);
//! - the new state kept in the cache (`RecentTickets::put`, a clone).
//!
//! Not here: HTTP, the database, the PostgreSQL batch's row JSON of the view
//! handlers (`ViewHandler::pg_row`), the metrics. Every command runs on the same
//! state each iteration (the state before it in one ticket's life), so each
//! iteration decides the same events.
//!
//! Run: `cargo bench --bench commands` (`-- --quick` for a short run; `-- assign`
//! for one kind). The table of allocations prints first.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use chrono::{DateTime, Utc};
use chrono_tz::Asia::Shanghai;
use criterion::Criterion;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use yiwang::app::RecentTickets;
use yiwang::app::commands::{CommandMeta, ParsedCommand, parse_command};
use yiwang::app::decide::{
    Decided, check_new_ticket, decide_action, decide_create, new_events, view_row,
};
use yiwang::auth::{Actor, Role, policy};
use yiwang::domain::Ticket;
use yiwang::org::Org;
use yiwang::repo::contacts::Contact;
use yiwang::repo::tickets::search::SearchRow;
use yiwang::sla::{Calendar, OrgDeadlines, SlaPolicy, SlaSettings};
use yiwang::store::hash::{GENESIS, event_hash};
use yiwang::store::{IdempotencyRecord, Metadata, json_text, truncate_micros};
use yiwang::views::ticket::{render_string, reporter_json};

// ---------------------------------------------------------------------------------
// The counting allocator: the binary's allocator (jemalloc, the default feature
// `jemalloc`; the system's without it), counting every allocation and the bytes
// asked for. A realloc counts as one allocation of its new size. The counters are
// relaxed atomics: the criterion times below include their cost (two uncontended
// atomic adds per allocation).
// ---------------------------------------------------------------------------------

#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
type Inner = tikv_jemallocator::Jemalloc;
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
const INNER: Inner = tikv_jemallocator::Jemalloc;
#[cfg(not(all(feature = "jemalloc", not(target_env = "msvc"))))]
type Inner = std::alloc::System;
#[cfg(not(all(feature = "jemalloc", not(target_env = "msvc"))))]
const INNER: Inner = std::alloc::System;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on unchanged to the inner allocator, which upholds
// GlobalAlloc's contract; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: the caller's layout, as GlobalAlloc::alloc requires.
        unsafe { INNER.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: as above.
        unsafe { INNER.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr came from this allocator (so from INNER) with this layout.
        unsafe { INNER.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size as u64, Relaxed);
        // SAFETY: as GlobalAlloc::realloc requires, passed on.
        unsafe { INNER.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counters() -> (u64, u64) {
    (ALLOCS.load(Relaxed), BYTES.load(Relaxed))
}

// ---------------------------------------------------------------------------------
// One ticket's life in the demo organisation
// ---------------------------------------------------------------------------------

const DISTRICT: &str = "etdz";
const DEPT: &str = "zhzf";
const GRID: &str = "hg-01-g01";
const PHOTO: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn actor(user: &str, role: Role, unit: &str) -> Actor {
    Actor {
        token_id: "bench".into(),
        user: user.into(),
        role,
        unit: unit.into(),
    }
}

/// What every command of the bench shares.
struct World {
    org: Arc<Org>,
    sla: SlaPolicy,
    recent: RecentTickets,
    id: Uuid,
    contact_id: Uuid,
    correlation: Uuid,
    recorded_at: DateTime<Utc>,
}

/// One command kind: who, the body, the state before it and when.
struct Case {
    name: &'static str,
    action: &'static str,
    actor: Actor,
    raw: Vec<u8>,
    /// The ticket before the command (None: a creation).
    before: Option<Ticket>,
    /// Its stream's head hash.
    head: String,
    now: DateTime<Utc>,
}

/// Everything the command produced, kept until the iteration ends (so nothing is
/// optimised away, and the bytes can be checked).
struct Output {
    body: String,
    event_types: Vec<String>,
    data_texts: Vec<String>,
    metadata_text: String,
    hashes: Vec<String>,
    view_doc: String,
    search: Option<SearchRow>,
    idempotency: IdempotencyRecord,
}

fn meta(case: &Case) -> CommandMeta {
    CommandMeta {
        idempotency_key: format!("bench-{}", case.name),
        request_hash: "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8".into(),
        if_match: None,
        request_id: "01JBENCH0000000000000000".into(),
    }
}

/// The pure path of one command.
fn run(w: &World, case: &Case) -> Output {
    let org = &w.org;
    let deadlines: OrgDeadlines<'_> = w.sla.with_org(org.clone());
    let meta = meta(case);
    let parsed = parse_command(case.action, &case.raw).expect("the bench's bodies parse");
    let now = case.now;
    let (decided, body, contact, prev, expected, status) = match parsed {
        ParsedCommand::Create(mut input) => {
            check_new_ticket(org, &case.actor, &input).expect("the bench's ticket is valid");
            let number = format!(
                "{}-{:06}",
                now.with_timezone(&Shanghai).format("%Y%m%d"),
                42
            );
            let contact = input.reporter.take().map(|(name, phone)| Contact {
                id: w.contact_id,
                name,
                phone,
            });
            let decided = decide_create(
                org,
                &deadlines,
                &case.actor,
                input,
                (w.id, number),
                contact.as_ref().map(|c| c.id),
                now,
            )
            .expect("the bench's creation is decided");
            let reporter = contact
                .as_ref()
                .map(|c| reporter_json(c, policy::sees_contact(org, &case.actor, &decided.next)));
            let body = render_string(&decided.next, now, reporter);
            (decided, body, contact, GENESIS.to_string(), 0, 201)
        }
        ParsedCommand::Act(input) => {
            let (ticket, head) = w.recent.get(w.id).expect("the state is cached");
            let decided = decide_action(org, &deadlines, &case.actor, &ticket, input, now, None)
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let body = render_string(&decided.next, now, None);
            (decided, body, None, head, ticket.version, 200)
        }
    };
    let Decided { events, next } = decided;
    // App::commit.
    let stored = new_events(&events, now);
    let view = view_row(&next);
    let search = (expected == 0).then(|| SearchRow::of(&next));
    let mut metadata: Metadata = meta.metadata(&case.actor);
    // Fixed, so that the bytes (and hashes) are the same every run.
    metadata.correlation_id = w.correlation;
    // A ticket command's record keeps no body: a retry renders it from the log.
    let idempotency = meta.idempotency_record(&case.actor, status, None, (w.id, next.version));
    // The append's encoding (store/sqlite.rs, store/pg_append.rs).
    let metadata_value = serde_json::to_value(&metadata).expect("metadata serializes");
    let metadata_text = json_text(&metadata_value);
    let mut link = prev;
    let mut hashes = Vec::with_capacity(stored.len());
    let mut data_texts = Vec::with_capacity(stored.len());
    let mut event_types = Vec::with_capacity(stored.len());
    for (j, e) in stored.iter().enumerate() {
        let version = expected + 1 + j as i64;
        let occurred_at = truncate_micros(e.occurred_at);
        let hash = event_hash(
            &link,
            w.id,
            version,
            &e.event_type,
            e.schema_version,
            &e.data,
            &metadata_value,
            occurred_at,
            w.recorded_at,
        );
        data_texts.push(json_text(&e.data));
        event_types.push(e.event_type.clone());
        link = hash.clone();
        hashes.push(hash);
    }
    // App::append_ticket keeps the new state for the ticket's next command.
    w.recent.put(next.clone(), link);
    drop(contact);
    Output {
        body,
        event_types,
        data_texts,
        metadata_text,
        hashes,
        view_doc: view.doc,
        search,
        idempotency,
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("a valid instant")
        .with_timezone(&Utc)
}

/// The life of one hotline ticket, each step's state kept: create, dispatch to a
/// department, return (decided on the dispatched state, not taken), sign, an
/// extension asked and granted, supervision, a comment, the result with a photo,
/// verification, the citizen's feedback, closing.
fn cases(w: &World) -> Vec<Case> {
    let hotline = actor("王芳", Role::HotlineAgent, DISTRICT);
    let dispatcher = actor("李强", Role::Dispatcher, DISTRICT);
    let handler = actor("张伟", Role::Handler, DEPT);
    let create = json!({
        "source": "hotline",
        "category": "city.exposed_garbage",
        "title": "小区门口垃圾堆放三天无人清理",
        "description": "市民来电反映：海港路12号小区东门外人行道上生活垃圾堆放已三天，气味很大，影响通行，请尽快清理并加强巡查。",
        "urgency": "normal",
        "location": {"address": "海港路12号东门", "lat": 37.4312, "lon": 122.1623, "grid": GRID},
        "reporter": {"name": "赵先生", "phone": "13800000000"},
    });
    let steps: Vec<(&str, &str, Actor, Value, bool)> = vec![
        (
            "assign",
            "assign",
            dispatcher.clone(),
            json!({"unit": DEPT, "note": "请按时处置"}),
            true,
        ),
        (
            "return",
            "return",
            handler.clone(),
            json!({"reason": "不属于本单位职责，应由属地街道处理"}),
            false,
        ),
        (
            "sign",
            "sign",
            handler.clone(),
            json!({"handler": "张伟"}),
            true,
        ),
        (
            "request_extension",
            "request-extension",
            handler.clone(),
            json!({"days": 3, "reason": "需协调环卫车辆"}),
            true,
        ),
        (
            "decide_extension",
            "decide-extension",
            dispatcher.clone(),
            json!({"approved": true}),
            true,
        ),
        (
            "supervise",
            "supervise",
            dispatcher.clone(),
            json!({"note": "群众多次来电，请加快处置"}),
            true,
        ),
        (
            "comment",
            "comment",
            dispatcher.clone(),
            json!({"text": "已电话联系来电人说明进度"}),
            false,
        ),
        (
            "handle",
            "handle",
            handler.clone(),
            json!({"result": "已清运垃圾约两吨，并在东门设置垃圾临时收集点", "photos": [PHOTO]}),
            true,
        ),
        (
            "verify",
            "verify",
            dispatcher.clone(),
            json!({"passed": true, "note": "现场核查已清理"}),
            true,
        ),
        (
            "feedback",
            "feedback",
            dispatcher.clone(),
            json!({"satisfaction": "satisfied"}),
            true,
        ),
        (
            "close",
            "close",
            dispatcher.clone(),
            json!({"code": "resolved"}),
            true,
        ),
    ];
    let start = at("2026-11-02T01:30:00.123456Z");
    let mut out = vec![Case {
        name: "create",
        action: "create",
        actor: hotline,
        raw: serde_json::to_vec(&create).expect("json"),
        before: None,
        head: GENESIS.to_string(),
        now: start,
    }];
    // Walk the life once, keeping each state and head for the cases.
    let _ = run(w, &out[0]);
    let (mut state, mut head) = w.recent.get(w.id).expect("cached");
    for (i, (name, action, who, body, taken)) in steps.into_iter().enumerate() {
        let case = Case {
            name,
            action,
            actor: who,
            raw: serde_json::to_vec(&body).expect("json"),
            before: Some(state.clone()),
            head: head.clone(),
            now: start + chrono::Duration::hours(2 * (i as i64 + 1)),
        };
        if taken {
            prime(w, &case);
            let _ = run(w, &case);
            let (next, next_head) = w.recent.get(w.id).expect("cached");
            state = next;
            head = next_head;
        }
        out.push(case);
    }
    out
}

/// Sets the cache to the state before `case`, as the command finds it.
fn prime(w: &World, case: &Case) {
    if let Some(t) = &case.before {
        w.recent.put(t.clone(), case.head.clone());
    }
}

/// A digest of every byte the path produced for every case: the answer, the
/// events' types and texts, the metadata, the hashes, the view document, the
/// search row and the idempotency record. Changes to the path must leave it as it
/// is (the stored bytes and hashes are part of the contract).
fn digest(w: &World, cases: &[Case]) -> String {
    let mut h = Sha256::new();
    for c in cases {
        prime(w, c);
        let o = run(w, c);
        h.update(c.name);
        h.update(&o.body);
        for (t, d) in o.event_types.iter().zip(&o.data_texts) {
            h.update(t);
            h.update(d);
        }
        h.update(&o.metadata_text);
        for x in &o.hashes {
            h.update(x);
        }
        h.update(&o.view_doc);
        if let Some(s) = &o.search {
            h.update(&s.search);
            h.update(s.grams.join(" "));
        }
        // The answer a retry gets: the stored body of a record from before schema
        // 0016, else the answer rendered again, which is `body`.
        h.update(o.idempotency.body.as_deref().unwrap_or(&o.body));
        h.update(o.idempotency.status.to_string());
    }
    hex::encode(h.finalize())
}

/// The bytes and hashes this path produced at commit 5ecd7ee (before the
/// allocation work): any change to them is a change to the stored log.
const EXPECTED_DIGEST: &str = "c41517e710eb73cbb0317b5758763cf22e0ed718c1b11e99f9b5956936df4cb4";

fn world() -> World {
    World {
        org: Arc::new(yiwang::org::model::demo()),
        sla: SlaPolicy::new(Calendar::embedded(), SlaSettings::default()),
        recent: RecentTickets::default(),
        id: Uuid::from_u128(0x0193_0b5e_1c2b_7d3e_8f40_1234_5678_9abc),
        contact_id: Uuid::from_u128(0x0193_0b5e_1c2b_7d3e_8f40_0000_0000_0001),
        correlation: Uuid::from_u128(0x0193_0b5e_1c2b_7d3e_8f40_0000_0000_0002),
        recorded_at: at("2026-11-02T01:30:00.200000Z"),
    }
}

/// Allocations and bytes per command of each kind, over `n` commands after one to
/// warm up.
fn alloc_table(w: &World, cases: &[Case]) {
    const N: u64 = 1000;
    println!("allocations per command (mean of {N}; the bench's own copies of the state excluded)");
    println!(
        "{:<20} {:>8} {:>10} {:>7} {:>11} {:>9}",
        "command", "allocs", "bytes", "events", "answer (B)", "view (B)"
    );
    for c in cases {
        prime(w, c);
        let o = run(w, c);
        let (events, answer, view) = (o.hashes.len(), o.body.len(), o.view_doc.len());
        let (mut allocs, mut bytes) = (0, 0);
        for _ in 0..N {
            prime(w, c);
            let (a0, b0) = counters();
            let o = run(w, c);
            let (a1, b1) = counters();
            drop(black_box(o));
            allocs += a1 - a0;
            bytes += b1 - b0;
        }
        println!(
            "{:<20} {:>8.1} {:>10.0} {:>7} {:>11} {:>9}",
            c.name,
            allocs as f64 / N as f64,
            bytes as f64 / N as f64,
            events,
            answer,
            view
        );
    }
}

fn main() {
    let w = world();
    let cases = cases(&w);
    let d = digest(&w, &cases);
    if EXPECTED_DIGEST.is_empty() {
        println!("digest of the path's bytes: {d}");
    } else {
        assert_eq!(
            d, EXPECTED_DIGEST,
            "the command path's bytes (answers, event texts, hashes, view documents) changed"
        );
    }
    alloc_table(&w, &cases);
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("command");
    for case in &cases {
        g.bench_function(case.name, |b| {
            b.iter_batched(
                || prime(&w, case),
                |()| run(&w, black_box(case)),
                // One command per setup: the setup puts the state before the
                // command back in the cache, which the command replaced.
                criterion::BatchSize::PerIteration,
            )
        });
    }
    g.finish();
    c.final_summary();
}
