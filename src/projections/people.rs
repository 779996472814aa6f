//! The `people_stats` projection: per person, the figures of the grid workers'
//! appraisal that townships run (威海经技区 28号, 基层为主) and of the handlers, by
//! business day and the unit of the person's token, for `GET /api/v1/stats/people`.
//!
//! A person is the actor recorded with an event (its metadata: user and unit).
//! Each ticket keeps a small document ([`Doc`]); what it counts is computed from
//! the document alone ([`contribution`]), so a batch subtracts what its tickets
//! counted before and adds what they count after, and a rebuild from zero adds what
//! every ticket counts at the end: the two give the same rows. What is counted:
//!
//! - `reports`: the grid reports (source `grid`) a person accepted, on the day of
//!   acceptance, under the unit of their token (a grid worker's grid);
//! - `valid_reports`: those of them not closed as a duplicate or invalid (a report
//!   withdrawn by the citizen stays valid: the grid worker found something);
//! - `self_handled`: those fixed on the spot (处置 by the reporter: the report was
//!   accepted with `self_handled`, whose `TicketHandled` the grid worker recorded);
//! - `handled`: the handlings (`TicketHandled`) a person recorded, on the day of the
//!   handling, under their token's unit (a grid worker's fix on the spot included);
//! - `on_time`: those at or before the handle deadline in force then (or with none);
//! - `verification_failures`: those handlings whose result failed verification
//!   (核查不通过), counted on the handling's day: a grid worker's are the fixes
//!   on the spot that failed, a handler's the results sent back for rework.
//!
//! Events whose type starts with `Appraisal` are not ticket events: skipped
//! silently. The SQL is in `repo::people`.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::daily::day_of;
use super::facts::micros;
use super::{Batch, Projection};
use crate::domain::{CloseCode, DecodeError, Source, TicketEvent};
use crate::repo::people::{self as repo, Counts, Key, Mode, NCOLS};
use crate::store::{Pool, RecordedEvent, Store, StoreError};

pub const NAME: &str = "people_stats";

/// Events read per query by a rebuild.
const REBUILD_BATCH: i64 = 20_000;

/// A person as the log records them: the user and the unit of their token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Person {
    pub person: String,
    pub unit: String,
}

impl Person {
    /// The actor of an event, from its metadata (`actor`, `unit`).
    pub fn of(metadata: &serde_json::Value) -> Person {
        let s = |k: &str| metadata[k].as_str().unwrap_or_default().to_string();
        Person {
            person: s("actor"),
            unit: s("unit"),
        }
    }
}

/// One handling (`TicketHandled`) of a ticket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handling {
    pub by: Person,
    pub day: i64,
    pub on_time: bool,
    /// Its result failed verification.
    pub failed: bool,
}

/// What the projection keeps about one ticket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doc {
    /// Who reported it, when it is a grid report.
    pub reporter: Option<Person>,
    pub reported_day: i64,
    pub self_handled: bool,
    /// Closed as a duplicate or invalid.
    pub invalid: bool,
    /// The handle deadline in force (µs), if any.
    pub due: Option<i64>,
    pub handlings: Vec<Handling>,
}

/// Counter slots, by `repo::people::COLUMNS`.
const REPORTS: usize = 0;
const VALID: usize = 1;
const SELF_HANDLED: usize = 2;
const HANDLED: usize = 3;
const ON_TIME: usize = 4;
const FAILURES: usize = 5;

/// Folds one event of a ticket into its document (None: not a ticket seen
/// accepted). `by` is the event's actor.
pub fn apply(doc: Option<Doc>, ev: &TicketEvent, at: DateTime<Utc>, by: Person) -> Option<Doc> {
    let at = micros(at);
    if let TicketEvent::TicketAccepted(a) = ev {
        return Some(Doc {
            reporter: (a.source == Source::Grid).then_some(by),
            reported_day: day_of(at),
            ..Doc::default()
        });
    }
    let mut d = doc?;
    match ev {
        TicketEvent::TicketAssigned(a) if !a.to_centre => d.due = a.handle_due_at.map(micros),
        TicketEvent::TicketReturned(_) => d.due = None,
        TicketEvent::ExtensionDecided(x) => {
            if let (true, Some(due)) = (x.approved, x.handle_due_at) {
                d.due = Some(micros(due));
            }
        }
        TicketEvent::TicketHandled(h) => {
            if h.self_handled && d.handlings.is_empty() {
                d.self_handled = true;
            }
            d.handlings.push(Handling {
                by,
                day: day_of(at),
                on_time: d.due.is_none_or(|due| at <= due),
                failed: false,
            });
        }
        TicketEvent::VerificationFailed(v) => {
            if let Some(h) = d.handlings.last_mut() {
                h.failed = true;
            }
            d.due = Some(micros(v.handle_due_at));
        }
        TicketEvent::TicketClosed(c) => {
            d.invalid = matches!(c.code, CloseCode::Duplicate | CloseCode::Invalid);
        }
        _ => {}
    }
    Some(d)
}

/// What a ticket's document counts, times `sign`, added to `out`.
pub fn contribution(d: &Doc, sign: i64, out: &mut HashMap<Key, Counts>) {
    let mut add = |p: &Person, day: i64, slot: usize| {
        let c = out
            .entry((day, p.unit.clone(), p.person.clone()))
            .or_insert([0; NCOLS]);
        c[slot] += sign;
    };
    if let Some(r) = &d.reporter {
        add(r, d.reported_day, REPORTS);
        if !d.invalid {
            add(r, d.reported_day, VALID);
        }
        if d.self_handled {
            add(r, d.reported_day, SELF_HANDLED);
        }
    }
    for h in &d.handlings {
        add(&h.by, h.day, HANDLED);
        if h.on_time {
            add(&h.by, h.day, ON_TIME);
        }
        if h.failed {
            add(&h.by, h.day, FAILURES);
        }
    }
}

/// The changes with nothing in them dropped, in a fixed order.
fn net(out: HashMap<Key, Counts>) -> Vec<(Key, Counts)> {
    let mut v: Vec<(Key, Counts)> = out
        .into_iter()
        .filter(|(_, c)| c.iter().any(|&n| n != 0))
        .collect();
    v.sort_unstable();
    v
}

/// An event this projection reads: a ticket event of a known type and version.
/// Appraisal events are skipped silently, other unknown ones with a warning; one
/// newer than this build reads stops the projection (as `unit_stats` does).
fn decode(
    position: i64,
    event_type: &str,
    decoded: Result<TicketEvent, DecodeError>,
) -> Result<Option<TicketEvent>, StoreError> {
    if event_type.starts_with("Appraisal") {
        return Ok(None);
    }
    match decoded {
        Ok(ev) => Ok(Some(ev)),
        Err(err @ DecodeError::TooNew { .. }) => Err(StoreError::Unreadable(format!(
            "{NAME} stops at the event at position {position}: {err}"
        ))),
        Err(err) => {
            tracing::warn!(position, r#type = %event_type, error = %err, "{NAME} skips an event it cannot read");
            Ok(None)
        }
    }
}

pub struct PeopleStats {
    pool: Pool,
}

impl PeopleStats {
    pub fn new(pool: Pool) -> PeopleStats {
        PeopleStats { pool }
    }

    fn serialize(docs: &HashMap<Uuid, Doc>, ids: &HashSet<Uuid>) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = ids
            .iter()
            .filter_map(|id| docs.get(id).map(|d| (id, d)))
            .map(|(id, d)| {
                // Plain structs of strings, numbers and flags: this cannot fail.
                let doc = serde_json::to_string(d).expect("people docs serialize");
                (id.to_string(), doc)
            })
            .collect();
        out.sort_unstable();
        out
    }
}

fn now_micros() -> i64 {
    micros(Utc::now())
}

#[async_trait]
impl Projection for PeopleStats {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn checkpoint(&self) -> Result<i64, StoreError> {
        crate::repo::projections::read_checkpoint(&self.pool, NAME, now_micros()).await
    }

    async fn reset(&self) -> Result<(), StoreError> {
        crate::repo::projections::reset(&self.pool, &repo::TABLES, NAME).await
    }

    fn forget(&self) {}

    async fn rebuild(
        &self,
        store: &Store,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, StoreError> {
        let mut docs: HashMap<Uuid, Doc> = HashMap::new();
        let (mut after, mut count) = (0i64, 0u64);
        loop {
            let batch = store.read_all(after, REBUILD_BATCH).await?;
            let Some(last) = batch.last() else { break };
            after = last.position;
            count += batch.len() as u64;
            for e in &batch {
                let decoded = TicketEvent::from_parts(&e.event_type, e.schema_version, &e.data);
                let Some(ev) = decode(e.position, &e.event_type, decoded)? else {
                    continue;
                };
                let cur = docs.remove(&e.stream_id);
                if let Some(d) = apply(cur, &ev, e.occurred_at, Person::of(&e.metadata)) {
                    docs.insert(e.stream_id, d);
                }
            }
            progress(count);
        }
        let mut counts = HashMap::new();
        for d in docs.values() {
            contribution(d, 1, &mut counts);
        }
        let ids: HashSet<Uuid> = docs.keys().copied().collect();
        let written = Self::serialize(&docs, &ids);
        repo::write(
            &self.pool,
            NAME,
            Mode::Replace,
            (after, now_micros()),
            &written,
            &net(counts),
        )
        .await?;
        Ok(count)
    }

    async fn apply(&self, from: i64, events: Vec<RecordedEvent>) -> Result<Batch, StoreError> {
        let to = events.last().map_or(from, |e| e.position);
        let count = events.len();
        let mut decoded = Vec::with_capacity(events.len());
        for e in events {
            let ev = TicketEvent::from_parts(&e.event_type, e.schema_version, &e.data);
            if let Some(ev) = decode(e.position, &e.event_type, ev)? {
                decoded.push((e.stream_id, e.occurred_at, Person::of(&e.metadata), ev));
            }
        }
        let ids: HashSet<Uuid> = decoded.iter().map(|(id, ..)| *id).collect();
        let wanted: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let mut docs: HashMap<Uuid, Doc> = HashMap::new();
        for (id, doc) in repo::load_docs(&self.pool, &wanted).await? {
            let id = Uuid::parse_str(&id)
                .map_err(|e| StoreError::Corrupt(format!("people_tickets ticket {id:?}: {e}")))?;
            let doc: Doc = serde_json::from_str(&doc)
                .map_err(|e| StoreError::Corrupt(format!("people_tickets doc: {e}")))?;
            docs.insert(id, doc);
        }
        let mut counts = HashMap::new();
        for d in docs.values() {
            contribution(d, -1, &mut counts);
        }
        let mut changed = HashSet::new();
        for (id, at, by, ev) in decoded {
            let cur = docs.remove(&id);
            if let Some(d) = apply(cur, &ev, at, by) {
                docs.insert(id, d);
                changed.insert(id);
            }
        }
        for d in docs.values() {
            contribution(d, 1, &mut counts);
        }
        let written = Self::serialize(&docs, &changed);
        let applied = repo::write(
            &self.pool,
            NAME,
            Mode::From(from),
            (to, now_micros()),
            &written,
            &net(counts),
        )
        .await?;
        Ok(if applied {
            Batch {
                applied: true,
                events: count,
                to,
            }
        } else {
            Batch {
                applied: false,
                events: 0,
                to: from,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn who(p: &str, u: &str) -> Person {
        Person {
            person: p.into(),
            unit: u.into(),
        }
    }

    fn accepted(source: Source) -> TicketEvent {
        TicketEvent::TicketAccepted(Accepted {
            number: "N".into(),
            source,
            category: "c".into(),
            urgency: Urgency::Normal,
            title: "t".into(),
            description: "d".into(),
            location: Location::default(),
            reporter_ref: None,
            related_to: None,
            suggested_unit: None,
            centre: "hg".into(),
            photos: vec![],
        })
    }

    fn handled(self_handled: bool) -> TicketEvent {
        TicketEvent::TicketHandled(Handled {
            result: "r".into(),
            photos: vec![],
            self_handled,
            legacy_photo_names: vec![],
        })
    }

    /// Appraisal events share the feed; they are not a ticket's and pass unread.
    #[test]
    fn appraisal_events_are_skipped_silently() {
        let data = serde_json::json!({"unit": "hg-zfzd"});
        for ty in ["AppraisalEntryRecorded", "AppraisalBulletinPublished"] {
            let decoded = TicketEvent::from_parts(ty, 1, &data);
            assert!(decoded.is_err());
            assert!(matches!(decode(7, ty, decoded), Ok(None)), "{ty}");
        }
        let newer = TicketEvent::from_parts("TicketAccepted", 99, &data);
        assert!(decode(8, "TicketAccepted", newer).is_err(), "too new stops");
    }

    /// A grid report fixed on the spot whose fix fails verification, then is done
    /// again late by a squad's handler, and a hotline ticket: what each person counts.
    #[test]
    fn a_fix_that_fails_and_a_late_handling_count_for_their_people() {
        let gw = who("gw", "hg-01-g01");
        let h = who("h", "hg-zfzd");
        let t0 = at("2026-10-09T01:00:00Z");
        let d = apply(None, &accepted(Source::Grid), t0, gw.clone());
        let d = apply(d, &handled(true), t0, gw.clone());
        let d = apply(
            d,
            &TicketEvent::VerificationFailed(VerificationFailed {
                note: "n".into(),
                handle_due_at: at("2026-10-10T01:00:00Z"),
            }),
            at("2026-10-09T03:00:00Z"),
            who("disp", "hg"),
        );
        let d = apply(d, &handled(false), at("2026-10-12T01:00:00Z"), h.clone()).unwrap();
        let mut out = HashMap::new();
        contribution(&d, 1, &mut out);
        let day = day_of(micros(t0));
        let day2 = day_of(micros(at("2026-10-12T01:00:00Z")));
        assert_eq!(
            out[&(day, "hg-01-g01".into(), "gw".into())],
            [1, 1, 1, 1, 1, 1],
            "report, valid, fixed on the spot, handled on time (no deadline), failed"
        );
        assert_eq!(
            out[&(day2, "hg-zfzd".into(), "h".into())],
            [0, 0, 0, 1, 0, 0]
        );
        // Closed as a duplicate: the report stays a report, no longer a valid one.
        let d = apply(
            Some(d),
            &TicketEvent::TicketClosed(Closed {
                code: CloseCode::Duplicate,
                duplicate_of: Some(Uuid::nil()),
            }),
            at("2026-10-13T01:00:00Z"),
            who("disp", "hg"),
        )
        .unwrap();
        let mut after = HashMap::new();
        contribution(&d, 1, &mut after);
        assert_eq!(after[&(day, "hg-01-g01".into(), "gw".into())][..2], [1, 0]);
        // Taken away, everything cancels.
        contribution(&d, -1, &mut after);
        assert!(net(after).is_empty());
        // A hotline ticket reports nothing for its agent.
        let hot = apply(None, &accepted(Source::Hotline), t0, who("a", "etdz")).unwrap();
        let mut none = HashMap::new();
        contribution(&hot, 1, &mut none);
        assert!(net(none).is_empty());
    }
}
