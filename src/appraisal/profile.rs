//! Appraisal rule profiles (考核方案): JSON files under `schema/appraisal/`, compiled
//! into the binary and checked when the service starts. Pure: text in, a validated
//! [`Profile`] or a [`ProfileError`] naming the file and the field out.
//!
//! A profile is a list of sheets (考核评价表), one per kind of unit: a sheet applies
//! to units by kind (and, for agencies, agency type), has a base (full) score, a
//! weight, sections with their full points (each section's cap) and items. An item
//! is either a rule computed from a unit's tickets in a period (with the events
//! behind it) or manual: entered by people as a count (`points_each` each) or as
//! free points in a range. A section may be `bonus` (加减分: added after the
//! weighting) or `reference` (computed and shown, never counted). The rule kinds:
//!
//! | kind | fields | deduction |
//! |---|---|---|
//! | `each` (default) | `metric` (evidence), `points_each` | `points_each` × events |
//! | `tickets` | `metrics` (evidence), `points_each` | `points_each` × distinct tickets among the events |
//! | `rate_steps` | `metric` (rate), `step`, `points_per_step` | `points_per_step` × ⌊(1 − rate) / step⌋ |
//! | `rate_below` | `metric` (rate), `threshold`, `points` | `points` when rate < threshold |
//! | `rate_weight` | `metric` (rate), `weight` | −`weight` × (1 − rate) |
//! | `area_reports` | `categories`, `source`?, `points_each` | `points_each` × tickets accepted in the unit's township |
//!
//! Evidence metrics: `late_signs`, `late_completions`, `not_on_time`, `overdue`,
//! `verification_failed`, `supervised_repeat`, `feedback_unsatisfied`,
//! `feedback_basic`, `returned`, `extension_approved`. Rate metrics: `on_time_rate`,
//! `signed_on_time_rate`, `satisfaction_rate`. A rate with nothing due deducts nothing.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::org::model::AGENCY_TYPES;
use crate::org::{Org, UnitKind};
use crate::projections::daily::Lists;
use crate::projections::stats::model::{Evidence, Figures};

mod parse;

pub use parse::parse_profile;

/// The profile used when a request names none.
pub const DEFAULT: &str = "weihai-etdz-2020";

/// The shipped profiles: (file, text).
const FILES: [(&str, &str); 2] = [
    (
        "schema/appraisal/weihai-etdz-2020.json",
        include_str!("../../schema/appraisal/weihai-etdz-2020.json"),
    ),
    (
        "schema/appraisal/beijing-three-rates.json",
        include_str!("../../schema/appraisal/beijing-three-rates.json"),
    ),
];

static BUILTIN: LazyLock<Result<Profiles, ProfileError>> = LazyLock::new(|| {
    let mut list = Vec::new();
    for (file, text) in FILES {
        let p = parse_profile(text, file)?;
        if list.iter().any(|q: &Profile| q.name == p.name) {
            return Err(ProfileError::new(
                file,
                "name",
                format!("{:?} is the name of another profile", p.name),
            ));
        }
        list.push(p);
    }
    if !list.iter().any(|p| p.name == DEFAULT) {
        return Err(ProfileError::new(
            "schema/appraisal",
            "name",
            format!("no profile is named {DEFAULT:?}, the default"),
        ));
    }
    Ok(Profiles { list })
});

/// The shipped profiles, checked once (the first call: the HTTP router makes it at
/// startup, so a bad profile stops the service with the error).
pub fn builtin() -> Result<&'static Profiles, &'static ProfileError> {
    BUILTIN.as_ref()
}

/// A set of profiles, in file order.
#[derive(Clone, Debug)]
pub struct Profiles {
    list: Vec<Profile>,
}

impl Profiles {
    pub fn new(list: Vec<Profile>) -> Profiles {
        Profiles { list }
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.list.iter().find(|p| p.name == name)
    }

    pub fn all(&self) -> &[Profile] {
        &self.list
    }

    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(|p| p.name.as_str()).collect()
    }
}

/// A profile that does not hold, with where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileError {
    pub file: String,
    /// The path of the field, e.g. `sections[1].rules[0].step`.
    pub field: String,
    pub message: String,
}

impl ProfileError {
    fn new(file: &str, field: impl Into<String>, message: impl Into<String>) -> ProfileError {
        ProfileError {
            file: file.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "appraisal profile {}: {}: {}",
            self.file, self.field, self.message
        )
    }
}

impl std::error::Error for ProfileError {}

// ---------------------------------------------------------------------------
// The validated profile
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub name: String,
    pub title: String,
    pub description: String,
    pub source: Option<String>,
    /// 满意率 counts only "satisfied" (not "basically satisfied") when true.
    pub satisfaction_strict: bool,
    /// The sheets, in file order: a unit is scored by the first that applies to it.
    pub sheets: Vec<Sheet>,
}

impl Profile {
    /// The sheet that scores `unit` (the first whose `applies_to` matches its kind
    /// and agency type), or None: the unit is not appraised under this profile.
    pub fn sheet_for(&self, org: &Org, unit: &str) -> Option<&Sheet> {
        let u = org.unit(unit)?;
        self.sheet_for_kind(u.kind, u.agency_type.as_deref())
    }

    /// The sheet for a unit of this kind and agency type.
    pub fn sheet_for_kind(&self, kind: UnitKind, agency_type: Option<&str>) -> Option<&Sheet> {
        self.sheets.iter().find(|s| s.applies(kind, agency_type))
    }

    /// The sheet of this name.
    pub fn sheet(&self, name: &str) -> Option<&Sheet> {
        self.sheets.iter().find(|s| s.name == name)
    }

    /// Every rule item of every sheet (reference sections included).
    pub fn rules(&self) -> impl Iterator<Item = &How> {
        self.sheets
            .iter()
            .flat_map(|s| &s.sections)
            .flat_map(|s| &s.items)
            .filter_map(|i| match &i.how {
                ItemHow::Rule(h) => Some(h),
                _ => None,
            })
    }

    /// The stored evidence lists some rule counts or lists: the others need not
    /// be read into the figures.
    pub fn stored_lists(&self) -> Lists {
        let strict = self.satisfaction_strict;
        let metrics = self.rules().flat_map(|h| match h {
            How::Each { metric, .. } => std::slice::from_ref(metric),
            How::Tickets { metrics, .. } => metrics.as_slice(),
            How::RateSteps { metric, .. }
            | How::RateBelow { metric, .. }
            | How::RateWeight { metric, .. } => metric.shortfall_lists(strict),
            How::AreaReports { .. } => &[],
        });
        metrics.fold(Lists::NONE, |l, m| l.with(m.as_str()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Yearly {
    pub quarter_weight: f64,
    pub year_end_weight: f64,
}

/// One kind of unit's appraisal sheet (考核评价表): its sections of items.
#[derive(Clone, Debug, PartialEq)]
pub struct Sheet {
    /// `department`, `judicial`, `enforcement`, `market` (the ranking's `kind`).
    pub name: String,
    pub title: String,
    /// The document section, e.g. "经技区发〔2020〕49号 三(三)".
    pub source: Option<String>,
    pub kinds: Vec<UnitKind>,
    /// Agencies only of these types (None: any agency).
    pub agency_types: Option<Vec<String>>,
    /// The full score (100; 30 for the departments' evaluation).
    pub base: f64,
    /// The share of this evaluation in the unit's yearly performance appraisal.
    pub weight: Option<f64>,
    /// How a year is scored; None: as any period, by the sheet over the whole year.
    pub yearly: Option<Yearly>,
    /// The score is the mean of this free item's entries for a year (the townships'
    /// evaluations of a department), not the base less deductions.
    pub mean_of: Option<String>,
    pub sections: Vec<Section>,
}

impl Sheet {
    /// Whether the sheet scores a unit of this kind and agency type.
    pub fn applies(&self, kind: UnitKind, agency_type: Option<&str>) -> bool {
        if !self.kinds.contains(&kind) {
            return false;
        }
        match (&self.agency_types, kind) {
            (Some(types), UnitKind::Agency) => {
                agency_type.is_some_and(|t| types.iter().any(|x| x == t))
            }
            _ => true,
        }
    }

    /// The item of this code, with its section.
    pub fn item(&self, code: &str) -> Option<(&Section, &Item)> {
        self.sections
            .iter()
            .find_map(|s| s.items.iter().find(|i| i.code == code).map(|i| (s, i)))
    }
}

/// A section of a sheet (e.g. 督查督办 (20分)).
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    pub name: String,
    /// The document's wording.
    pub title: String,
    /// Where in the document, e.g. "49号 三(三) 2.督查督办".
    pub source: Option<String>,
    /// The section's full points: the most its items deduct together (None for a
    /// bonus or reference section).
    pub points: Option<f64>,
    /// 加减分: its items are added after the weighting, never capped by the base.
    pub bonus: bool,
    /// Computed and shown, never counted (a department's ticket figures).
    pub reference: bool,
    /// Items sharing a cap (one numbered point of the document with several ways
    /// to lose its points).
    pub groups: Vec<Group>,
    pub items: Vec<Item>,
}

impl Section {
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }
}

/// Items of a section that share a cap.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub name: String,
    pub title: Option<String>,
    /// The most the group's items deduct together (a positive number of points).
    pub cap: f64,
}

/// One item of a sheet: computed from tickets or entered by people.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Stable, unique within the sheet, e.g. `supervision.late_completion`.
    pub code: String,
    /// The document's wording.
    pub title: String,
    /// The most the item deducts (or adds) in a period's sheet.
    pub cap: Option<f64>,
    /// The group of its section whose cap it shares.
    pub group: Option<String>,
    pub how: ItemHow,
    /// A manual item entered for a year only (`YYYY`).
    pub year_only: bool,
    /// A rule item: the tickets named by the active entries of this manual item of
    /// the same unit do not count here (they are counted there, e.g. 恶劣影响).
    pub except_tickets_of: Option<String>,
}

impl Item {
    /// Entered by people (counted or free), not computed.
    pub fn is_manual(&self) -> bool {
        !matches!(self.how, ItemHow::Rule(_))
    }
}

/// How an item is scored.
#[derive(Clone, Debug, PartialEq)]
pub enum ItemHow {
    /// Computed from tickets.
    Rule(How),
    /// Entered as a count: points = count × `points_each`.
    Counted { points_each: f64 },
    /// Entered as points in [min, max].
    Free { min: f64, max: f64 },
}

/// What a rule counts and how it turns that into points.
#[derive(Clone, Debug, PartialEq)]
pub enum How {
    Each {
        metric: EvidenceMetric,
        points_each: f64,
    },
    Tickets {
        metrics: Vec<EvidenceMetric>,
        points_each: f64,
    },
    RateSteps {
        metric: RateMetric,
        step: f64,
        points_per_step: f64,
    },
    RateBelow {
        metric: RateMetric,
        threshold: f64,
        points: f64,
    },
    RateWeight {
        metric: RateMetric,
        weight: f64,
    },
    AreaReports {
        categories: Vec<String>,
        /// `grid` or `hotline`; None: any source.
        source: Option<String>,
        points_each: f64,
    },
}

impl How {
    /// The rule's kind as profiles name it.
    pub fn kind(&self) -> &'static str {
        match self {
            How::Each { .. } => "each",
            How::Tickets { .. } => "tickets",
            How::RateSteps { .. } => "rate_steps",
            How::RateBelow { .. } => "rate_below",
            How::RateWeight { .. } => "rate_weight",
            How::AreaReports { .. } => "area_reports",
        }
    }
}

/// A figure that is a list of (ticket, event position).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvidenceMetric {
    LateSigns,
    LateCompletions,
    NotOnTime,
    Overdue,
    VerificationFailed,
    SupervisedRepeat,
    FeedbackUnsatisfied,
    FeedbackBasic,
    Returned,
    ExtensionApproved,
}

impl EvidenceMetric {
    pub const ALL: [EvidenceMetric; 10] = [
        EvidenceMetric::LateSigns,
        EvidenceMetric::LateCompletions,
        EvidenceMetric::NotOnTime,
        EvidenceMetric::Overdue,
        EvidenceMetric::VerificationFailed,
        EvidenceMetric::SupervisedRepeat,
        EvidenceMetric::FeedbackUnsatisfied,
        EvidenceMetric::FeedbackBasic,
        EvidenceMetric::Returned,
        EvidenceMetric::ExtensionApproved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceMetric::LateSigns => "late_signs",
            EvidenceMetric::LateCompletions => "late_completions",
            EvidenceMetric::NotOnTime => "not_on_time",
            EvidenceMetric::Overdue => "overdue",
            EvidenceMetric::VerificationFailed => "verification_failed",
            EvidenceMetric::SupervisedRepeat => "supervised_repeat",
            EvidenceMetric::FeedbackUnsatisfied => "feedback_unsatisfied",
            EvidenceMetric::FeedbackBasic => "feedback_basic",
            EvidenceMetric::Returned => "returned",
            EvidenceMetric::ExtensionApproved => "extension_approved",
        }
    }

    pub fn parse(s: &str) -> Option<EvidenceMetric> {
        EvidenceMetric::ALL.into_iter().find(|m| m.as_str() == s)
    }

    pub fn evidence(self, f: &Figures) -> &[Evidence] {
        match self {
            EvidenceMetric::LateSigns => &f.late_signs,
            EvidenceMetric::LateCompletions => &f.late_completions,
            EvidenceMetric::NotOnTime => &f.not_on_time,
            EvidenceMetric::Overdue => &f.overdue,
            EvidenceMetric::VerificationFailed => &f.verification_failed,
            EvidenceMetric::SupervisedRepeat => &f.supervised_repeat,
            EvidenceMetric::FeedbackUnsatisfied => &f.feedback_unsatisfied,
            EvidenceMetric::FeedbackBasic => &f.feedback_basic,
            EvidenceMetric::Returned => &f.returned,
            EvidenceMetric::ExtensionApproved => &f.extension_approved,
        }
    }
}

/// A figure that is a rate, with the events that keep it below 100%.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateMetric {
    /// 按时办结率: handled on time / due to finish; evidence: not on time.
    OnTimeRate,
    /// 按时签收率: signed on time / due to sign; evidence: late signs.
    SignedOnTimeRate,
    /// 满意率; evidence: unsatisfied feedback (and basically satisfied when strict).
    SatisfactionRate,
}

impl RateMetric {
    pub const ALL: [RateMetric; 3] = [
        RateMetric::OnTimeRate,
        RateMetric::SignedOnTimeRate,
        RateMetric::SatisfactionRate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RateMetric::OnTimeRate => "on_time_rate",
            RateMetric::SignedOnTimeRate => "signed_on_time_rate",
            RateMetric::SatisfactionRate => "satisfaction_rate",
        }
    }

    pub fn parse(s: &str) -> Option<RateMetric> {
        RateMetric::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// The rate, or None when nothing was due (no feedback, for satisfaction).
    pub fn rate(self, f: &Figures, strict: bool) -> Option<f64> {
        match self {
            RateMetric::OnTimeRate => f.on_time_rate(),
            RateMetric::SignedOnTimeRate => f.signed_on_time_rate(),
            RateMetric::SatisfactionRate => f.satisfaction_rate(strict),
        }
    }

    /// The lists [`RateMetric::shortfall`] takes its items from.
    pub fn shortfall_lists(self, strict: bool) -> &'static [EvidenceMetric] {
        match self {
            RateMetric::OnTimeRate => &[EvidenceMetric::NotOnTime],
            RateMetric::SignedOnTimeRate => &[EvidenceMetric::LateSigns],
            RateMetric::SatisfactionRate if strict => &[
                EvidenceMetric::FeedbackUnsatisfied,
                EvidenceMetric::FeedbackBasic,
            ],
            RateMetric::SatisfactionRate => &[EvidenceMetric::FeedbackUnsatisfied],
        }
    }

    /// The events that keep the rate below 100%, sorted.
    /// How many items [`RateMetric::shortfall`] lists, without listing them.
    pub fn shortfall_len(self, f: &Figures, strict: bool) -> usize {
        match self {
            RateMetric::OnTimeRate => f.not_on_time.len(),
            RateMetric::SignedOnTimeRate => f.late_signs.len(),
            RateMetric::SatisfactionRate => {
                f.feedback_unsatisfied.len() + if strict { f.feedback_basic.len() } else { 0 }
            }
        }
    }

    pub fn shortfall(self, f: &Figures, strict: bool) -> Vec<Evidence> {
        let mut v = match self {
            RateMetric::OnTimeRate => f.not_on_time.clone(),
            RateMetric::SignedOnTimeRate => f.late_signs.clone(),
            RateMetric::SatisfactionRate => {
                let mut v = f.feedback_unsatisfied.clone();
                if strict {
                    v.extend(f.feedback_basic.iter().cloned());
                }
                v
            }
        };
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests;
