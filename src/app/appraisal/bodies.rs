//! The request bodies of the appraisal's commands and the JSON of their answers
//! (what the idempotency record keeps and a retry gets back). Answers are written
//! through a `serde_json::Value`, so their keys come out in alphabetical order like
//! every other answer of the API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::appraisal::ledger::{Entry, Submission};

/// 录入: a score entered against an item of the unit's sheet.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AppraisalEntryInput)]
pub struct EntryBody {
    /// The unit scored (a department or an agency with a sheet).
    pub unit: String,
    /// `YYYY-MM`, `YYYY-Qn` (a quarterly check) or `YYYY` (the year-end check and
    /// yearly items such as `township_evaluation`).
    pub period: String,
    /// The item's code in the unit's sheet.
    pub item: String,
    /// For a counted item: how many times it was found (≥ 1).
    #[serde(default)]
    pub count: Option<i64>,
    /// For a freely scored item: the points, within the item's range.
    #[serde(default)]
    pub points: Option<f64>,
    /// What was found, and where (required).
    #[schema(max_length = 10000)]
    pub note: String,
    /// Tickets behind the entry.
    #[serde(default)]
    pub tickets: Vec<Uuid>,
    /// Attachment hashes from POST /api/v1/attachments.
    #[serde(default)]
    pub photos: Vec<String>,
    /// The township whose appraisal the entry belongs to: needed only when a district
    /// appraiser gives a department's `township_evaluation` (whose evaluation it is).
    #[serde(default)]
    pub township: Option<String>,
    /// A word for the evaluation's level (好 / 较好 / 一般 / 差).
    #[serde(default)]
    #[schema(max_length = 20)]
    pub grade_word: Option<String>,
}

/// The reason of a withdrawal or a reopening.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AppraisalWithdrawal)]
pub struct WithdrawBody {
    #[schema(max_length = 10000)]
    pub reason: String,
}

/// 报送: a township closes its year.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AppraisalSubmissionInput)]
pub struct SubmissionBody {
    pub township: String,
    pub year: i32,
}

/// A district appraiser reopens a township's closed year.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AppraisalReopenInput)]
pub struct ReopenBody {
    pub township: String,
    pub year: i32,
    #[schema(max_length = 10000)]
    pub reason: String,
}

/// 等次: a department's yearly grade (1 一等 … 4 四等).
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AppraisalGradeInput)]
pub struct GradeBody {
    pub unit: String,
    pub year: i32,
    #[schema(minimum = 1, maximum = 4)]
    pub grade: i64,
    #[schema(max_length = 10000)]
    pub note: String,
}

/// 通报: freeze the appraisal of a period (of a unit's subtree, or the whole
/// organisation) as it is now.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AppraisalBulletinInput)]
pub struct BulletinBody {
    pub period: String,
    #[serde(default)]
    pub unit: Option<String>,
}

/// A withdrawal of an entry.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AppraisalEntryWithdrawal)]
pub struct WithdrawalJson {
    pub actor: String,
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// An entry as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AppraisalEntry)]
pub struct EntryJson {
    /// Who entered it.
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade_word: Option<String>,
    /// The entry's id (its stream): `{entry}` in the appraisal's evidence.
    pub id: Uuid,
    pub item: String,
    pub note: String,
    pub period: String,
    pub photos: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub points: Option<f64>,
    /// The position of the event that recorded it (left out of the command's own
    /// answer, written before the log gives it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    pub recorded_at: DateTime<Utc>,
    pub tickets: Vec<Uuid>,
    /// The township whose appraisal the entry belongs to.
    pub township: String,
    pub unit: String,
    /// Stream version (1: recorded; 2: withdrawn).
    pub version: i64,
    /// Present once withdrawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<WithdrawalJson>,
}

impl EntryJson {
    pub fn of(e: &Entry) -> EntryJson {
        let b = &e.body;
        EntryJson {
            actor: e.actor.clone(),
            count: b.count,
            grade_word: b.grade_word.clone(),
            id: e.id,
            item: b.item.clone(),
            note: b.note.clone(),
            period: b.period.clone(),
            photos: b.photos.clone(),
            points: b.points,
            position: (e.position > 0).then_some(e.position),
            recorded_at: e.recorded_at,
            tickets: b.tickets.clone(),
            township: b.township.clone(),
            unit: b.unit.clone(),
            version: if e.withdrawn.is_some() { 2 } else { 1 },
            withdrawn: e.withdrawn.as_ref().map(|w| WithdrawalJson {
                actor: w.actor.clone(),
                at: w.at,
                reason: w.reason.clone(),
            }),
        }
    }
}

/// A township's year: closed (报送) or open again.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AppraisalSubmission)]
pub struct SubmissionJson {
    /// Who submitted or reopened it last.
    pub actor: String,
    pub at: Option<DateTime<Utc>>,
    /// The reason of the last reopening.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reopened_reason: Option<String>,
    pub submitted: bool,
    pub township: String,
    pub township_name: String,
    /// The year's stream version.
    pub version: i64,
    pub year: i32,
}

impl SubmissionJson {
    pub fn of(township: &str, name: &str, year: i32, s: &Submission) -> SubmissionJson {
        SubmissionJson {
            actor: s.last_actor.clone(),
            at: s.last_at,
            reopened_reason: s.reopened_reason.clone(),
            submitted: s.submitted,
            township: township.to_string(),
            township_name: name.to_string(),
            version: s.version,
            year,
        }
    }
}

/// A department's grade for a year.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AppraisalGrade)]
pub struct GradeJson {
    pub actor: String,
    pub at: DateTime<Utc>,
    /// 1.1 / 1.0 / 0.9 / 0.8.
    pub coefficient: Option<f64>,
    pub grade: u8,
    pub note: String,
    pub unit: String,
    /// The grade's stream version (a later grade for the same year replaces it).
    pub version: i64,
    pub year: i32,
    /// Grades 3 and 4.
    pub yellow_card: bool,
}

/// A bulletin as its list shows it (the frozen answer left out).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AppraisalBulletinHead)]
pub struct BulletinHeadJson {
    pub actor: String,
    pub id: Uuid,
    pub period: String,
    /// The last event at or below the feed's gap-safe horizon when it was frozen.
    pub position: i64,
    /// That event's hash.
    pub position_hash: String,
    pub profile: String,
    pub published_at: DateTime<Utc>,
    /// The unit whose subtree it covers (null: the whole organisation).
    pub unit: Option<String>,
}

impl From<&crate::repo::appraisal::BulletinHead> for BulletinHeadJson {
    fn from(h: &crate::repo::appraisal::BulletinHead) -> Self {
        BulletinHeadJson {
            actor: h.actor.clone(),
            id: h.id,
            period: h.period.clone(),
            position: h.position,
            position_hash: h.position_hash.clone(),
            profile: h.profile.clone(),
            published_at: h.published_at,
            unit: h.unit.clone(),
        }
    }
}

/// A value as the answer's JSON text, keys in alphabetical order.
pub fn sorted_text<T: Serialize>(v: &T) -> String {
    // Plain structs of strings, numbers and times: serializing cannot fail.
    serde_json::to_value(v)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| "{}".into())
}
