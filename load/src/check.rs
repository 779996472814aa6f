//! The invariants of issue 5, held against the database after a run:
//!
//! 1. every acknowledged command's events are in the log exactly once: one append
//!    (one correlation id, contiguous versions) in the acknowledged ticket, ending
//!    at the acknowledged version, and no other append carries its key;
//! 2. a refused command left no event; an unresolved one at most one append; the
//!    log holds no mix key the mix never sent;
//! 3. every stream's versions run 1..n, and folding its events gives exactly the
//!    stored ticket view (state, counters, deadlines: the whole document) at the
//!    stored head hash;
//! 4. each SLA warning and breach (stream, deadline, due time) is in the log once;
//! 5. `yiwang verify`'s hash-chain walk finds nothing;
//! 6. every SSE subscriber saw positions in increasing order, each of them in the
//!    log, with none of the log's positions between its first and its last missing
//!    (it starts at the end of the feed, so its first is wherever that was); a
//!    subscriber that received nothing is a problem, not a pass.
//!
//! "The projections equal a rebuild" needs the service: see `faults::projections_match`.
//! [`Log::read`] reads the database once; [`judge`] is pure, and `check_tests.rs`
//! seeds each violation into a real log to show it is reported (issue 25).

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use uuid::Uuid;
use yiwang::domain::events::TicketEvent;
use yiwang::domain::ticket::Ticket;
use yiwang::store::RecordedEvent;

use crate::mix::{KEY_PREFIX, Outcome, Record};

/// What the check found: problems (empty when every invariant holds) and counts.
#[derive(Debug, Default)]
pub struct Findings {
    pub problems: Vec<String>,
    pub counts: BTreeMap<&'static str, u64>,
}

impl Findings {
    fn problem(&mut self, p: String) {
        self.problems.push(p);
    }

    fn add(&mut self, what: &'static str, n: u64) {
        *self.counts.entry(what).or_default() += n;
    }

    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn json(&self) -> Value {
        json!({
            "ok": self.ok(),
            "problems": self.problems.iter().take(50).collect::<Vec<_>>(),
            "problem_count": self.problems.len(),
            "counts": self.counts,
        })
    }

    pub fn print(&self, label: &str) {
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!("{label}: {}", counts.join(", "));
        if self.ok() {
            println!("{label}: every invariant holds");
        } else {
            println!("{label}: {} PROBLEMS", self.problems.len());
            for p in self.problems.iter().take(20) {
                println!("  - {p}");
            }
        }
    }
}

/// One append as the log shows it: the events of one key.
struct Batch {
    stream: Uuid,
    versions: Vec<i64>,
    correlations: HashSet<String>,
}

/// A ticket view as stored: what invariant 3 compares the fold with.
#[derive(Clone, Debug)]
pub struct View {
    pub state: String,
    pub version: i64,
    /// The stored document (`Value::Null` when it is not JSON).
    pub doc: Value,
    pub head_hash: String,
}

/// Everything the check reads from the database, read once with nothing writing:
/// the whole log in position order, the view of each of its streams, and what
/// `yiwang verify` found. [`judge`] holds it against the ledger.
pub struct Log {
    pub events: Vec<RecordedEvent>,
    pub views: HashMap<Uuid, View>,
    /// `yiwang verify`'s summary when it found something; None when it did not.
    pub verify_problem: Option<String>,
}

impl Log {
    pub async fn read(url: &str) -> Result<Log> {
        let store = yiwang::store::open(url, false)
            .await
            .context("opening the database for the check")?;
        let mut events: Vec<RecordedEvent> = Vec::new();
        let mut after = 0;
        loop {
            let page = store.read_all(after, 5000).await?;
            let Some(last) = page.last() else { break };
            after = last.position;
            events.extend(page);
        }
        let streams: HashSet<Uuid> = events.iter().map(|e| e.stream_id).collect();
        let mut views = HashMap::new();
        for id in streams {
            if let Some(row) = yiwang::repo::tickets::ticket_view(&store.pool(), id).await? {
                views.insert(
                    id,
                    View {
                        state: row.state,
                        version: row.version,
                        doc: serde_json::from_str(&row.doc).unwrap_or(Value::Null),
                        head_hash: row.head_hash,
                    },
                );
            }
        }
        let report = yiwang::verify::run(&store.pool()).await?;
        let verify_problem = (!report.ok()).then(|| report.summary());
        Ok(Log {
            events,
            views,
            verify_problem,
        })
    }
}

/// Reads the log and holds it against the ledger and what the SSE subscribers saw.
pub async fn check(url: &str, ledger: &[Record], sse: &[Vec<i64>]) -> Result<Findings> {
    let log = Log::read(url).await?;
    Ok(judge(&log, ledger, sse))
}

/// The invariants of this module's head, held against a log already read. Pure, so
/// that the tests can seed each violation into a real log and see it reported.
pub fn judge(log: &Log, ledger: &[Record], sse: &[Vec<i64>]) -> Findings {
    let mut f = Findings::default();
    f.add("events in the log", log.events.len() as u64);
    judge_ledger(&mut f, &log.events, ledger);
    judge_streams(&mut f, log);
    // 5: the hash chains.
    if let Some(p) = &log.verify_problem {
        f.problem(format!("yiwang verify: {p}"));
    }
    judge_sse(&mut f, &log.events, sse);
    f
}

/// 1, 2: the ledger against the keys in the log.
fn judge_ledger(f: &mut Findings, events: &[RecordedEvent], ledger: &[Record]) {
    let mut by_key: HashMap<&str, Batch> = HashMap::new();
    for e in events {
        let Some(key) = e.metadata.get("idempotency_key").and_then(Value::as_str) else {
            continue;
        };
        if !key.starts_with(KEY_PREFIX) {
            continue;
        }
        let corr = e
            .metadata
            .get("correlation_id")
            .map(Value::to_string)
            .unwrap_or_default();
        let b = by_key.entry(key).or_insert_with(|| Batch {
            stream: e.stream_id,
            versions: Vec::new(),
            correlations: HashSet::new(),
        });
        if b.stream != e.stream_id {
            f.problem(format!(
                "key {key} appended to two tickets, {} and {}",
                b.stream, e.stream_id
            ));
        }
        b.versions.push(e.version);
        b.correlations.insert(corr);
    }
    let mut sent: HashSet<&str> = HashSet::new();
    for r in ledger {
        sent.insert(&r.key);
        let batch = by_key.get(r.key.as_str());
        let one_append = |b: &Batch| {
            b.correlations.len() == 1 && b.versions.windows(2).all(|w| w[1] == w[0] + 1)
        };
        match (&r.outcome, batch) {
            (Outcome::Acked { ticket, version }, Some(b)) => {
                f.add("acknowledged commands", 1);
                if r.attempts > 1 {
                    f.add("acknowledged after a retry", 1);
                }
                if !one_append(b) {
                    f.problem(format!(
                        "{} {} (key {}) applied more than once: versions {:?} in {} appends",
                        r.action,
                        ticket,
                        r.key,
                        b.versions,
                        b.correlations.len()
                    ));
                } else if b.stream != *ticket || b.versions.last() != Some(version) {
                    f.problem(format!(
                        "{} (key {}) acknowledged as {ticket} v{version}, but the log has it in {} at versions {:?}",
                        r.action, r.key, b.stream, b.versions
                    ));
                }
            }
            (Outcome::Acked { ticket, version }, None) => f.problem(format!(
                "LOST: {} (key {}) was acknowledged as {ticket} v{version}; no event carries its key",
                r.action, r.key
            )),
            (Outcome::Refused { status, expected }, b) => {
                f.add(
                    if *expected {
                        "refused as intended"
                    } else {
                        "refused unexpectedly"
                    },
                    1,
                );
                if let Some(b) = b {
                    f.problem(format!(
                        "{} (key {}) was refused with {status} but left events {:?} in {}",
                        r.action, r.key, b.versions, b.stream
                    ));
                }
            }
            (Outcome::Unresolved, b) => {
                f.add("unresolved", 1);
                if let Some(b) = b.filter(|b| !one_append(b)) {
                    f.problem(format!(
                        "{} (key {}) unresolved, and applied more than once: versions {:?}",
                        r.action, r.key, b.versions
                    ));
                }
            }
        }
    }
    for (key, b) in &by_key {
        if !sent.contains(key) {
            f.problem(format!(
                "key {key} in the log (ticket {}, versions {:?}) was never sent by the mix",
                b.stream, b.versions
            ));
        }
    }
}

/// 3, 4: every stream folded against its view; SLA events once.
fn judge_streams(f: &mut Findings, log: &Log) {
    let mut streams: BTreeMap<Uuid, Vec<&RecordedEvent>> = BTreeMap::new();
    for e in &log.events {
        streams.entry(e.stream_id).or_default().push(e);
    }
    f.add("tickets", streams.len() as u64);
    for (id, evs) in &streams {
        let mut state: Option<Ticket> = None;
        let mut sla: HashSet<(String, String, String)> = HashSet::new();
        let mut broken = false;
        for (i, e) in evs.iter().enumerate() {
            if e.version != i as i64 + 1 {
                f.problem(format!(
                    "ticket {id}: event {} has version {}, expected {}",
                    e.position,
                    e.version,
                    i + 1
                ));
                broken = true;
                break;
            }
            if e.event_type.starts_with("Sla") {
                f.add("SLA events", 1);
                let k = (
                    e.event_type.clone(),
                    e.data
                        .get("deadline")
                        .map(Value::to_string)
                        .unwrap_or_default(),
                    e.data
                        .get("due_at")
                        .map(Value::to_string)
                        .unwrap_or_default(),
                );
                if !sla.insert(k.clone()) {
                    f.problem(format!(
                        "ticket {id}: {} for {} due {} appended twice",
                        k.0, k.1, k.2
                    ));
                }
            }
            match TicketEvent::from_parts(&e.event_type, e.schema_version, &e.data) {
                Ok(ev) => state = Some(Ticket::apply(state, *id, &ev, e.occurred_at)),
                Err(err) => {
                    f.problem(format!("event {} unreadable: {err}", e.position));
                    broken = true;
                    break;
                }
            }
        }
        if broken {
            continue;
        }
        let Some(folded) = state else { continue };
        let Some(view) = log.views.get(id) else {
            f.problem(format!("ticket {id} has events but no ticket view"));
            continue;
        };
        match serde_json::to_value(&folded) {
            Ok(want) if want == view.doc => {}
            Ok(_) => f.problem(format!(
                "ticket {id}: the stored view ({} v{}) is not what its {} events give ({:?} v{})",
                view.state,
                view.version,
                evs.len(),
                folded.state,
                folded.version
            )),
            Err(e) => f.problem(format!("ticket {id}: the fold does not serialise: {e}")),
        }
        if evs.last().map(|e| e.hash.as_str()) != Some(view.head_hash.as_str()) {
            f.problem(format!(
                "ticket {id}: the view's head hash is not the last event's"
            ));
        }
    }
}

/// 6: what the SSE subscribers saw. A subscriber that received nothing fails the
/// check: "no gap" over no events would prove nothing.
fn judge_sse(f: &mut Findings, events: &[RecordedEvent], sse: &[Vec<i64>]) {
    let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    f.add("SSE subscribers", sse.len() as u64);
    for (i, seen) in sse.iter().enumerate() {
        f.add("SSE events received", seen.len() as u64);
        if let Some(w) = seen.windows(2).find(|w| w[1] <= w[0]) {
            f.problem(format!(
                "SSE subscriber {i} got position {} after {}",
                w[1], w[0]
            ));
            continue;
        }
        let (Some(first), Some(last)) = (seen.first(), seen.last()) else {
            f.problem(format!(
                "SSE subscriber {i} received nothing: its order and gaps went unchecked"
            ));
            continue;
        };
        let expected: Vec<i64> = positions
            .iter()
            .copied()
            .filter(|p| p >= first && p <= last)
            .collect();
        if &expected != seen {
            let got: HashSet<i64> = seen.iter().copied().collect();
            let missing: Vec<i64> = expected
                .iter()
                .copied()
                .filter(|p| !got.contains(p))
                .collect();
            f.problem(format!(
                "SSE subscriber {i}: between positions {first} and {last} it missed {} events (first {:?}) or got ones not in the log",
                missing.len(),
                missing.iter().take(5).collect::<Vec<_>>()
            ));
        }
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
