//! The pure check of one stream's hash chain: each event's content against its
//! hash, its link to the event before it, the versions without gap or repeat, the
//! positions rising with the versions, and the last event against the head the
//! ticket view recorded.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{Problem, ProblemKind};
use crate::store::RecordedEvent;
use crate::store::hash::{GENESIS, recompute};

/// What verification needs of one stored event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub position: i64,
    pub version: i64,
    pub prev_hash: String,
    pub hash: String,
    /// None when the content gives the recorded hash; else what is wrong with it.
    pub content: Option<String>,
    /// An appraisal event (`appraisal::ledger`): its stream keeps no ticket view.
    pub viewless: bool,
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
            viewless: crate::appraisal::ledger::is_appraisal_event(&e.event_type),
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
    pub(super) events: u64,
    /// The event of the highest version pushed so far: (version, hash).
    pub(super) top: Option<(i64, String)>,
    /// The stream's first event is an appraisal event: the stream has no ticket
    /// view to hold its head (the appraisal is folded from the log).
    viewless: bool,
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
            viewless: false,
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
        if link.version == 1 {
            self.viewless = link.viewless;
        }
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
        if let Some(&before) = self.positions.last()
            && link.position < before
        {
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
        } else if last > 0 && !self.viewless {
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
pub(super) fn missing_tail(stream: Uuid, last: i64, view: &ViewHead) -> Vec<Problem> {
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
                viewless: false,
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
    fn an_appraisal_stream_needs_no_ticket_view() {
        let mut links = chain(2);
        assert_eq!(check(&links, None), [(ProblemKind::View, 2)]);
        links[0].viewless = true;
        assert!(check(&links, None).is_empty());
        // Only the first event says what the stream is.
        let mut links = chain(2);
        links[1].viewless = true;
        assert_eq!(check(&links, None), [(ProblemKind::View, 2)]);
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
}
