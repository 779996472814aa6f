//! `yiwang verify`: tamper evidence. Every event's hash covers its content and the
//! hash of the event before it in its stream (`store::hash`), and the ticket view
//! keeps the hash of each stream's last event. Verification walks the whole log and
//! reports each event that was
//!
//! - **edited**: its content no longer gives its recorded hash (or can no longer be
//!   read), or the stream's last event is not the head the ticket view recorded (a
//!   tail rewritten with fresh hashes);
//! - **deleted**: a version is missing from the stream (a gap, a missing first
//!   event, or fewer events than the ticket view recorded);
//! - **inserted**: its `prev_hash` does not link to the event before it (an event
//!   put in, or the one before it replaced), a second event with the same version,
//!   or events past the head the ticket view recorded.
//!
//! Each problem names the stream, the version and, when the event is there, its
//! position. The check of one stream ([`StreamCheck`]) is pure; [`run`] feeds it the
//! log in position order, a page at a time, keeping per stream only its head (not
//! the events), so a verification of a million events fits in little memory.
//!
//! The log is read straight from the `events` table, as text, so that an event whose
//! stored payload is no longer even valid JSON is reported rather than stopping the
//! run. New events may be appended while it runs: a stream whose ticket view is
//! ahead of what the pass read is read again on its own afterwards, with its view
//! read first, so a command that lands meanwhile is never taken for tampering.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::store::hash::{GENESIS, recompute};
use crate::store::{Pool, RecordedEvent, StoreError};

/// Events read per page.
const PAGE: i64 = 5_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemKind {
    Edited,
    Deleted,
    Inserted,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Edited => "edited",
            ProblemKind::Deleted => "deleted",
            ProblemKind::Inserted => "inserted",
        }
    }
}

/// One event found edited, deleted or inserted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub stream: Uuid,
    pub version: i64,
    /// The event's position; None for a deleted event (it has none any more).
    pub position: Option<i64>,
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} stream {} version {}",
            self.kind.as_str(),
            self.stream,
            self.version
        )?;
        if let Some(p) = self.position {
            write!(f, " position {p}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// What verification needs of one stored event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub position: i64,
    pub version: i64,
    pub prev_hash: String,
    pub hash: String,
    /// None when the content gives the recorded hash; else what is wrong with it.
    pub content: Option<String>,
}

impl Link {
    /// The link of an event read through the store, its hash recomputed.
    pub fn of(e: &RecordedEvent) -> Link {
        let ok = recompute(e) == e.hash;
        Link {
            position: e.position,
            version: e.version,
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
            content: (!ok).then(|| "its content does not match its hash".to_string()),
        }
    }
}

/// The head of a stream as the ticket view recorded it, in the same transaction as
/// the stream's last append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    pub version: i64,
    pub head_hash: String,
}

/// The check of one stream. Its events may come in any order (positions need not
/// follow versions across concurrent appends); each is judged once the one before it
/// is known, or at [`StreamCheck::finish`].
#[derive(Debug)]
pub struct StreamCheck {
    stream: Uuid,
    /// The next version expected in the chain.
    next: i64,
    /// The hash the next event must link to.
    head: String,
    /// Positions of the events judged so far, by version - 1.
    positions: Vec<i64>,
    /// Events that came before the one they follow.
    pending: BTreeMap<i64, Link>,
    problems: Vec<Problem>,
    events: u64,
}

impl StreamCheck {
    pub fn new(stream: Uuid) -> StreamCheck {
        StreamCheck {
            stream,
            next: 1,
            head: GENESIS.to_string(),
            positions: Vec::new(),
            pending: BTreeMap::new(),
            problems: Vec::new(),
            events: 0,
        }
    }

    /// The highest version seen so far.
    pub fn last_version(&self) -> i64 {
        self.pending
            .last_key_value()
            .map(|(v, _)| *v)
            .unwrap_or(0)
            .max(self.next - 1)
    }

    fn problem(&mut self, kind: ProblemKind, version: i64, position: Option<i64>, detail: String) {
        self.problems.push(Problem {
            kind,
            stream: self.stream,
            version,
            position,
            detail,
        });
    }

    pub fn push(&mut self, link: Link) {
        self.events += 1;
        if link.version < self.next || self.pending.contains_key(&link.version) {
            let first = usize::try_from(link.version - 1)
                .ok()
                .and_then(|i| self.positions.get(i))
                .or_else(|| self.pending.get(&link.version).map(|l| &l.position))
                .map(|p| format!(" (the first is at position {p})"))
                .unwrap_or_default();
            let v = link.version;
            self.problem(
                ProblemKind::Inserted,
                v,
                Some(link.position),
                format!("a second event with version {v}{first}"),
            );
        } else if link.version == self.next {
            self.accept(link, false);
            self.drain();
        } else {
            self.pending.insert(link.version, link);
        }
    }

    /// Judges the pending events that now follow on.
    fn drain(&mut self) {
        while let Some(l) = self.pending.remove(&self.next) {
            self.accept(l, false);
        }
    }

    /// Judges the event that comes next in the chain. After a gap its link is not
    /// judged: the deletion already explains it.
    fn accept(&mut self, link: Link, after_gap: bool) {
        if let Some(what) = &link.content {
            self.problem(
                ProblemKind::Edited,
                link.version,
                Some(link.position),
                what.clone(),
            );
        }
        if !after_gap && link.prev_hash != self.head {
            let detail = if link.version == 1 {
                "the stream's first event does not start the chain (its prev_hash is not the genesis hash)".to_string()
            } else {
                format!(
                    "its prev_hash does not link to the hash of version {}: this event was put in, or the one before it replaced",
                    link.version - 1
                )
            };
            self.problem(
                ProblemKind::Inserted,
                link.version,
                Some(link.position),
                detail,
            );
        }
        self.head = link.hash;
        self.positions.push(link.position);
        self.next = link.version + 1;
    }

    /// The problems of the stream, once all its events were pushed; `anchor` is the
    /// head its ticket view recorded, read after the events (so it cannot be behind
    /// them unless someone changed the log).
    pub fn finish(mut self, anchor: Option<&Anchor>) -> Vec<Problem> {
        while let Some((v, l)) = self.pending.pop_first() {
            for missing in self.next..v {
                self.problem(
                    ProblemKind::Deleted,
                    missing,
                    None,
                    format!(
                        "missing: the stream goes from version {} to version {v} (position {})",
                        self.next - 1,
                        l.position
                    ),
                );
            }
            self.next = v;
            self.accept(l, true);
            self.drain();
        }
        let last = self.next - 1;
        if let Some(a) = anchor {
            if a.version > last {
                let gone = missing_tail(self.stream, last, a);
                self.problems.extend(gone);
            } else if a.version < last {
                for v in a.version + 1..=last {
                    let position = usize::try_from(v - 1)
                        .ok()
                        .and_then(|i| self.positions.get(i))
                        .copied();
                    self.problem(
                        ProblemKind::Inserted,
                        v,
                        position,
                        format!(
                            "past the head the ticket view records (version {})",
                            a.version
                        ),
                    );
                }
            } else if a.head_hash != self.head && last > 0 {
                let position = self.positions.last().copied();
                self.problem(
                    ProblemKind::Edited,
                    last,
                    position,
                    "the stream's last event is not the head the ticket view recorded: the stream was rewritten"
                        .into(),
                );
            }
        }
        self.problems
    }
}

/// The events a stream that ends at version `last` lacks, when its ticket view
/// recorded `anchor`.
fn missing_tail(stream: Uuid, last: i64, anchor: &Anchor) -> Vec<Problem> {
    (last + 1..=anchor.version)
        .map(|version| Problem {
            kind: ProblemKind::Deleted,
            stream,
            version,
            position: None,
            detail: format!(
                "missing: the ticket view records version {} but the stream ends at version {last}",
                anchor.version
            ),
        })
        .collect()
}

/// The outcome of one verification.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub streams: u64,
    pub events: u64,
    /// In stream, then version order.
    pub problems: Vec<Problem>,
    pub elapsed: Duration,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The summary line.
    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        if self.ok() {
            format!(
                "verified {} events in {} streams in {secs:.2} s: every hash chain is intact",
                self.events, self.streams
            )
        } else {
            let count = |k: ProblemKind| self.problems.iter().filter(|p| p.kind == k).count();
            format!(
                "verified {} events in {} streams in {secs:.2} s: {} problem(s): {} edited, {} deleted, {} inserted",
                self.events,
                self.streams,
                self.problems.len(),
                count(ProblemKind::Edited),
                count(ProblemKind::Deleted),
                count(ProblemKind::Inserted)
            )
        }
    }
}

/// Verifies the whole log behind `pool`.
pub async fn run(pool: &Pool) -> Result<Report, StoreError> {
    let started = Instant::now();
    let mut checks: HashMap<Uuid, StreamCheck> = HashMap::new();
    let mut problems = Vec::new();
    let mut after = i64::MIN;
    loop {
        let rows = read_page(pool, after, PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.position;
        // Hashing a page is CPU work: keep it off the async workers.
        let links = tokio::task::spawn_blocking(move || {
            rows.into_iter()
                .map(StoredRow::into_link)
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("verification task failed: {e}")))?;
        for (stream, link) in links {
            match stream {
                Ok(s) => checks
                    .entry(s)
                    .or_insert_with(|| StreamCheck::new(s))
                    .push(link),
                Err(text) => problems.push(Problem {
                    kind: ProblemKind::Edited,
                    stream: Uuid::nil(),
                    version: link.version,
                    position: Some(link.position),
                    detail: format!("its stream id {text:?} is not a UUID"),
                }),
            }
        }
    }
    let mut events: u64 = checks.values().map(|c| c.events).sum();
    let anchors = read_anchors(pool).await?;
    for (id, anchor) in &anchors {
        let seen = checks.get(id).map(StreamCheck::last_version).unwrap_or(0);
        if anchor.version <= seen {
            continue;
        }
        // The view is ahead of what the pass read: the stream grew since (or lost
        // events). Read it again, after the view, and judge it on its own: now the
        // view may only be behind the stream.
        let mut check = StreamCheck::new(*id);
        let mut at_anchor = None;
        for (_, link) in read_stream(pool, *id).await? {
            if link.version == anchor.version {
                at_anchor = Some((link.hash.clone(), link.position));
            }
            check.push(link);
        }
        if let Some(old) = checks.remove(id) {
            events -= old.events;
        }
        events += check.events;
        let last = check.last_version();
        let mut found = check.finish(None);
        if last < anchor.version {
            found.extend(missing_tail(*id, last, anchor));
        } else if let Some((hash, position)) = at_anchor {
            if hash != anchor.head_hash {
                found.push(Problem {
                    kind: ProblemKind::Edited,
                    stream: *id,
                    version: anchor.version,
                    position: Some(position),
                    detail: "not the head the ticket view recorded: the stream was rewritten"
                        .into(),
                });
            }
        }
        problems.extend(found);
    }
    let streams =
        (checks.len() + anchors.keys().filter(|id| !checks.contains_key(id)).count()) as u64;
    for (id, check) in checks {
        problems.extend(check.finish(anchors.get(&id)));
    }
    problems.sort_by(|a, b| {
        (a.stream, a.version, a.kind, a.position).cmp(&(b.stream, b.version, b.kind, b.position))
    });
    Ok(Report {
        streams,
        events,
        problems,
        elapsed: started.elapsed(),
    })
}

/// An event row as stored, before anything is parsed.
struct StoredRow {
    position: i64,
    stream_id: String,
    version: i64,
    event_type: String,
    schema_version: i32,
    data: String,
    metadata: String,
    occurred_at: Result<DateTime<Utc>, String>,
    recorded_at: Result<DateTime<Utc>, String>,
    prev_hash: String,
    hash: String,
}

impl StoredRow {
    /// Parses and hashes the row; what cannot be read is a problem of its content.
    fn into_link(self) -> (Result<Uuid, String>, Link) {
        let stream = Uuid::parse_str(&self.stream_id).map_err(|_| self.stream_id.clone());
        let mut link = Link {
            position: self.position,
            version: self.version,
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
            content: None,
        };
        let parsed = (|| -> Result<RecordedEvent, String> {
            let data: Value = serde_json::from_str(&self.data)
                .map_err(|e| format!("its data is not valid JSON ({e})"))?;
            let metadata: Value = serde_json::from_str(&self.metadata)
                .map_err(|e| format!("its metadata is not valid JSON ({e})"))?;
            Ok(RecordedEvent {
                position: self.position,
                stream_id: stream.clone().unwrap_or_default(),
                version: self.version,
                event_type: self.event_type,
                schema_version: self.schema_version,
                data,
                metadata,
                occurred_at: self
                    .occurred_at
                    .map_err(|t| format!("its occurred_at {t:?} is not a time"))?,
                recorded_at: self
                    .recorded_at
                    .map_err(|t| format!("its recorded_at {t:?} is not a time"))?,
                prev_hash: self.prev_hash,
                hash: self.hash,
            })
        })();
        match parsed {
            Ok(e) => link.content = Link::of(&e).content,
            Err(what) => link.content = Some(format!("unreadable: {what}")),
        }
        (stream, link)
    }
}

fn parse_time(s: String) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| s)
}

const PG_COLUMNS: &str = "position, stream_id::text AS stream_id, version, event_type, schema_version, \
     data::text AS data, metadata::text AS metadata, occurred_at, recorded_at, prev_hash, hash";
const SQLITE_COLUMNS: &str = "position, stream_id, version, event_type, schema_version, data, metadata, \
     occurred_at, recorded_at, prev_hash, hash";

fn pg_row(r: &sqlx::postgres::PgRow) -> Result<StoredRow, sqlx::Error> {
    use sqlx::Row;
    Ok(StoredRow {
        position: r.try_get("position")?,
        stream_id: r.try_get("stream_id")?,
        version: r.try_get("version")?,
        event_type: r.try_get("event_type")?,
        schema_version: r.try_get("schema_version")?,
        data: r.try_get("data")?,
        metadata: r.try_get("metadata")?,
        occurred_at: Ok(r.try_get("occurred_at")?),
        recorded_at: Ok(r.try_get("recorded_at")?),
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

fn sqlite_row(r: &sqlx::sqlite::SqliteRow) -> Result<StoredRow, sqlx::Error> {
    use sqlx::Row;
    Ok(StoredRow {
        position: r.try_get("position")?,
        stream_id: r.try_get("stream_id")?,
        version: r.try_get("version")?,
        event_type: r.try_get("event_type")?,
        schema_version: r.try_get("schema_version")?,
        data: r.try_get("data")?,
        metadata: r.try_get("metadata")?,
        occurred_at: parse_time(r.try_get("occurred_at")?),
        recorded_at: parse_time(r.try_get("recorded_at")?),
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

/// Up to `limit` rows after `after`, in position order. Not the gap-safe feed: an
/// event that commits later below `after` is caught by the second look at its
/// stream (its ticket view is ahead of the pass).
async fn read_page(pool: &Pool, after: i64, limit: i64) -> Result<Vec<StoredRow>, StoreError> {
    Ok(match pool {
        Pool::Postgres(p) => sqlx::query(&format!(
            "SELECT {PG_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await
        .map_err(StoreError::classify)?
        .iter()
        .map(pg_row)
        .collect::<Result<_, _>>()?,
        Pool::Sqlite(p) => sqlx::query(&format!(
            "SELECT {SQLITE_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await
        .map_err(StoreError::classify)?
        .iter()
        .map(sqlite_row)
        .collect::<Result<_, _>>()?,
    })
}

async fn read_stream(
    pool: &Pool,
    id: Uuid,
) -> Result<Vec<(Result<Uuid, String>, Link)>, StoreError> {
    let rows: Vec<StoredRow> = match pool {
        Pool::Postgres(p) => sqlx::query(&format!(
            "SELECT {PG_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY version"
        ))
        .bind(id)
        .fetch_all(p)
        .await
        .map_err(StoreError::classify)?
        .iter()
        .map(pg_row)
        .collect::<Result<_, _>>()?,
        Pool::Sqlite(p) => sqlx::query(&format!(
            "SELECT {SQLITE_COLUMNS} FROM events WHERE stream_id = ? ORDER BY version"
        ))
        .bind(id.to_string())
        .fetch_all(p)
        .await
        .map_err(StoreError::classify)?
        .iter()
        .map(sqlite_row)
        .collect::<Result<_, _>>()?,
    };
    Ok(rows.into_iter().map(StoredRow::into_link).collect())
}

/// Every ticket view's (version, head hash).
async fn read_anchors(pool: &Pool) -> Result<HashMap<Uuid, Anchor>, StoreError> {
    let rows: Vec<(String, i64, String)> = match pool {
        Pool::Postgres(p) => sqlx::query_as("SELECT id::text, version, head_hash FROM ticket_view")
            .fetch_all(p)
            .await
            .map_err(StoreError::classify)?,
        Pool::Sqlite(p) => sqlx::query_as("SELECT id, version, head_hash FROM ticket_view")
            .fetch_all(p)
            .await
            .map_err(StoreError::classify)?,
    };
    Ok(rows
        .into_iter()
        .filter_map(|(id, version, head_hash)| {
            Some((Uuid::parse_str(&id).ok()?, Anchor { version, head_hash }))
        })
        .collect())
}

/// Runs a verification every `interval` in the background (the first one at once)
/// and keeps the `yiwang_verify_*` gauges.
pub fn spawn(app: std::sync::Arc<crate::app::App>, interval: Duration) {
    tokio::spawn(async move {
        loop {
            verify_and_record(&app).await;
            tokio::time::sleep(interval).await;
        }
    });
}

/// One verification, its outcome logged and put in the gauges.
pub async fn verify_and_record(app: &crate::app::App) -> Option<Report> {
    let m = &app.metrics;
    match run(&app.store.pool()).await {
        Ok(report) => {
            m.verify_last_run.set(Utc::now().timestamp() as f64);
            m.verify_last_ok.set(i64::from(report.ok()));
            m.verify_problems
                .set(i64::try_from(report.problems.len()).unwrap_or(i64::MAX));
            if report.ok() {
                tracing::info!(
                    events = report.events,
                    streams = report.streams,
                    secs = report.elapsed.as_secs_f64(),
                    "log verified: every hash chain is intact"
                );
            } else {
                tracing::error!(
                    problems = report.problems.len(),
                    "log verification found tampering: run `yiwang verify` for the list"
                );
                for p in report.problems.iter().take(20) {
                    tracing::error!(problem = %p, "tampered event");
                }
            }
            Some(report)
        }
        Err(e) => {
            tracing::warn!(error = %e, "log verification could not run");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Uuid = Uuid::from_u128(7);

    /// A well-formed chain of `n` events (hashes made up: only the links count here).
    fn chain(n: i64) -> Vec<Link> {
        let h = |v: i64| {
            if v == 0 {
                GENESIS.to_string()
            } else {
                format!("h{v}")
            }
        };
        (1..=n)
            .map(|v| Link {
                position: v * 10,
                version: v,
                prev_hash: h(v - 1),
                hash: h(v),
                content: None,
            })
            .collect()
    }

    fn check(links: &[Link], anchor: Option<(i64, &str)>) -> Vec<(ProblemKind, i64)> {
        let mut c = StreamCheck::new(S);
        for l in links {
            c.push(l.clone());
        }
        let a = anchor.map(|(version, h)| Anchor {
            version,
            head_hash: h.into(),
        });
        c.finish(a.as_ref())
            .into_iter()
            .map(|p| (p.kind, p.version))
            .collect()
    }

    #[test]
    fn an_intact_chain_has_no_problems_in_any_order() {
        let mut links = chain(5);
        assert!(check(&links, Some((5, "h5"))).is_empty());
        links.reverse();
        assert!(check(&links, Some((5, "h5"))).is_empty());
    }

    #[test]
    fn an_edited_event_is_named() {
        let mut links = chain(4);
        links[1].content = Some("its content does not match its hash".into());
        assert_eq!(check(&links, Some((4, "h4"))), [(ProblemKind::Edited, 2)]);
    }

    #[test]
    fn deleted_events_are_named_in_the_middle_at_the_start_and_at_the_end() {
        let links = chain(5);
        let without = |gone: &[i64]| -> Vec<Link> {
            links
                .iter()
                .filter(|l| !gone.contains(&l.version))
                .cloned()
                .collect()
        };
        assert_eq!(
            check(&without(&[3]), Some((5, "h5"))),
            [(ProblemKind::Deleted, 3)]
        );
        assert_eq!(
            check(&without(&[1, 2]), Some((5, "h5"))),
            [(ProblemKind::Deleted, 1), (ProblemKind::Deleted, 2)]
        );
        assert_eq!(
            check(&without(&[5]), Some((5, "h5"))),
            [(ProblemKind::Deleted, 5)]
        );
        // Without the view, a deleted last event cannot be seen; the others can.
        assert!(check(&without(&[5]), None).is_empty());
        assert_eq!(check(&without(&[3]), None), [(ProblemKind::Deleted, 3)]);
    }

    #[test]
    fn inserted_events_are_named() {
        // A forged event in place of version 3 that does not link to version 2.
        let mut links = chain(4);
        links[2].prev_hash = "forged".into();
        assert_eq!(check(&links, Some((4, "h4"))), [(ProblemKind::Inserted, 3)]);
        // A second event with an existing version.
        let mut dup = chain(3);
        dup.push(Link {
            position: 99,
            ..dup[1].clone()
        });
        assert_eq!(check(&dup, Some((3, "h3"))), [(ProblemKind::Inserted, 2)]);
        // An event appended past the head the ticket view recorded, hashes and all.
        assert_eq!(
            check(&chain(4), Some((3, "h3"))),
            [(ProblemKind::Inserted, 4)]
        );
        // A stream that does not start from the genesis hash.
        let mut first = chain(2);
        first[0].prev_hash = "x".into();
        assert_eq!(check(&first, None), [(ProblemKind::Inserted, 1)]);
    }

    #[test]
    fn a_rewritten_tail_differs_from_the_view_head() {
        assert_eq!(
            check(&chain(3), Some((3, "another"))),
            [(ProblemKind::Edited, 3)]
        );
    }

    #[test]
    fn problems_read_with_stream_version_and_position() {
        let p = Problem {
            kind: ProblemKind::Edited,
            stream: S,
            version: 2,
            position: Some(20),
            detail: "its content does not match its hash".into(),
        };
        assert_eq!(
            p.to_string(),
            format!("edited stream {S} version 2 position 20: its content does not match its hash")
        );
    }
}
