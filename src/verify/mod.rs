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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::{Ticket, TicketEvent};
use crate::store::hash::{GENESIS, Tally, recompute};
use crate::store::{Pool, RecordedEvent, StoreError};

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
pub struct ViewHead {
    pub version: i64,
    pub head_hash: String,
}

/// The log at one position, to be kept outside the database: every event at or
/// below `position` (the gap-safe horizon when it was taken: nothing can be
/// appended there any more) counted as the tally counts (`events`, `streams`,
/// `digest`), and `heads`: the SHA-256 (hex) of the lines `"{stream}:{version}:{hash}\n"`
/// of each stream's last event at or below `position`, in stream order. `serve
/// --anchor-file` appends one per verification as a JSON line; `yiwang verify
/// --anchor FILE` checks the database against the last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub position: i64,
    pub events: i64,
    pub streams: i64,
    pub digest: i64,
    pub heads: String,
    /// When it was taken (not compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

impl Anchor {
    /// What differs between an anchor kept earlier and the same one taken now.
    pub fn differences(&self, now: &Anchor) -> Vec<String> {
        let mut out = Vec::new();
        let mut cmp = |what: &str, then: String, now: String| {
            if then != now {
                out.push(format!("{what} {then} then, {now} now"));
            }
        };
        cmp("events", self.events.to_string(), now.events.to_string());
        cmp("streams", self.streams.to_string(), now.streams.to_string());
        cmp("digest", self.digest.to_string(), now.digest.to_string());
        cmp("heads", self.heads.clone(), now.heads.clone());
        out
    }

    /// The last anchor of an anchor file (one JSON object per line).
    pub fn last_in(path: &Path) -> anyhow::Result<Anchor> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the anchor file {}", path.display()))?;
        let (n, line) = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .last()
            .with_context(|| format!("the anchor file {} holds no anchor", path.display()))?;
        serde_json::from_str(line).with_context(|| {
            format!(
                "line {} of the anchor file {} is not an anchor",
                n + 1,
                path.display()
            )
        })
    }

    /// Appends the anchor to `path` as one JSON line, synced.
    pub fn append_to(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let mut line = serde_json::to_string(self).map_err(std::io::Error::other)?;
        line.push('\n');
        f.write_all(line.as_bytes())?;
        f.sync_data()
    }
}

/// The check of one stream. Its events may come in any order (positions need not
/// follow versions in a tampered log); each is judged once the one before it is
/// known, or at [`StreamCheck::finish`].
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
    /// The event of the highest version pushed so far: (version, hash).
    top: Option<(i64, String)>,
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
            top: None,
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
        if self.top.as_ref().is_none_or(|(v, _)| link.version > *v) {
            self.top = Some((link.version, link.hash.clone()));
        }
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
        if let Some(&before) = self.positions.last() {
            if link.position < before {
                self.problem(
                    ProblemKind::Reordered,
                    link.version,
                    Some(link.position),
                    format!(
                        "its position {} is below position {before} of version {}: positions were swapped or moved",
                        link.position,
                        link.version - 1
                    ),
                );
            }
        }
        self.head = link.hash;
        self.positions.push(link.position);
        self.next = link.version + 1;
    }

    /// The problems of the stream, once all its events were pushed; `view` is the
    /// head its ticket view recorded, read in the same snapshot.
    pub fn finish(mut self, view: Option<&ViewHead>) -> Vec<Problem> {
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
        if let Some(a) = view {
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
        } else if last > 0 {
            let position = self.positions.last().copied();
            self.problem(
                ProblemKind::View,
                last,
                position,
                "the stream has events but no ticket view row: the view was deleted".into(),
            );
        }
        self.problems
    }
}

/// The events a stream that ends at version `last` lacks, when its ticket view
/// recorded `view`.
fn missing_tail(stream: Uuid, last: i64, view: &ViewHead) -> Vec<Problem> {
    (last + 1..=view.version)
        .map(|version| Problem {
            kind: ProblemKind::Deleted,
            stream,
            version,
            position: None,
            detail: format!(
                "missing: the ticket view records version {} but the stream ends at version {last}",
                view.version
            ),
        })
        .collect()
}

/// A ticket view row as stored, for the fold check.
#[derive(Clone, Debug)]
pub struct StoredView {
    pub id: Uuid,
    pub number: String,
    pub state: String,
    pub unit: Option<String>,
    pub centre: String,
    pub category: String,
    pub grid: Option<String>,
    /// Err: the stored co-units could not be read.
    pub co_units: Result<Vec<String>, String>,
    pub version: i64,
    pub doc: String,
    pub head_hash: String,
}

/// What differs between a ticket view row and the ticket folded from its stream's
/// events up to the view's version (`head`: the hash of the last of them): each
/// difference names the field, where it was found (`column` or `doc`), and both
/// values. Every field that decides who may see or act on the ticket, what the
/// reader is shown of the reporter and what the figures count is compared.
pub fn view_differences(view: &StoredView, fold: &Ticket, head: &str) -> Vec<String> {
    fn show<T: std::fmt::Debug>(v: &T) -> String {
        format!("{v:?}")
    }
    let mut out = Vec::new();
    let mut cmp = |field: &str, stored: String, folded: String| {
        if stored != folded {
            out.push(format!(
                "{field}: {stored} in the view, {folded} from the events"
            ));
        }
    };
    cmp(
        "state",
        show(&view.state.as_str()),
        show(&fold.state.as_str()),
    );
    cmp("unit", show(&view.unit), show(&fold.unit));
    match &view.co_units {
        Ok(c) => cmp("co_units", show(c), show(&fold.co_units)),
        Err(e) => cmp("co_units", e.clone(), show(&fold.co_units)),
    }
    cmp("centre", show(&view.centre), show(&fold.centre));
    cmp("grid", show(&view.grid), show(&fold.location.grid));
    cmp("number", show(&view.number), show(&fold.number));
    cmp("category", show(&view.category), show(&fold.category));
    cmp(
        "version",
        view.version.to_string(),
        fold.version.to_string(),
    );
    cmp("head_hash", view.head_hash.clone(), head.to_string());
    match serde_json::from_str::<Ticket>(&view.doc) {
        Err(e) => out.push(format!("doc: not a ticket ({e})")),
        Ok(d) => {
            let mut cmp = |field: &str, stored: String, folded: String| {
                if stored != folded {
                    out.push(format!(
                        "doc.{field}: {stored} in the view, {folded} from the events"
                    ));
                }
            };
            cmp("id", show(&d.id), show(&fold.id));
            cmp("state", show(&d.state), show(&fold.state));
            cmp("unit", show(&d.unit), show(&fold.unit));
            cmp("co_units", show(&d.co_units), show(&fold.co_units));
            cmp("centre", show(&d.centre), show(&fold.centre));
            cmp("at_centre", show(&d.at_centre), show(&fold.at_centre));
            cmp("grid", show(&d.location.grid), show(&fold.location.grid));
            cmp("handler", show(&d.handler), show(&fold.handler));
            cmp("sign_due_at", show(&d.sign_due_at), show(&fold.sign_due_at));
            cmp(
                "handle_due_at",
                show(&d.handle_due_at),
                show(&fold.handle_due_at),
            );
            cmp("number", show(&d.number), show(&fold.number));
            cmp("category", show(&d.category), show(&fold.category));
            cmp(
                "reporter_ref",
                show(&d.reporter_ref),
                show(&fold.reporter_ref),
            );
            cmp("version", d.version.to_string(), fold.version.to_string());
        }
    }
    out
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
            rows.into_iter()
                .map(StoredRow::into_link)
                .collect::<Vec<_>>()
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
    let heads = snap.view_heads().await?;
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
    problems.extend(snap.tally_problems(&total).await?);
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
        let page = snap.view_page(after_view.as_deref(), VIEW_PAGE).await?;
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

/// The anchor at one position, while the pass goes.
struct AnchorAcc {
    position: i64,
    tally: Tally,
    heads: Option<String>,
}

impl AnchorAcc {
    fn new(position: i64) -> AnchorAcc {
        AnchorAcc {
            position,
            tally: Tally::default(),
            heads: None,
        }
    }

    fn done(self) -> Anchor {
        Anchor {
            position: self.position,
            events: self.tally.events,
            streams: self.tally.streams,
            digest: self.tally.digest,
            heads: self.heads.unwrap_or_default(),
            at: Some(Utc::now()),
        }
    }
}

/// The hash of each stream's highest event so far, in stream order.
fn heads_digest(checks: &HashMap<Uuid, StreamCheck>) -> String {
    let mut tops: Vec<(&Uuid, &(i64, String))> = checks
        .iter()
        .filter_map(|(id, c)| c.top.as_ref().map(|t| (id, t)))
        .collect();
    tops.sort_by_key(|(id, _)| **id);
    let mut h = Sha256::new();
    for (id, (version, hash)) in tops {
        h.update(format!("{id}:{version}:{hash}\n").as_bytes());
    }
    hex::encode(h.finalize())
}

/// The fold check of one ticket view against its stream's events (in version
/// order).
fn check_view(view: &StoredView, rows: &[StoredRow]) -> Vec<Problem> {
    let problem = |version: i64, position: Option<i64>, detail: String| Problem {
        kind: ProblemKind::View,
        stream: view.id,
        version,
        position,
        detail,
    };
    let mut state: Option<Ticket> = None;
    let mut head = (GENESIS.to_string(), None);
    for r in rows.iter().filter(|r| r.version <= view.version) {
        let event = match serde_json::from_str::<Value>(&r.data) {
            Err(e) => Err(e.to_string()),
            Ok(data) => match TicketEvent::from_parts(&r.event_type, r.schema_version, &data) {
                Ok(e) => Ok(e),
                // Written by a later release: this build cannot fold it, which is
                // not tampering (the chain check judged its content).
                Err(crate::domain::DecodeError::TooNew { .. }) => return Vec::new(),
                Err(e) => Err(e.to_string()),
            },
        };
        let (event, at) = match (event, &r.occurred_at) {
            (Ok(e), Ok(at)) => (e, *at),
            (Err(e), _) => {
                return vec![problem(
                    r.version,
                    Some(r.position),
                    format!(
                        "the event cannot be read as a ticket event ({e}): the view cannot be checked"
                    ),
                )];
            }
            (_, Err(t)) => {
                return vec![problem(
                    r.version,
                    Some(r.position),
                    format!("its occurred_at {t:?} is not a time: the view cannot be checked"),
                )];
            }
        };
        state = Some(Ticket::apply(state, view.id, &event, at));
        head = (r.hash.clone(), Some(r.position));
    }
    let Some(fold) = state else {
        // No event at all: the chain check has reported every version missing.
        return Vec::new();
    };
    let diff = view_differences(view, &fold, &head.0);
    if diff.is_empty() {
        return Vec::new();
    }
    vec![problem(
        view.version,
        head.1,
        format!(
            "the ticket view differs from its events (authorization and masking read the view): {}",
            diff.join("; ")
        ),
    )]
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

type ViewTuple = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    i64,
    String,
    String,
);

/// A view row as read, its co-units as the engine stores them.
type ViewRowOf<C> = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    i64,
    String,
    String,
    C,
);

/// One read snapshot of the database: every read of a verification sees the same
/// committed state, while appends go on.
enum Snap {
    Pg(sqlx::Transaction<'static, sqlx::Postgres>),
    Lite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

impl Snap {
    async fn begin(pool: &Pool) -> Result<Snap, StoreError> {
        Ok(match pool {
            Pool::Postgres(p) => {
                let mut t = p.begin().await.map_err(StoreError::classify)?;
                // Read only and without an xid: the snapshot holds back neither
                // appends nor the gap-safe feed.
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *t)
                    .await
                    .map_err(StoreError::classify)?;
                Snap::Pg(t)
            }
            Pool::Sqlite(p) => Snap::Lite(p.begin().await.map_err(StoreError::classify)?),
        })
    }

    async fn end(self) {
        let _ = match self {
            Snap::Pg(t) => t.rollback().await,
            Snap::Lite(t) => t.rollback().await,
        };
    }

    async fn horizon(&mut self) -> Result<i64, StoreError> {
        match self {
            Snap::Pg(t) => crate::store::postgres::horizon(&mut **t).await,
            Snap::Lite(t) => crate::store::sqlite::horizon(&mut **t).await,
        }
        .map_err(StoreError::classify)
    }

    /// Up to `limit` rows after `after`, in position order.
    async fn read_page(&mut self, after: i64, limit: i64) -> Result<Vec<StoredRow>, StoreError> {
        Ok(match self {
            Snap::Pg(t) => sqlx::query(&format!(
                "SELECT {PG_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2"
            ))
            .bind(after)
            .bind(limit)
            .fetch_all(&mut **t)
            .await
            .map_err(StoreError::classify)?
            .iter()
            .map(pg_row)
            .collect::<Result<_, _>>()?,
            Snap::Lite(t) => sqlx::query(&format!(
                "SELECT {SQLITE_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?"
            ))
            .bind(after)
            .bind(limit)
            .fetch_all(&mut **t)
            .await
            .map_err(StoreError::classify)?
            .iter()
            .map(sqlite_row)
            .collect::<Result<_, _>>()?,
        })
    }

    /// The events of `ids`, by stream and version.
    async fn streams(&mut self, ids: &[Uuid]) -> Result<Vec<StoredRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(match self {
            Snap::Pg(t) => sqlx::query(&format!(
                "SELECT {PG_COLUMNS} FROM events WHERE stream_id = ANY($1) ORDER BY stream_id, version"
            ))
            .bind(ids)
            .fetch_all(&mut **t)
            .await
            .map_err(StoreError::classify)?
            .iter()
            .map(pg_row)
            .collect::<Result<_, _>>()?,
            Snap::Lite(t) => {
                let list: Vec<String> = ids.iter().map(Uuid::to_string).collect();
                sqlx::query(&format!(
                    "SELECT {SQLITE_COLUMNS} FROM events \
                     WHERE stream_id IN (SELECT value FROM json_each(?)) ORDER BY stream_id, version"
                ))
                .bind(Value::from(list).to_string())
                .fetch_all(&mut **t)
                .await
                .map_err(StoreError::classify)?
                .iter()
                .map(sqlite_row)
                .collect::<Result<_, _>>()?
            }
        })
    }

    /// Every ticket view's (version, head hash).
    async fn view_heads(&mut self) -> Result<HashMap<Uuid, ViewHead>, StoreError> {
        let rows: Vec<(String, i64, String)> = match self {
            Snap::Pg(t) => sqlx::query_as("SELECT id::text, version, head_hash FROM ticket_view")
                .fetch_all(&mut **t)
                .await
                .map_err(StoreError::classify)?,
            Snap::Lite(t) => sqlx::query_as("SELECT id, version, head_hash FROM ticket_view")
                .fetch_all(&mut **t)
                .await
                .map_err(StoreError::classify)?,
        };
        Ok(rows
            .into_iter()
            .filter_map(|(id, version, head_hash)| {
                Some((Uuid::parse_str(&id).ok()?, ViewHead { version, head_hash }))
            })
            .collect())
    }

    /// Up to `limit` view rows after the id `after`, in id order: (the id as
    /// stored, the row when its id is a UUID).
    async fn view_page(
        &mut self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(String, Option<StoredView>)>, StoreError> {
        let (rows, co): (Vec<ViewTuple>, Vec<Result<Vec<String>, String>>) = match self {
            Snap::Pg(t) => {
                let rows: Vec<ViewRowOf<Vec<String>>> = sqlx::query_as(
                    "SELECT id::text, number, state, unit, centre, category, grid, version, doc, \
                     head_hash, co_units FROM ticket_view WHERE ($1::uuid IS NULL OR id > $1::uuid) \
                     ORDER BY id LIMIT $2",
                )
                .bind(after.and_then(|a| Uuid::parse_str(a).ok()))
                .bind(limit)
                .fetch_all(&mut **t)
                .await
                .map_err(StoreError::classify)?;
                rows.into_iter()
                    .map(|r| ((r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9), Ok(r.10)))
                    .unzip()
            }
            Snap::Lite(t) => {
                let rows: Vec<ViewRowOf<String>> = sqlx::query_as(
                    "SELECT id, number, state, unit, centre, category, grid, version, doc, \
                     head_hash, co_units FROM ticket_view WHERE (?1 IS NULL OR id > ?1) \
                     ORDER BY id LIMIT ?2",
                )
                .bind(after)
                .bind(limit)
                .fetch_all(&mut **t)
                .await
                .map_err(StoreError::classify)?;
                rows.into_iter()
                    .map(|r| {
                        let co = serde_json::from_str::<Vec<String>>(&r.10)
                            .map_err(|_| format!("{:?} (not a list of units)", r.10));
                        ((r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9), co)
                    })
                    .unzip()
            }
        };
        Ok(rows
            .into_iter()
            .zip(co)
            .map(|(r, co_units)| {
                let view = Uuid::parse_str(&r.0).ok().map(|id| StoredView {
                    id,
                    number: r.1,
                    state: r.2,
                    unit: r.3,
                    centre: r.4,
                    category: r.5,
                    grid: r.6,
                    co_units,
                    version: r.7,
                    doc: r.8,
                    head_hash: r.9,
                });
                (r.0, view)
            })
            .collect())
    }

    /// The tally the appends kept against the recount `log`; on SQLite also the
    /// density of positions.
    async fn tally_problems(&mut self, log: &Tally) -> Result<Vec<Problem>, StoreError> {
        let rows: Vec<(i64, i64, i64, Option<i64>)> = match self {
            Snap::Pg(t) => {
                sqlx::query_as("SELECT events, streams, digest, dense_after FROM log_tally")
                    .fetch_all(&mut **t)
                    .await
            }
            Snap::Lite(t) => {
                sqlx::query_as("SELECT events, streams, digest, dense_after FROM log_tally")
                    .fetch_all(&mut **t)
                    .await
            }
        }
        .map_err(StoreError::classify)?;
        let whole = |detail: String| Problem {
            kind: ProblemKind::Uncounted,
            stream: Uuid::nil(),
            version: 0,
            position: None,
            detail,
        };
        let mut out = Vec::new();
        if rows.iter().any(|r| r.0 < 0) {
            out.push(whole(
                "the log tally was never counted (its seeding marker is still there): open the \
                 database with `yiwang migrate` to count it"
                    .into(),
            ));
            return Ok(out);
        }
        let mut kept = Tally::default();
        for (events, streams, digest, _) in &rows {
            kept.merge(Tally {
                events: *events,
                streams: *streams,
                digest: *digest,
            });
        }
        if kept != *log {
            let mut what = Vec::new();
            if kept.events != log.events {
                what.push(format!(
                    "{} events where the appends counted {}",
                    log.events, kept.events
                ));
            }
            if kept.streams != log.streams {
                what.push(format!(
                    "{} streams where the appends counted {}",
                    log.streams, kept.streams
                ));
            }
            if kept.digest != log.digest {
                what.push(format!(
                    "a digest of positions {} where the appends made {}",
                    log.digest, kept.digest
                ));
            }
            out.push(whole(format!(
                "the log does not match the tally its appends kept: it holds {}: events were deleted, \
                 put in or moved outside the service",
                what.join(", ")
            )));
        }
        if let Snap::Lite(t) = self {
            let dense_after = rows.iter().filter_map(|r| r.3).max().unwrap_or(0);
            let (count, max): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), COALESCE(MAX(position), ?1) FROM events WHERE position > ?1",
            )
            .bind(dense_after)
            .fetch_one(&mut **t)
            .await
            .map_err(StoreError::classify)?;
            if count != max - dense_after {
                let hole: Option<i64> = sqlx::query_scalar(
                    "SELECT MIN(p) FROM (SELECT ?1 + 1 AS p WHERE NOT EXISTS (SELECT 1 FROM events WHERE position = ?1 + 1) \
                     UNION ALL SELECT e.position + 1 FROM events e WHERE e.position > ?1 AND e.position < ?2 \
                     AND NOT EXISTS (SELECT 1 FROM events f WHERE f.position = e.position + 1))",
                )
                .bind(dense_after)
                .bind(max)
                .fetch_one(&mut **t)
                .await
                .map_err(StoreError::classify)?;
                out.push(Problem {
                    kind: ProblemKind::Reordered,
                    stream: Uuid::nil(),
                    version: 0,
                    position: hole,
                    detail: format!(
                        "positions after {dense_after} have holes: {count} events up to position {max}{}: \
                         an event was deleted, or put in at a chosen position",
                        hole.map(|h| format!(", the first missing at {h}"))
                            .unwrap_or_default()
                    ),
                });
            }
        }
        Ok(out)
    }

    /// Streams that stored first answers name and that have no event (at most 1000).
    async fn streams_without_events(&mut self) -> Result<Vec<Uuid>, StoreError> {
        let ids: Vec<String> = match self {
            Snap::Pg(t) => sqlx::query_scalar(
                "SELECT DISTINCT k.stream_id::text FROM idempotency_keys k \
                 WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = k.stream_id) LIMIT 1000",
            )
            .fetch_all(&mut **t)
            .await,
            Snap::Lite(t) => sqlx::query_scalar(
                "SELECT DISTINCT k.stream_id FROM idempotency_keys k \
                 WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = k.stream_id) LIMIT 1000",
            )
            .fetch_all(&mut **t)
            .await,
        }
        .map_err(StoreError::classify)?;
        Ok(ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect())
    }
}

/// What the latest verification of this process found: each tampered stream is
/// refused to commands and reads (409 `integrity.tampered`), and `/readyz` says
/// `degraded`, until a verification finds it clean again.
#[derive(Debug, Default)]
pub struct Integrity(std::sync::RwLock<Findings>);

/// The findings of the latest verification.
#[derive(Clone, Debug, Default)]
pub struct Findings {
    /// Problems found (0: clean, or none has finished yet).
    pub count: usize,
    /// The streams they name.
    pub tampered: HashSet<Uuid>,
    /// When that verification finished.
    pub at: Option<DateTime<Utc>>,
}

impl Integrity {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Findings> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The latest findings.
    pub fn findings(&self) -> Findings {
        self.read().clone()
    }

    /// How many problems the latest verification found.
    pub fn count(&self) -> usize {
        self.read().count
    }

    pub fn is_tampered(&self, stream: Uuid) -> bool {
        self.read().tampered.contains(&stream)
    }

    /// Keeps a verification's outcome.
    pub fn record(&self, report: &Report) {
        let mut f = self.0.write().unwrap_or_else(|p| p.into_inner());
        *f = Findings {
            count: report.problems.len(),
            tampered: report.tampered_streams(),
            at: Some(Utc::now()),
        };
    }

    /// Err (409 `integrity.tampered`) when the latest verification found `stream`
    /// tampered with.
    pub fn check(&self, stream: Uuid) -> Result<(), crate::error::AppError> {
        if self.is_tampered(stream) {
            let at = self
                .read()
                .at
                .map(|t| format!(" at {}", crate::store::hash::rfc3339(t)))
                .unwrap_or_default();
            return Err(crate::error::AppError::Tampered(format!(
                "ticket {stream} is frozen: the verification of the event log{at} found its records \
                 tampered with (edited, deleted, reordered, or a ticket view that differs from its \
                 events), so nothing is read from or written to it. An operator: run `yiwang verify` \
                 for the findings, restore the ticket's records from a backup, and the next \
                 verification lifts the freeze"
            )));
        }
        Ok(())
    }
}

/// Runs a verification every `interval` in the background (the first one at once),
/// keeps the `yiwang_verify_*` gauges and the app's findings, and appends each
/// anchor to `anchor_file` when one is named.
pub fn spawn(
    app: std::sync::Arc<crate::app::App>,
    interval: Duration,
    anchor_file: Option<std::path::PathBuf>,
) {
    tokio::spawn(async move {
        loop {
            if let Some(report) = verify_and_record(&app).await {
                if let (Some(path), Some(anchor)) = (&anchor_file, &report.anchor) {
                    let (path, anchor) = (path.clone(), anchor.clone());
                    let written =
                        tokio::task::spawn_blocking(move || anchor.append_to(&path)).await;
                    match written {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::error!(error = %e, "could not append the anchor to the anchor file")
                        }
                        Err(e) => tracing::error!(error = %e, "the anchor writer failed"),
                    }
                }
            }
            tokio::time::sleep(interval).await;
        }
    });
}

/// One verification, its outcome logged, put in the gauges and kept in the app
/// (`App::integrity`: tampered tickets are refused, `/readyz` says degraded).
pub async fn verify_and_record(app: &crate::app::App) -> Option<Report> {
    let m = &app.metrics;
    match run(&app.store.pool()).await {
        Ok(report) => {
            m.verify_last_run.set(Utc::now().timestamp() as f64);
            m.verify_last_ok.set(i64::from(report.ok()));
            m.verify_problems
                .set(i64::try_from(report.problems.len()).unwrap_or(i64::MAX));
            app.integrity.record(&report);
            if let Some(a) = &report.anchor {
                tracing::info!(
                    anchor = %serde_json::to_string(a).unwrap_or_default(),
                    "log anchor: keep it outside the database (yiwang verify --anchor)"
                );
            }
            if report.ok() {
                tracing::info!(
                    events = report.events,
                    streams = report.streams,
                    secs = report.elapsed.as_secs_f64(),
                    "log verified: every hash chain is intact, every ticket view matches its events"
                );
            } else {
                tracing::error!(
                    problems = report.problems.len(),
                    tickets = report.tampered_streams().len(),
                    "log verification found tampering: the tickets named are frozen; run `yiwang verify` for the list"
                );
                for p in report.problems.iter().take(20) {
                    tracing::error!(problem = %p, "tampered");
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
        let a = anchor.map(|(version, h)| ViewHead {
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
        // Without the view, a deleted last event cannot be seen in the chain; the
        // others can. (A stream without a view is a problem of its own.)
        assert_eq!(check(&without(&[5]), None), [(ProblemKind::View, 4)]);
        assert_eq!(
            check(&without(&[3]), None),
            [(ProblemKind::Deleted, 3), (ProblemKind::View, 5)]
        );
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
        assert_eq!(check(&first, Some((2, "h2"))), [(ProblemKind::Inserted, 1)]);
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

    #[test]
    fn swapped_positions_in_a_stream_are_named_with_both() {
        let mut links = chain(3);
        links[1].position = 30;
        links[2].position = 20;
        links.sort_by_key(|l| l.position);
        let mut c = StreamCheck::new(S);
        for l in links {
            c.push(l);
        }
        let found = c.finish(Some(&ViewHead {
            version: 3,
            head_hash: "h3".into(),
        }));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].kind, found[0].version, found[0].position),
            (ProblemKind::Reordered, 3, Some(20))
        );
        assert!(found[0].detail.contains("30"), "{}", found[0].detail);
    }

    #[test]
    fn an_anchor_names_each_count_that_moved() {
        let a = Anchor {
            position: 10,
            events: 6,
            streams: 2,
            digest: 5,
            heads: "a".into(),
            at: None,
        };
        assert!(a.differences(&a.clone()).is_empty());
        let b = Anchor {
            events: 3,
            heads: "b".into(),
            at: Some(Utc::now()),
            ..a.clone()
        };
        assert_eq!(
            a.differences(&b),
            ["events 6 then, 3 now", "heads a then, b now"]
        );
    }
}
