//! What people record for the appraisal (考核), as events: scores entered against a
//! sheet's items (录入), their withdrawals, a township's closing of its year (报送),
//! a district's grades of departments (等次) and frozen monthly bulletins (通报).
//!
//! Pure: the events, and [`Ledger::fold`], which turns the log's appraisal events
//! into what the scoring reads. Nothing here does I/O; the use cases that append
//! these events are `app/appraisal.rs`, their reads `repo/appraisal.rs`.
//!
//! Every appraisal event type starts with `Appraisal` ([`is_appraisal_event`]: the
//! ticket projections skip them). The log's partial index `events_appraisal` finds
//! the five the scoring folds; [`BULLETIN_PUBLISHED`], whose payload is a whole
//! frozen answer, has an index of its own and is not folded here.
//!
//! Streams: an entry is a stream of its own (a random id: recorded, then perhaps
//! withdrawn); a township's year ([`submission_stream`]) and a unit's yearly grade
//! ([`grade_stream`]) are streams with ids derived from what they are about, so two
//! instances appending to the same one meet on the stream's expected version; a
//! bulletin is a stream of its own.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const ENTRY_RECORDED: &str = "AppraisalEntryRecorded";
pub const ENTRY_WITHDRAWN: &str = "AppraisalEntryWithdrawn";
pub const YEAR_SUBMITTED: &str = "AppraisalYearSubmitted";
pub const YEAR_REOPENED: &str = "AppraisalYearReopened";
pub const GRADE_RECORDED: &str = "AppraisalGradeRecorded";
pub const BULLETIN_PUBLISHED: &str = "AppraisalBulletinPublished";

/// The prefix every appraisal event type starts with.
pub const PREFIX: &str = "Appraisal";

/// Whether an event type is one of the appraisal's (not a ticket's).
pub fn is_appraisal_event(event_type: &str) -> bool {
    event_type.starts_with(PREFIX)
}

/// A score entered against a sheet's item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntryRecorded {
    /// The unit scored.
    pub unit: String,
    /// `YYYY-MM`, `YYYY-Qn` (a quarterly check) or `YYYY` (the year-end check and
    /// yearly items).
    pub period: String,
    /// The item's code in the unit's sheet.
    pub item: String,
    /// How many times (cases, places, missing activities) the item was found; the
    /// points are `count × the item's points_each`. None for a freely scored item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// The points given, for an item scored freely (the townships' evaluation of a
    /// department, an area-ratio bonus). None for a counted item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<f64>,
    pub note: String,
    /// The township whose appraisal this entry belongs to (the agency's own; for a
    /// department's evaluation, the township that gives it): its year closes with
    /// [`YEAR_SUBMITTED`].
    pub township: String,
    /// A word for the evaluation's level (好 / 较好 / 一般 / 差), optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade_word: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tickets: Vec<Uuid>,
    /// SHA-256 of uploaded photos (`/api/v1/attachments`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntryWithdrawn {
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct YearSubmitted {
    pub township: String,
    pub year: i32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct YearReopened {
    pub township: String,
    pub year: i32,
    pub reason: String,
}

/// A department's yearly grade (经技区发〔2020〕44号: 一至四等).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradeRecorded {
    pub unit: String,
    pub year: i32,
    /// 1 (一等) to 4 (四等).
    pub grade: u8,
    pub note: String,
}

/// A frozen appraisal answer (通报): what `GET /api/v1/appraisal` answered for the
/// period (and unit) when it was published, with the log position it was computed
/// at and that event's hash, so that anyone can say which log it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BulletinPublished {
    pub period: String,
    /// The unit whose subtree the answer covers; None: the whole organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub profile: String,
    /// The last event at or below the feed's gap-safe horizon when it was frozen.
    pub position: i64,
    /// That event's hash.
    pub position_hash: String,
    /// The appraisal answer as it was (the body of `GET /api/v1/appraisal`).
    pub answer: serde_json::Value,
}

/// An appraisal event, decoded by its type.
#[derive(Clone, Debug, PartialEq)]
pub enum AppraisalEvent {
    EntryRecorded(EntryRecorded),
    EntryWithdrawn(EntryWithdrawn),
    YearSubmitted(YearSubmitted),
    YearReopened(YearReopened),
    GradeRecorded(GradeRecorded),
}

impl AppraisalEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            AppraisalEvent::EntryRecorded(_) => ENTRY_RECORDED,
            AppraisalEvent::EntryWithdrawn(_) => ENTRY_WITHDRAWN,
            AppraisalEvent::YearSubmitted(_) => YEAR_SUBMITTED,
            AppraisalEvent::YearReopened(_) => YEAR_REOPENED,
            AppraisalEvent::GradeRecorded(_) => GRADE_RECORDED,
        }
    }

    /// The payload as stored.
    pub fn data(&self) -> serde_json::Value {
        let v = match self {
            AppraisalEvent::EntryRecorded(e) => serde_json::to_value(e),
            AppraisalEvent::EntryWithdrawn(e) => serde_json::to_value(e),
            AppraisalEvent::YearSubmitted(e) => serde_json::to_value(e),
            AppraisalEvent::YearReopened(e) => serde_json::to_value(e),
            AppraisalEvent::GradeRecorded(e) => serde_json::to_value(e),
        };
        // Plain structs of strings and numbers: serializing cannot fail.
        v.unwrap_or(serde_json::Value::Null)
    }

    /// Reads a stored event; None for a type that is not one of these (a bulletin,
    /// a ticket's). A payload that does not fit its type is an error.
    pub fn from_parts(
        event_type: &str,
        data: &serde_json::Value,
    ) -> Option<Result<AppraisalEvent, serde_json::Error>> {
        let d = || data.clone();
        Some(match event_type {
            ENTRY_RECORDED => serde_json::from_value(d()).map(AppraisalEvent::EntryRecorded),
            ENTRY_WITHDRAWN => serde_json::from_value(d()).map(AppraisalEvent::EntryWithdrawn),
            YEAR_SUBMITTED => serde_json::from_value(d()).map(AppraisalEvent::YearSubmitted),
            YEAR_REOPENED => serde_json::from_value(d()).map(AppraisalEvent::YearReopened),
            GRADE_RECORDED => serde_json::from_value(d()).map(AppraisalEvent::GradeRecorded),
            _ => return None,
        })
    }
}

/// One appraisal event as the log holds it, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub position: i64,
    pub stream: Uuid,
    pub event: AppraisalEvent,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// An entry, with its withdrawal if any.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The entry's stream id: `{entry}` in evidence.
    pub id: Uuid,
    pub position: i64,
    pub actor: String,
    pub recorded_at: DateTime<Utc>,
    pub body: EntryRecorded,
    pub withdrawn: Option<Withdrawal>,
}

impl Entry {
    pub fn is_active(&self) -> bool {
        self.withdrawn.is_none()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Withdrawal {
    pub reason: String,
    pub actor: String,
    pub at: DateTime<Utc>,
    pub position: i64,
}

/// Whether a township's year is closed, and its history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Submission {
    pub submitted: bool,
    /// The stream's version (for the next append's expected version).
    pub version: i64,
    pub last_actor: String,
    pub last_at: Option<DateTime<Utc>>,
    /// The reason of the last reopening, if the year was reopened.
    pub reopened_reason: Option<String>,
}

/// A unit's yearly grade as last recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Grade {
    pub grade: u8,
    pub note: String,
    pub actor: String,
    pub at: DateTime<Utc>,
    pub position: i64,
    /// The stream's version (for the next append's expected version).
    pub version: i64,
}

/// Everything people recorded, folded from the log's appraisal events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ledger {
    /// Every entry in log order, withdrawn ones included (marked).
    pub entries: Vec<Entry>,
    /// By (township, year).
    pub submissions: BTreeMap<(String, i32), Submission>,
    /// By (unit, year).
    pub grades: BTreeMap<(String, i32), Grade>,
}

impl Ledger {
    /// Folds events given in log order (position ascending).
    pub fn fold<'e>(events: impl IntoIterator<Item = &'e Recorded>) -> Ledger {
        let mut l = Ledger::default();
        let mut by_id: BTreeMap<Uuid, usize> = BTreeMap::new();
        let mut versions: BTreeMap<Uuid, i64> = BTreeMap::new();
        for r in events {
            let version = {
                let v = versions.entry(r.stream).or_insert(0);
                *v += 1;
                *v
            };
            match &r.event {
                AppraisalEvent::EntryRecorded(b) => {
                    by_id.insert(r.stream, l.entries.len());
                    l.entries.push(Entry {
                        id: r.stream,
                        position: r.position,
                        actor: r.actor.clone(),
                        recorded_at: r.at,
                        body: b.clone(),
                        withdrawn: None,
                    });
                }
                AppraisalEvent::EntryWithdrawn(w) => {
                    if let Some(&i) = by_id.get(&r.stream) {
                        l.entries[i].withdrawn = Some(Withdrawal {
                            reason: w.reason.clone(),
                            actor: r.actor.clone(),
                            at: r.at,
                            position: r.position,
                        });
                    }
                }
                AppraisalEvent::YearSubmitted(s) => {
                    let e = l
                        .submissions
                        .entry((s.township.clone(), s.year))
                        .or_default();
                    e.submitted = true;
                    e.version = version;
                    e.last_actor = r.actor.clone();
                    e.last_at = Some(r.at);
                }
                AppraisalEvent::YearReopened(s) => {
                    let e = l
                        .submissions
                        .entry((s.township.clone(), s.year))
                        .or_default();
                    e.submitted = false;
                    e.version = version;
                    e.last_actor = r.actor.clone();
                    e.last_at = Some(r.at);
                    e.reopened_reason = Some(s.reason.clone());
                }
                AppraisalEvent::GradeRecorded(g) => {
                    l.grades.insert(
                        (g.unit.clone(), g.year),
                        Grade {
                            grade: g.grade,
                            note: g.note.clone(),
                            actor: r.actor.clone(),
                            at: r.at,
                            position: r.position,
                            version,
                        },
                    );
                }
            }
        }
        l
    }

    /// The entries not withdrawn.
    pub fn active(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.is_active())
    }

    pub fn entry(&self, id: Uuid) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// Whether the township has closed this year (and not had it reopened).
    pub fn is_submitted(&self, township: &str, year: i32) -> bool {
        self.submissions
            .get(&(township.to_string(), year))
            .is_some_and(|s| s.submitted)
    }
}

/// The performance coefficient of a department's grade (经技区发〔2020〕44号:
/// 一等 1.1, 二等 1.0, 三等 0.9, 四等 0.8).
pub fn coefficient(grade: u8) -> Option<f64> {
    match grade {
        1 => Some(1.1),
        2 => Some(1.0),
        3 => Some(0.9),
        4 => Some(0.8),
        _ => None,
    }
}

/// Grades 3 and 4 come with a yellow card (黄牌警告).
pub fn yellow_card(grade: u8) -> bool {
    grade >= 3
}

const NAMESPACE: Uuid = Uuid::from_u128(0x5f1c_2a4e_8b7d_4c3a_9e61_0d2f_7a8b_3c41);

/// The stream of a township's year: its submissions and reopenings.
pub fn submission_stream(township: &str, year: i32) -> Uuid {
    Uuid::new_v5(
        &NAMESPACE,
        format!("appraisal-year/{township}/{year}").as_bytes(),
    )
}

/// The stream of the `n`th entry (0-based, withdrawn ones counted) of an item that
/// takes one active entry per unit, township and year (the townships' evaluation of
/// a department): two appraisers entering it at once meet on the same new stream,
/// and the second append fails its expected version instead of adding a second one.
pub fn one_per_year_stream(unit: &str, township: &str, item: &str, year: i32, n: usize) -> Uuid {
    Uuid::new_v5(
        &NAMESPACE,
        format!("appraisal-entry/{unit}/{township}/{item}/{year}/{n}").as_bytes(),
    )
}

/// The stream of a unit's grades for a year.
pub fn grade_stream(unit: &str, year: i32) -> Uuid {
    Uuid::new_v5(
        &NAMESPACE,
        format!("appraisal-grade/{unit}/{year}").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(position: i64, stream: Uuid, event: AppraisalEvent) -> Recorded {
        Recorded {
            position,
            stream,
            event,
            actor: "a".into(),
            at: DateTime::from_timestamp(1_700_000_000 + position, 0).expect("a time"),
        }
    }

    fn entry(unit: &str) -> AppraisalEvent {
        AppraisalEvent::EntryRecorded(EntryRecorded {
            unit: unit.into(),
            period: "2026-Q1".into(),
            item: "x".into(),
            count: Some(1),
            points: None,
            note: "n".into(),
            township: "T".into(),
            grade_word: None,
            tickets: vec![],
            photos: vec![],
        })
    }

    #[test]
    fn a_withdrawal_marks_its_entry_and_a_reopening_opens_the_year() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let year = submission_stream("T", 2026);
        let events = vec![
            rec(1, a, entry("U1")),
            rec(2, b, entry("U2")),
            rec(
                3,
                a,
                AppraisalEvent::EntryWithdrawn(EntryWithdrawn {
                    reason: "wrong".into(),
                }),
            ),
            rec(
                4,
                year,
                AppraisalEvent::YearSubmitted(YearSubmitted {
                    township: "T".into(),
                    year: 2026,
                }),
            ),
        ];
        let l = Ledger::fold(&events);
        assert_eq!(l.active().map(|e| e.id).collect::<Vec<_>>(), vec![b]);
        assert_eq!(
            l.entry(a)
                .and_then(|e| e.withdrawn.as_ref())
                .map(|w| w.position),
            Some(3)
        );
        assert!(l.is_submitted("T", 2026));
        let mut more = events.clone();
        more.push(rec(
            5,
            year,
            AppraisalEvent::YearReopened(YearReopened {
                township: "T".into(),
                year: 2026,
                reason: "late import".into(),
            }),
        ));
        let l = Ledger::fold(&more);
        assert!(!l.is_submitted("T", 2026));
        assert_eq!(l.submissions[&("T".to_string(), 2026)].version, 2);
    }

    #[test]
    fn events_read_back_as_written() {
        let e = entry("U1");
        let back = AppraisalEvent::from_parts(e.event_type(), &e.data())
            .expect("an appraisal type")
            .expect("reads");
        assert_eq!(back, e);
        assert!(AppraisalEvent::from_parts("TicketAccepted", &e.data()).is_none());
        assert_eq!(coefficient(3), Some(0.9));
        assert!(yellow_card(3) && !yellow_card(2));
    }
}
