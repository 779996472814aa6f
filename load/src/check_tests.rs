//! Negative controls for the checker (issue 25): a real log, written by the seed
//! through the yiwang library into a fresh SQLite database, first passes the check
//! with something counted in every column; then each kind of violation the check
//! claims to find is seeded into it, one at a time, and must be reported. Each test
//! names the problem it expects, so removing a detection from `check.rs` fails the
//! test of that detection.

use std::path::PathBuf;

use serde_json::json;

use super::*;
use crate::mix::{KEY_PREFIX, Outcome, Record};
use crate::seed::{SeedArgs, seed};

/// A seeded log, the ledger a mix that had sent its commands would have kept, and
/// what two SSE subscribers would have seen.
struct Fixture {
    dir: PathBuf,
    url: String,
    log: Log,
    ledger: Vec<Record>,
    sse: Vec<Vec<i64>>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("yiwang-check-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let url = format!("sqlite://{}/yiwang.db?mode=rwc", dir.display());
    seed(SeedArgs {
        database_url: url.clone(),
        events: 1000,
        clients: 2,
        seed: 25,
    })
    .await
    .expect("seeding the log");
    let mut log = Log::read(&url).await.expect("reading the log");
    // The seed appends without keys. Each of its commands' appends gets a mix key,
    // as the mix's do, and the ledger the acknowledgement the mix would have
    // recorded for it (every other one after a retry). The SLA watcher's appends
    // carry no key, as in a real run.
    let mut ledger: Vec<Record> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for e in &mut log.events {
        if e.metadata["actor"] == yiwang::sla::watcher::ACTOR {
            continue;
        }
        let corr = e.metadata["correlation_id"]
            .as_str()
            .expect("a correlation id")
            .to_string();
        let key = format!("{KEY_PREFIX}{corr}");
        e.metadata["idempotency_key"] = json!(key);
        let i = *at.entry(key.clone()).or_insert_with(|| {
            ledger.push(Record {
                key: key.clone(),
                action: e.event_type.clone(),
                outcome: Outcome::Unresolved,
                attempts: 1 + (ledger.len() % 2) as u32,
            });
            ledger.len() - 1
        });
        ledger[i].outcome = Outcome::Acked {
            ticket: e.stream_id,
            version: e.version,
        };
    }
    // One subscriber from the start of the log, one joining half-way (the first
    // position it sees is wherever the feed was when it connected).
    let positions: Vec<i64> = log.events.iter().map(|e| e.position).collect();
    let sse = vec![positions.clone(), positions[positions.len() / 2..].to_vec()];
    let fx = Fixture {
        dir,
        url,
        log,
        ledger,
        sse,
    };
    let clean = judge(&fx.log, &fx.ledger, &fx.sse);
    assert!(
        clean.ok(),
        "the seeded log must pass before a violation is seeded: {:?}",
        clean.problems
    );
    fx
}

impl Fixture {
    fn judge(&self) -> Findings {
        judge(&self.log, &self.ledger, &self.sse)
    }

    /// The indexes of the events of the `n`th acknowledged append (in ledger order)
    /// and its record.
    fn append(&self, n: usize) -> (usize, Vec<usize>) {
        let (r, rec) = self
            .ledger
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r.outcome, Outcome::Acked { .. }))
            .nth(n)
            .expect("enough acknowledged commands");
        let evs = self
            .log
            .events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.metadata["idempotency_key"] == rec.key.as_str())
            .map(|(i, _)| i)
            .collect();
        (r, evs)
    }

    fn set_key(&mut self, events: &[usize], key: &str) {
        for &i in events {
            self.log.events[i].metadata["idempotency_key"] = json!(key);
        }
    }
}

/// Asserts that `f` reports a problem containing `needle`, and shows them all if not.
fn reported(f: &Findings, needle: &str) {
    assert!(
        f.problems.iter().any(|p| p.contains(needle)),
        "expected a problem containing {needle:?}; the check reported {:?}",
        f.problems
    );
}

#[tokio::test]
async fn a_clean_log_passes_with_something_counted_in_every_column() {
    let fx = fixture("clean").await;
    let f = fx.judge();
    assert!(f.ok(), "{:?}", f.problems);
    for what in [
        "events in the log",
        "tickets",
        "acknowledged commands",
        "acknowledged after a retry",
        "SLA events",
        "SSE subscribers",
        "SSE events received",
    ] {
        assert!(
            f.counts.get(what).copied().unwrap_or(0) > 0,
            "{what} is 0: the controls below would test a vacuous log ({:?})",
            f.counts
        );
    }
}

#[tokio::test]
async fn a_lost_acknowledgement_is_reported() {
    let mut fx = fixture("lost").await;
    // The command was acknowledged; no event in the log carries its key.
    let (_, evs) = fx.append(3);
    fx.set_key(&evs, "someone-else");
    reported(&fx.judge(), "LOST:");
}

#[tokio::test]
async fn a_key_applied_twice_in_one_ticket_is_reported() {
    let mut fx = fixture("twice-here").await;
    // Two appends of one ticket carry one key: the command was applied twice.
    let (r, first) = fx.append(0);
    let stream = fx.log.events[first[0]].stream_id;
    let (_, second) = (1..)
        .map(|n| fx.append(n))
        .find(|(_, evs)| fx.log.events[evs[0]].stream_id == stream)
        .expect("a ticket with two commands");
    let key = fx.ledger[r].key.clone();
    fx.set_key(&second, &key);
    // Its own record now says it was never applied: only the double counts here.
    reported(&fx.judge(), "applied more than once");
}

#[tokio::test]
async fn a_key_applied_to_two_tickets_is_reported() {
    let mut fx = fixture("twice-there").await;
    let (r, first) = fx.append(0);
    let stream = fx.log.events[first[0]].stream_id;
    let (_, other) = (1..)
        .map(|n| fx.append(n))
        .find(|(_, evs)| fx.log.events[evs[0]].stream_id != stream)
        .expect("a command on another ticket");
    let key = fx.ledger[r].key.clone();
    fx.set_key(&other, &key);
    reported(&fx.judge(), "appended to two tickets");
}

#[tokio::test]
async fn a_refused_command_that_left_events_is_reported() {
    let mut fx = fixture("refused").await;
    let (r, _) = fx.append(5);
    fx.ledger[r].outcome = Outcome::Refused {
        status: 409,
        expected: true,
    };
    reported(&fx.judge(), "was refused with 409 but left events");
}

#[tokio::test]
async fn an_unresolved_command_applied_twice_is_reported() {
    let mut fx = fixture("unresolved").await;
    let (r, first) = fx.append(0);
    let stream = fx.log.events[first[0]].stream_id;
    let (_, second) = (1..)
        .map(|n| fx.append(n))
        .find(|(_, evs)| fx.log.events[evs[0]].stream_id == stream)
        .expect("a ticket with two commands");
    let key = fx.ledger[r].key.clone();
    fx.set_key(&second, &key);
    fx.ledger[r].outcome = Outcome::Unresolved;
    reported(&fx.judge(), "unresolved, and applied more than once");
}

#[tokio::test]
async fn a_key_the_mix_never_sent_is_reported() {
    let mut fx = fixture("unsent").await;
    let (r, _) = fx.append(2);
    fx.ledger.remove(r);
    reported(&fx.judge(), "was never sent by the mix");
}

#[tokio::test]
async fn a_view_that_is_not_the_fold_of_its_events_is_reported() {
    let mut fx = fixture("view").await;
    let id = fx.log.events[0].stream_id;
    let view = fx.log.views.get_mut(&id).expect("a view");
    view.doc["version"] = json!(view.version + 1);
    reported(&fx.judge(), "is not what its");
}

#[tokio::test]
async fn a_view_at_another_head_is_reported() {
    let mut fx = fixture("head").await;
    let id = fx.log.events[0].stream_id;
    fx.log.views.get_mut(&id).expect("a view").head_hash = "0".repeat(64);
    reported(&fx.judge(), "head hash is not the last event's");
}

#[tokio::test]
async fn a_ticket_without_a_view_is_reported() {
    let mut fx = fixture("noview").await;
    let id = fx.log.events[0].stream_id;
    fx.log.views.remove(&id);
    reported(&fx.judge(), "has events but no ticket view");
}

#[tokio::test]
async fn a_version_missing_from_a_stream_is_reported() {
    let mut fx = fixture("gap").await;
    let third = fx
        .log
        .events
        .iter()
        .find(|e| e.version == 3)
        .expect("a ticket with three events")
        .stream_id;
    fx.log
        .events
        .retain(|e| !(e.stream_id == third && e.version == 2));
    reported(&fx.judge(), "has version 3, expected 2");
}

#[tokio::test]
async fn an_sla_event_appended_twice_is_reported() {
    let mut fx = fixture("sla").await;
    let i = fx
        .log
        .events
        .iter()
        .position(|e| e.event_type.starts_with("Sla"))
        .expect("an SLA event in the seeded log");
    // The same warning or breach again, as a second watcher would have appended it
    // right after the first: the ticket's later events move up one version.
    let mut again = fx.log.events[i].clone();
    again.version += 1;
    let stream = again.stream_id;
    for e in fx.log.events.iter_mut().skip(i + 1) {
        if e.stream_id == stream {
            e.version += 1;
        }
    }
    fx.log.events.insert(i + 1, again);
    reported(&fx.judge(), "appended twice");
}

#[tokio::test]
async fn a_broken_hash_chain_is_reported() {
    let fx = fixture("chain").await;
    // An event's payload edited in place, under the hash that no longer covers it.
    let pool = sqlx::SqlitePool::connect(&fx.url)
        .await
        .expect("the database");
    sqlx::raw_sql(
        "DROP TRIGGER events_no_update; \
         UPDATE events SET data = json_set(data, '$.title', '没有垃圾') \
         WHERE position = (SELECT MIN(position) FROM events)",
    )
    .execute(&pool)
    .await
    .expect("tampering with the log");
    pool.close().await;
    let log = Log::read(&fx.url).await.expect("reading the log again");
    reported(&judge(&log, &fx.ledger, &fx.sse), "yiwang verify:");
}

#[tokio::test]
async fn an_sse_gap_is_reported() {
    let mut fx = fixture("sse-gap").await;
    let s = &mut fx.sse[1];
    let mid = s.len() / 2;
    s.remove(mid);
    reported(&fx.judge(), "SSE subscriber 1: between positions");
}

#[tokio::test]
async fn an_sse_reorder_is_reported() {
    let mut fx = fixture("sse-order").await;
    let s = &mut fx.sse[0];
    let mid = s.len() / 2;
    s.swap(mid, mid + 1);
    reported(&fx.judge(), "SSE subscriber 0 got position");
}

#[tokio::test]
async fn an_sse_position_not_in_the_log_is_reported() {
    let mut fx = fixture("sse-extra").await;
    let last = *fx.sse[0].last().expect("positions");
    // A position past the log's head: delivered, but nothing was appended there.
    fx.sse[0].push(last + 10);
    reported(&fx.judge(), "or got ones not in the log");
}

#[tokio::test]
async fn an_sse_subscriber_that_received_nothing_is_reported() {
    let mut fx = fixture("sse-none").await;
    fx.sse[1].clear();
    reported(&fx.judge(), "SSE subscriber 1 received nothing");
}
