//! `yiwang verify`: tamper evidence. It reads the whole database inside one
//! snapshot (PostgreSQL: a `REPEATABLE READ` read-only transaction; SQLite: one read
//! transaction), so appends may go on meanwhile, and checks everything that decides
//! access and the figures:
//!
//! 1. **The hash chains.** Every event's hash covers its content and the hash of the
//!    event before it in its stream (`store::hash`), and the ticket view keeps the
//!    hash of each stream's last event. Each event is reported that was
//!    - **edited**: its content no longer gives its recorded hash (or can no longer
//!      be read), or the stream's last event is not the head the ticket view
//!      recorded (a tail rewritten with fresh hashes);
//!    - **deleted**: a version is missing from the stream (a gap, a missing first
//!      event, or fewer events than the ticket view recorded), or a whole stream
//!      that stored first answers (`idempotency_keys`) name has no event left;
//!    - **inserted**: its `prev_hash` does not link to the event before it, a second
//!      event with the same version, or events past the head the ticket view
//!      recorded.
//! 2. **Positions** (`reordered`): within a stream they rise with the versions (on
//!    both engines every append holds: on PostgreSQL a later version's transaction
//!    id is always larger), so two positions swapped are named; on SQLite the
//!    positions after `log_tally.dense_after` have no hole.
//! 3. **The ticket view** (`view`): authorization, masking and the queues are read
//!    from `ticket_view` (its columns and its `doc`), so each stream's events are
//!    folded again (through the upcasters, as `App::load_from_stream` does) up to the
//!    view's version and compared with the row: state, unit, co-units, centre, grid,
//!    at-centre, handler, deadlines, number, category, reporter, version and head
//!    hash. A stream with events and no view row is reported too.
//! 4. **The tally** (`uncounted`): every append adds its events to `log_tally` in its
//!    own transaction (count, streams, and an order-independent digest of
//!    `(position, stream, version)`, see `store::hash::Tally`). The log recounted
//!    must give the same, so a whole ticket deleted, positions swapped across streams
//!    or an event forged by SQL is reported even where every chain is intact.
//! 5. **Anchors** (`anchor`): each run also computes, at the gap-safe feed horizon H
//!    taken at its start, an [`Anchor`]: events, streams and digest of the events at
//!    or below H, and a hash of each stream's last event there. Nothing can be
//!    appended at or below H any more, so an anchor kept outside the database (`serve
//!    --anchor-file`) must match the database for ever after: `yiwang verify --anchor
//!    FILE` checks the last one, which catches even an owner who rewrote the tally.
//!
//! Each problem names the stream (the nil UUID when none is known), the version and
//! position when known, and what differs. The check of one stream ([`StreamCheck`])
//! and of one view ([`view_differences`]) are pure. The log is read a page at a time
//! in position order, keeping per stream only its head and positions; the views are
//! then read a page at a time with their streams' events, so memory does not grow
//! with the size of the tickets. Events are read as text, so an event whose stored
//! payload is no longer even valid JSON is reported rather than stopping the run.
//!
//! The files:
//! - `chain.rs`: the pure check of one stream's hash chain ([`StreamCheck`], [`Link`],
//!   [`ViewHead`]);
//! - `views.rs`: the fold check of each ticket view against its events
//!   ([`view_differences`], [`StoredView`]);
//! - `anchor.rs`: the [`Anchor`], its file, and its accumulation during the pass;
//! - `read.rs`: what is read made into what the checks take (links, views, the
//!   tally comparison); the SQL itself, on either engine and in one read snapshot,
//!   is in the storage layer: `store/audit.rs` (the log's pages, the tally, the
//!   density of positions) and `repo/audit.rs` (the ticket views);
//! - `background.rs`: the periodic verification of `serve` ([`spawn`],
//!   [`verify_and_record`]) and its findings ([`Integrity`]);
//! - this file: the problems, the [`Report`], and [`run`], the pass that reads and
//!   checks together.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::store::hash::Tally;
use crate::store::{Pool, StoreError};

mod anchor;
mod background;
mod chain;
mod read;
mod views;

pub use anchor::Anchor;
pub use background::{Findings, Integrity, spawn, verify_and_record};
pub use chain::{Link, StreamCheck, ViewHead};
pub use views::{StoredView, view_differences};

use crate::store::audit::{Snap, StoredRow};
use anchor::{AnchorAcc, heads_digest};
use chain::missing_tail;
use views::check_view;

/// Events read per page.
const PAGE: i64 = 5_000;
/// Ticket views read per page of the fold check.
const VIEW_PAGE: i64 = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProblemKind {
    Edited,
    Deleted,
    Inserted,
    /// Positions out of order in a stream, or a hole in SQLite's dense positions.
    Reordered,
    /// The ticket view differs from its events, or a stream has no view.
    View,
    /// The log recounted differs from the tally its appends kept.
    Uncounted,
    /// The log differs from an anchor kept outside the database.
    Anchor,
}

impl ProblemKind {
    pub const ALL: [ProblemKind; 7] = [
        ProblemKind::Edited,
        ProblemKind::Deleted,
        ProblemKind::Inserted,
        ProblemKind::Reordered,
        ProblemKind::View,
        ProblemKind::Uncounted,
        ProblemKind::Anchor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Edited => "edited",
            ProblemKind::Deleted => "deleted",
            ProblemKind::Inserted => "inserted",
            ProblemKind::Reordered => "reordered",
            ProblemKind::View => "view",
            ProblemKind::Uncounted => "uncounted",
            ProblemKind::Anchor => "anchor",
        }
    }
}

/// One thing found wrong with the log or its ticket views.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The stream; nil when the problem is the whole log's (a tally, an anchor).
    pub stream: Uuid,
    /// The event's version; 0 when the problem is not one event's.
    pub version: i64,
    /// The event's position; None for a deleted event (it has none any more).
    pub position: Option<i64>,
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind.as_str())?;
        if self.stream.is_nil() {
            write!(f, " log")?;
        } else {
            write!(f, " stream {}", self.stream)?;
        }
        if self.version > 0 {
            write!(f, " version {}", self.version)?;
        }
        if let Some(p) = self.position {
            write!(f, " position {p}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// The outcome of one verification.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub streams: u64,
    pub events: u64,
    /// The log's tickets (with their events) whose view was folded and compared.
    pub views: u64,
    /// In stream, then version order (the whole log's first: nil stream).
    pub problems: Vec<Problem>,
    pub elapsed: Duration,
    /// The anchor at the horizon taken at the start.
    pub anchor: Option<Anchor>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The streams named by a problem (not the whole log's problems).
    pub fn tampered_streams(&self) -> HashSet<Uuid> {
        self.problems
            .iter()
            .map(|p| p.stream)
            .filter(|s| !s.is_nil())
            .collect()
    }

    /// The summary line.
    pub fn summary(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        if self.ok() {
            format!(
                "verified {} events in {} streams in {secs:.2} s: every hash chain is intact, \
                 every ticket view matches its events and the log matches its tally",
                self.events, self.streams
            )
        } else {
            let count = |k: ProblemKind| self.problems.iter().filter(|p| p.kind == k).count();
            let mut kinds: Vec<String> = [
                ProblemKind::Edited,
                ProblemKind::Deleted,
                ProblemKind::Inserted,
            ]
            .iter()
            .map(|k| format!("{} {}", count(*k), k.as_str()))
            .collect();
            for k in &ProblemKind::ALL[3..] {
                let n = count(*k);
                if n > 0 {
                    kinds.push(format!("{n} {}", k.as_str()));
                }
            }
            format!(
                "verified {} events in {} streams in {secs:.2} s: {} problem(s): {}",
                self.events,
                self.streams,
                self.problems.len(),
                kinds.join(", ")
            )
        }
    }
}

/// Verifies the whole database behind `pool`.
pub async fn run(pool: &Pool) -> Result<Report, StoreError> {
    run_against(pool, None).await
}

/// Verifies the whole database behind `pool`, and checks it against `kept`, an
/// anchor taken earlier (`serve --anchor-file`).
pub async fn run_against(pool: &Pool, kept: Option<&Anchor>) -> Result<Report, StoreError> {
    let started = Instant::now();
    let mut snap = Snap::begin(pool).await?;
    let horizon = snap.horizon().await?;
    let mut at = vec![AnchorAcc::new(horizon)];
    if let Some(k) = kept {
        at.push(AnchorAcc::new(k.position));
    }

    // 1. The log in position order: chains, positions, the recount.
    let mut checks: HashMap<Uuid, StreamCheck> = HashMap::new();
    let mut problems = Vec::new();
    let mut total = Tally::default();
    let mut after = i64::MIN;
    loop {
        let rows = snap.read_page(after, PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.position;
        // Hashing a page is CPU work: keep it off the async workers.
        let links = tokio::task::spawn_blocking(move || {
            rows.into_iter().map(read::into_link).collect::<Vec<_>>()
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("verification task failed: {e}")))?;
        for (stream, link) in links {
            for a in at.iter_mut() {
                if a.heads.is_none() && link.position > a.position {
                    a.heads = Some(heads_digest(&checks));
                }
            }
            let text = match &stream {
                Ok(s) => s.to_string(),
                Err(t) => t.clone(),
            };
            total.add(link.position, &text, link.version);
            for a in at.iter_mut() {
                if link.position <= a.position {
                    a.tally.add(link.position, &text, link.version);
                }
            }
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
    for a in at.iter_mut() {
        if a.heads.is_none() {
            a.heads = Some(heads_digest(&checks));
        }
    }
    let events: u64 = checks.values().map(|c| c.events).sum();
    let heads = read::view_heads(&mut snap).await?;
    let streams =
        (checks.len() + heads.keys().filter(|id| !checks.contains_key(id)).count()) as u64;
    for (id, view) in &heads {
        if !checks.contains_key(id) {
            // A ticket view whose stream has no event at all.
            problems.extend(missing_tail(*id, 0, view));
        }
    }
    for (id, check) in checks {
        problems.extend(check.finish(heads.get(&id)));
    }
    drop(heads);

    // 2. The tally kept by the appends against the recount.
    problems.extend(read::tally_problems(&mut snap, &total).await?);
    // 3. Stored first answers naming a stream that has no event.
    for id in snap.streams_without_events().await? {
        problems.push(Problem {
            kind: ProblemKind::Deleted,
            stream: id,
            version: 0,
            position: None,
            detail: "the whole stream is missing: stored answers (idempotency records) name it, but it has no event"
                .into(),
        });
    }

    // 4. Each ticket view against its events folded again.
    let suspect: HashSet<Uuid> = problems.iter().map(|p| p.stream).collect();
    let mut views = 0u64;
    let mut after_view: Option<String> = None;
    loop {
        let page = read::view_page(&mut snap, after_view.as_deref(), VIEW_PAGE).await?;
        let Some(last) = page.last() else { break };
        after_view = Some(last.0.clone());
        let page: Vec<StoredView> = page
            .into_iter()
            .filter_map(|(_, v)| v)
            .filter(|v| !suspect.contains(&v.id))
            .collect();
        let ids: Vec<Uuid> = page.iter().map(|v| v.id).collect();
        let rows = snap.streams(&ids).await?;
        let mut by_stream: HashMap<Uuid, Vec<StoredRow>> = HashMap::new();
        for r in rows {
            if let Ok(id) = Uuid::parse_str(&r.stream_id) {
                by_stream.entry(id).or_default().push(r);
            }
        }
        let found = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            for v in &page {
                let rows = by_stream.remove(&v.id).unwrap_or_default();
                found.extend(check_view(v, &rows));
            }
            (found, page.len() as u64)
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("verification task failed: {e}")))?;
        views += found.1;
        problems.extend(found.0);
    }

    // 5. The anchors.
    let mut anchors = at.into_iter().map(AnchorAcc::done);
    let anchor = anchors.next();
    if let (Some(kept), Some(now)) = (kept, anchors.next()) {
        let diff = kept.differences(&now);
        if !diff.is_empty() {
            problems.push(Problem {
                kind: ProblemKind::Anchor,
                stream: Uuid::nil(),
                version: 0,
                position: Some(kept.position),
                detail: format!(
                    "the events at or below position {} differ from the anchor kept{}: {}",
                    kept.position,
                    kept.at
                        .map(|t| format!(" at {}", crate::store::hash::rfc3339(t)))
                        .unwrap_or_default(),
                    diff.join("; ")
                ),
            });
        }
    }
    snap.end().await;
    problems.sort_by(|a, b| {
        (a.stream, a.version, a.kind, a.position).cmp(&(b.stream, b.version, b.kind, b.position))
    });
    Ok(Report {
        streams,
        events,
        views,
        problems,
        elapsed: started.elapsed(),
        anchor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Uuid = Uuid::from_u128(7);

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

    #[test]
    fn whole_log_problems_read_without_a_stream() {
        let p = Problem {
            kind: ProblemKind::Uncounted,
            stream: Uuid::nil(),
            version: 0,
            position: None,
            detail: "x".into(),
        };
        assert_eq!(p.to_string(), "uncounted log: x");
        let p = Problem {
            kind: ProblemKind::Deleted,
            stream: S,
            version: 0,
            position: None,
            detail: "gone".into(),
        };
        assert_eq!(p.to_string(), format!("deleted stream {S}: gone"));
    }
}
