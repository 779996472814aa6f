//! Appraisal rule profiles (考核方案): JSON files under `schema/appraisal/`, compiled
//! into the binary and checked when the service starts. Pure: text in, a validated
//! [`Profile`] or a [`ProfileError`] naming the file and the field out.
//!
//! A profile is a base score and sections of rules. A section applies to units by
//! kind (and, for agencies, agency type) and may cap its total deduction; a rule
//! turns one statistic of a unit in a period into a deduction (points ≤ 0), with the
//! events behind it. The rule kinds:
//!
//! | kind | fields | deduction |
//! |---|---|---|
//! | `each` (default) | `metric` (evidence), `points_each`, `cap`? | `points_each` × events |
//! | `tickets` | `metrics` (evidence), `points_each`, `cap`? | `points_each` × distinct tickets among the events |
//! | `rate_steps` | `metric` (rate), `step`, `points_per_step`, `cap`? | `points_per_step` × ⌊(1 − rate) / step⌋ |
//! | `rate_below` | `metric` (rate), `threshold`, `points` | `points` when rate < threshold |
//! | `rate_weight` | `metric` (rate), `weight` | −`weight` × (1 − rate) |
//! | `area_reports` | `categories`, `source`?, `points_each`, `cap`? | `points_each` × tickets accepted in the unit's township |
//!
//! Evidence metrics: `late_signs`, `late_completions`, `not_on_time`, `overdue`,
//! `verification_failed`, `supervised_repeat`, `feedback_unsatisfied`,
//! `feedback_basic`, `returned`, `extension_approved`. Rate metrics: `on_time_rate`,
//! `signed_on_time_rate`, `satisfaction_rate`. A rate with nothing due deducts nothing.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::org::UnitKind;
use crate::org::model::AGENCY_TYPES;
use crate::projections::daily::Lists;
use crate::projections::stats::model::{Evidence, Figures};

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
    pub base: f64,
    /// 满意率 counts only "satisfied" (not "basically satisfied") when true.
    pub satisfaction_strict: bool,
    pub sections: Vec<Section>,
    /// How a year is scored; None: by the rules over the whole year.
    pub yearly: Option<Yearly>,
    /// The share of this (ticket-derived) evaluation in a unit's appraisal, by kind.
    pub weights: Option<Weights>,
}

impl Profile {
    /// The stored evidence lists some rule counts or lists: the others need not
    /// be read into the figures.
    pub fn stored_lists(&self) -> Lists {
        let strict = self.satisfaction_strict;
        let metrics = self
            .sections
            .iter()
            .flat_map(|s| &s.rules)
            .flat_map(|r| match &r.how {
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

#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Yearly {
    pub quarter_weight: f64,
    pub year_end_weight: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    pub department: f64,
    pub agency: f64,
}

impl Weights {
    pub fn of(&self, kind: UnitKind) -> Option<f64> {
        match kind {
            UnitKind::Department => Some(self.department),
            UnitKind::Agency => Some(self.agency),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    pub name: String,
    pub title: Option<String>,
    pub kinds: Vec<UnitKind>,
    /// Agencies only of these types (None: any agency).
    pub agency_types: Option<Vec<String>>,
    /// The most this section deducts in total (a positive number of points).
    pub cap: Option<f64>,
    pub rules: Vec<Rule>,
}

impl Section {
    /// Whether the section scores a unit of this kind and agency type.
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
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub rule: String,
    pub title: Option<String>,
    /// The most this rule deducts (a positive number of points).
    pub cap: Option<f64>,
    pub how: How,
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

// ---------------------------------------------------------------------------
// The file format
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    source: Option<String>,
    base: f64,
    #[serde(default)]
    satisfaction_strict: bool,
    sections: Vec<SectionFile>,
    #[serde(default)]
    yearly: Option<Yearly>,
    #[serde(default)]
    weights: Option<Weights>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionFile {
    name: String,
    #[serde(default)]
    title: Option<String>,
    applies_to: AppliesTo,
    #[serde(default)]
    cap: Option<f64>,
    rules: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppliesTo {
    kinds: Vec<String>,
    #[serde(default)]
    agency_types: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RuleKind {
    #[default]
    Each,
    Tickets,
    RateSteps,
    RateBelow,
    RateWeight,
    AreaReports,
}

impl RuleKind {
    fn as_str(self) -> &'static str {
        match self {
            RuleKind::Each => "each",
            RuleKind::Tickets => "tickets",
            RuleKind::RateSteps => "rate_steps",
            RuleKind::RateBelow => "rate_below",
            RuleKind::RateWeight => "rate_weight",
            RuleKind::AreaReports => "area_reports",
        }
    }

    /// The optional fields this kind uses (besides rule, title, kind).
    fn fields(self) -> &'static [&'static str] {
        match self {
            RuleKind::Each => &["metric", "points_each", "cap"],
            RuleKind::Tickets => &["metrics", "points_each", "cap"],
            RuleKind::RateSteps => &["metric", "step", "points_per_step", "cap"],
            RuleKind::RateBelow => &["metric", "threshold", "points"],
            RuleKind::RateWeight => &["metric", "weight", "cap"],
            RuleKind::AreaReports => &["categories", "source", "points_each", "cap"],
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    rule: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    kind: RuleKind,
    #[serde(default)]
    metric: Option<String>,
    #[serde(default)]
    metrics: Option<Vec<String>>,
    #[serde(default)]
    points_each: Option<f64>,
    #[serde(default)]
    cap: Option<f64>,
    #[serde(default)]
    step: Option<f64>,
    #[serde(default)]
    points_per_step: Option<f64>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    points: Option<f64>,
    #[serde(default)]
    weight: Option<f64>,
    #[serde(default)]
    categories: Option<Vec<String>>,
    #[serde(default)]
    source: Option<String>,
}

impl RuleFile {
    /// The optional fields that are present.
    fn present(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut add = |name: &'static str, set: bool| {
            if set {
                out.push(name);
            }
        };
        add("metric", self.metric.is_some());
        add("metrics", self.metrics.is_some());
        add("points_each", self.points_each.is_some());
        add("cap", self.cap.is_some());
        add("step", self.step.is_some());
        add("points_per_step", self.points_per_step.is_some());
        add("threshold", self.threshold.is_some());
        add("points", self.points.is_some());
        add("weight", self.weight.is_some());
        add("categories", self.categories.is_some());
        add("source", self.source.is_some());
        out
    }
}

/// Parses and checks one profile; `file` names it in errors.
pub fn parse_profile(text: &str, file: &str) -> Result<Profile, ProfileError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let raw: ProfileFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        let field = if path == "." {
            missing_field(&msg).unwrap_or_else(|| "(the file)".into())
        } else {
            path
        };
        ProfileError::new(file, field, msg)
    })?;
    let err = |field: String, msg: String| ProfileError::new(file, field, msg);
    let p = raw;
    if p.name.is_empty()
        || !p
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(err(
            "name".into(),
            "must be lowercase letters, digits and '-' (it is the profile= of the API)".into(),
        ));
    }
    if p.title.trim().is_empty() {
        return Err(err("title".into(), "must not be empty".into()));
    }
    if !(p.base.is_finite() && p.base > 0.0) {
        return Err(err("base".into(), "must be a positive number".into()));
    }
    if p.sections.is_empty() {
        return Err(err(
            "sections".into(),
            "a profile needs at least one section".into(),
        ));
    }
    if let Some(y) = p.yearly {
        for (f, v) in [
            ("yearly.quarter_weight", y.quarter_weight),
            ("yearly.year_end_weight", y.year_end_weight),
        ] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return Err(err(f.into(), "must be between 0 and 1".into()));
            }
        }
        if (y.quarter_weight + y.year_end_weight - 1.0).abs() > 1e-9 {
            return Err(err(
                "yearly".into(),
                "quarter_weight and year_end_weight must add up to 1".into(),
            ));
        }
    }
    if let Some(w) = p.weights {
        for (f, v) in [
            ("weights.department", w.department),
            ("weights.agency", w.agency),
        ] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                return Err(err(f.into(), "must be between 0 and 1".into()));
            }
        }
    }
    let mut section_names = HashSet::new();
    let mut rule_names = HashSet::new();
    let mut sections = Vec::with_capacity(p.sections.len());
    for (si, s) in p.sections.into_iter().enumerate() {
        let at = |f: &str| format!("sections[{si}].{f}");
        if s.name.trim().is_empty() {
            return Err(err(at("name"), "must not be empty".into()));
        }
        if !section_names.insert(s.name.clone()) {
            return Err(err(at("name"), format!("{:?} names two sections", s.name)));
        }
        if s.applies_to.kinds.is_empty() {
            return Err(err(
                at("applies_to.kinds"),
                "name at least one kind: department, agency".into(),
            ));
        }
        let mut kinds = Vec::new();
        for (ki, k) in s.applies_to.kinds.iter().enumerate() {
            let kind = match k.as_str() {
                "department" => UnitKind::Department,
                "agency" => UnitKind::Agency,
                _ => {
                    return Err(err(
                        at(&format!("applies_to.kinds[{ki}]")),
                        format!(
                            "{k:?} is not a kind of unit that receives tickets; use department or agency"
                        ),
                    ));
                }
            };
            kinds.push(kind);
        }
        if let Some(types) = &s.applies_to.agency_types {
            if !kinds.contains(&UnitKind::Agency) {
                return Err(err(
                    at("applies_to.agency_types"),
                    "only agencies have a type: add \"agency\" to kinds or drop agency_types"
                        .into(),
                ));
            }
            if types.is_empty() {
                return Err(err(
                    at("applies_to.agency_types"),
                    "an empty list would match no agency; drop it to match every agency".into(),
                ));
            }
            for (ti, t) in types.iter().enumerate() {
                if !AGENCY_TYPES.contains(&t.as_str()) {
                    return Err(err(
                        at(&format!("applies_to.agency_types[{ti}]")),
                        format!(
                            "{t:?} is not an agency type; the types are {}",
                            AGENCY_TYPES.join(", ")
                        ),
                    ));
                }
            }
        }
        check_cap(s.cap).map_err(|m| err(at("cap"), m))?;
        if s.rules.is_empty() {
            return Err(err(at("rules"), "a section needs at least one rule".into()));
        }
        let mut rules = Vec::with_capacity(s.rules.len());
        for (ri, r) in s.rules.into_iter().enumerate() {
            let at = |f: &str| format!("sections[{si}].rules[{ri}].{f}");
            if r.rule.trim().is_empty() {
                return Err(err(at("rule"), "must not be empty".into()));
            }
            if !rule_names.insert(r.rule.clone()) {
                return Err(err(
                    at("rule"),
                    format!("{:?} names two rules of the profile", r.rule),
                ));
            }
            rules.push(check_rule(r, &at).map_err(|(f, m)| err(f, m))?);
        }
        sections.push(Section {
            name: s.name,
            title: s.title,
            kinds,
            agency_types: s.applies_to.agency_types,
            cap: s.cap,
            rules,
        });
    }
    Ok(Profile {
        name: p.name,
        title: p.title,
        description: p.description,
        source: p.source,
        base: p.base,
        satisfaction_strict: p.satisfaction_strict,
        sections,
        yearly: p.yearly,
        weights: p.weights,
    })
}

fn check_cap(cap: Option<f64>) -> Result<(), String> {
    match cap {
        Some(c) if !(c.is_finite() && c >= 0.0) => Err(
            "must be a positive number of points (the most deducted), or null for no cap".into(),
        ),
        _ => Ok(()),
    }
}

fn check_rule(r: RuleFile, at: &dyn Fn(&str) -> String) -> Result<Rule, (String, String)> {
    let kind = r.kind;
    for f in r.present() {
        if !kind.fields().contains(&f) {
            return Err((
                at(f),
                format!(
                    "is not used by a rule of kind {}; its fields are {}",
                    kind.as_str(),
                    kind.fields().join(", ")
                ),
            ));
        }
    }
    let need = |v: Option<f64>, f: &str| -> Result<f64, (String, String)> {
        match v {
            None => Err((at(f), format!("a rule of kind {} needs {f}", kind.as_str()))),
            Some(x) if !x.is_finite() => Err((at(f), "must be a number".into())),
            Some(x) => Ok(x),
        }
    };
    let deduction = |v: Option<f64>, f: &str| -> Result<f64, (String, String)> {
        let x = need(v, f)?;
        if x > 0.0 {
            return Err((
                at(f),
                "must be negative or zero: a rule deducts points (bonus points are entered by people)"
                    .into(),
            ));
        }
        Ok(x)
    };
    let evidence_metric = |m: &str, f: String| -> Result<EvidenceMetric, (String, String)> {
        EvidenceMetric::parse(m).ok_or_else(|| {
            let hint = if RateMetric::parse(m).is_some() {
                " (it is a rate: use a rate_steps, rate_below or rate_weight rule)"
            } else {
                ""
            };
            (
                f,
                format!(
                    "{m:?} is not an evidence metric{hint}; they are {}",
                    EvidenceMetric::ALL.map(|m| m.as_str()).join(", ")
                ),
            )
        })
    };
    let rate_metric = |m: Option<&str>| -> Result<RateMetric, (String, String)> {
        let m = m.ok_or_else(|| {
            (
                at("metric"),
                format!("a rule of kind {} needs metric", kind.as_str()),
            )
        })?;
        RateMetric::parse(m).ok_or_else(|| {
            (
                at("metric"),
                format!(
                    "{m:?} is not a rate metric; they are {}",
                    RateMetric::ALL.map(|m| m.as_str()).join(", ")
                ),
            )
        })
    };
    check_cap(r.cap).map_err(|m| (at("cap"), m))?;
    let how = match kind {
        RuleKind::Each => {
            let m = r
                .metric
                .as_deref()
                .ok_or_else(|| (at("metric"), "a rule of kind each needs metric".to_string()))?;
            How::Each {
                metric: evidence_metric(m, at("metric"))?,
                points_each: deduction(r.points_each, "points_each")?,
            }
        }
        RuleKind::Tickets => {
            let ms = r.metrics.as_deref().unwrap_or_default();
            if ms.is_empty() {
                return Err((
                    at("metrics"),
                    "a rule of kind tickets needs a non-empty list of evidence metrics".into(),
                ));
            }
            let mut metrics = Vec::new();
            for (i, m) in ms.iter().enumerate() {
                metrics.push(evidence_metric(m, at(&format!("metrics[{i}]")))?);
            }
            How::Tickets {
                metrics,
                points_each: deduction(r.points_each, "points_each")?,
            }
        }
        RuleKind::RateSteps => {
            let metric = rate_metric(r.metric.as_deref())?;
            let step = need(r.step, "step")?;
            if !(step > 0.0 && step <= 1.0) {
                return Err((
                    at("step"),
                    "must be a fraction greater than 0 and at most 1 (0.05 = 5 points)".into(),
                ));
            }
            How::RateSteps {
                metric,
                step,
                points_per_step: deduction(r.points_per_step, "points_per_step")?,
            }
        }
        RuleKind::RateBelow => {
            let metric = rate_metric(r.metric.as_deref())?;
            let threshold = need(r.threshold, "threshold")?;
            if !(0.0..=1.0).contains(&threshold) {
                return Err((
                    at("threshold"),
                    "must be a fraction between 0 and 1 (0.95 = 95%)".into(),
                ));
            }
            How::RateBelow {
                metric,
                threshold,
                points: deduction(r.points, "points")?,
            }
        }
        RuleKind::RateWeight => {
            let metric = rate_metric(r.metric.as_deref())?;
            let weight = need(r.weight, "weight")?;
            if weight < 0.0 {
                return Err((
                    at("weight"),
                    "must be positive: the points a rate of 0 loses".into(),
                ));
            }
            How::RateWeight { metric, weight }
        }
        RuleKind::AreaReports => {
            let categories = r.categories.unwrap_or_default();
            if categories.is_empty() || categories.iter().any(|c| c.trim().is_empty()) {
                return Err((
                    at("categories"),
                    "a rule of kind area_reports needs a list of category codes".into(),
                ));
            }
            if let Some(s) = r.source.as_deref() {
                if s != "grid" && s != "hotline" {
                    return Err((
                        at("source"),
                        format!(
                            "{s:?} is not a source; use grid or hotline, or leave it out for both"
                        ),
                    ));
                }
            }
            How::AreaReports {
                categories,
                source: r.source,
                points_each: deduction(r.points_each, "points_each")?,
            }
        }
    };
    Ok(Rule {
        rule: r.rule,
        title: r.title,
        cap: r.cap,
        how,
    })
}

fn missing_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile reads the lists its rules count, the rates' shortfalls included,
    /// and not the others.
    #[test]
    fn a_profile_reads_the_lists_its_rules_use() {
        use crate::projections::daily::{EVIDENCE_LISTS, Lists};
        let profiles = builtin().expect("the shipped profiles are valid");
        let default = profiles.get(DEFAULT).expect("the default profile");
        let lists = default.stored_lists();
        let read: Vec<&str> = EVIDENCE_LISTS
            .iter()
            .enumerate()
            .filter(|(i, _)| lists.has(*i))
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(
            read,
            vec![
                "late_signs",
                "not_on_time",
                "late_completions",
                "verification_failed",
                "supervised_repeat",
                "feedback_unsatisfied",
            ]
        );
        let strict = Profile {
            satisfaction_strict: true,
            ..default.clone()
        };
        assert_eq!(strict.stored_lists(), lists.with("feedback_basic"));
        assert_ne!(lists, Lists::ALL);
    }

    /// A rate's shortfall is the union of the lists `shortfall_lists` names.
    #[test]
    fn shortfalls_come_from_the_lists_they_name() {
        let item = |n: u128| Evidence {
            ticket: uuid::Uuid::from_u128(n),
            position: n as i64,
        };
        let f = Figures {
            late_signs: vec![item(1)],
            not_on_time: vec![item(2)],
            feedback_unsatisfied: vec![item(3), item(5)],
            feedback_basic: vec![item(4)],
            ..Figures::default()
        };
        for m in [
            RateMetric::OnTimeRate,
            RateMetric::SignedOnTimeRate,
            RateMetric::SatisfactionRate,
        ] {
            for strict in [false, true] {
                let mut want: Vec<Evidence> = m
                    .shortfall_lists(strict)
                    .iter()
                    .flat_map(|l| l.evidence(&f).iter().copied())
                    .collect();
                want.sort();
                assert_eq!(m.shortfall(&f, strict), want);
                assert_eq!(m.shortfall_len(&f, strict), want.len());
            }
        }
    }
    use serde_json::{Value, json};

    fn minimal() -> Value {
        json!({
            "name": "t",
            "title": "T",
            "base": 100,
            "sections": [{
                "name": "s",
                "applies_to": {"kinds": ["department", "agency"]},
                "rules": [{"rule": "late_sign", "metric": "late_signs", "points_each": -0.5, "cap": 5}]
            }]
        })
    }

    fn parse(v: &Value) -> Result<Profile, ProfileError> {
        parse_profile(&v.to_string(), "test.json")
    }

    fn field_of(v: Value) -> String {
        let e = parse(&v).expect_err("the profile is refused");
        assert!(!e.message.is_empty());
        e.field
    }

    #[test]
    fn the_shipped_profiles_parse() {
        let ps = builtin().expect("the shipped profiles are valid");
        assert_eq!(ps.names(), vec![DEFAULT, "beijing-three-rates"]);
        let d = ps.get(DEFAULT).expect("default");
        assert_eq!(d.base, 100.0);
        assert_eq!(
            d.yearly,
            Some(Yearly {
                quarter_weight: 0.4,
                year_end_weight: 0.6
            })
        );
        assert_eq!(d.weights.and_then(|w| w.of(UnitKind::Agency)), Some(0.6));
        assert!(
            d.sections
                .iter()
                .any(|s| s.name == "supervision" && s.cap == Some(20.0))
        );
        let b = ps.get("beijing-three-rates").expect("beijing");
        let weights: f64 = b.sections[0]
            .rules
            .iter()
            .map(|r| match r.how {
                How::RateWeight { weight, .. } => weight,
                _ => 0.0,
            })
            .sum();
        assert_eq!(weights, b.base);
    }

    #[test]
    fn a_minimal_profile_parses_with_each_as_the_default_kind() {
        let p = parse(&minimal()).expect("valid");
        assert_eq!(
            p.sections[0].rules[0].how,
            How::Each {
                metric: EvidenceMetric::LateSigns,
                points_each: -0.5
            }
        );
        assert_eq!(p.sections[0].rules[0].cap, Some(5.0));
        assert_eq!(p.yearly, None);
    }

    #[test]
    fn a_bad_profile_names_the_field() {
        let mut v = minimal();
        v["colour"] = json!("red");
        assert_eq!(field_of(v), "colour");

        let mut v = minimal();
        v.as_object_mut().expect("object").remove("base");
        assert_eq!(field_of(v), "base");

        let mut v = minimal();
        v["sections"][0]["rules"][0]["metric"] = json!("late_sings");
        assert_eq!(field_of(v), "sections[0].rules[0].metric");

        let mut v = minimal();
        v["sections"][0]["rules"][0]["metric"] = json!("on_time_rate");
        assert_eq!(field_of(v), "sections[0].rules[0].metric");

        let mut v = minimal();
        v["sections"][0]["rules"][0]["points_each"] = json!(1);
        assert_eq!(field_of(v), "sections[0].rules[0].points_each");

        let mut v = minimal();
        v["sections"][0]["rules"][0]["step"] = json!(0.05);
        assert_eq!(field_of(v), "sections[0].rules[0].step");

        let mut v = minimal();
        v["sections"][0]["rules"][0]["kind"] = json!("rate_steps");
        v["sections"][0]["rules"][0]["metric"] = json!("on_time_rate");
        v["sections"][0]["rules"][0]
            .as_object_mut()
            .expect("object")
            .remove("points_each");
        assert_eq!(field_of(v), "sections[0].rules[0].step");

        let mut v = minimal();
        v["sections"][0]["rules"][0]["kind"] = json!("sometimes");
        assert_eq!(field_of(v), "sections[0].rules[0].kind");

        let mut v = minimal();
        v["sections"][0]["rules"][0]["unknown"] = json!(1);
        assert_eq!(field_of(v), "sections[0].rules[0].unknown");

        let mut v = minimal();
        v["sections"][0]["applies_to"]["kinds"] = json!(["grid"]);
        assert_eq!(field_of(v), "sections[0].applies_to.kinds[0]");

        let mut v = minimal();
        v["sections"][0]["applies_to"]["agency_types"] = json!(["bakery"]);
        assert_eq!(field_of(v), "sections[0].applies_to.agency_types[0]");

        let mut v = minimal();
        v["sections"][0]["cap"] = json!(-1);
        assert_eq!(field_of(v), "sections[0].cap");

        let mut v = minimal();
        v["yearly"] = json!({"quarter_weight": 0.5, "year_end_weight": 0.6});
        assert_eq!(field_of(v), "yearly");

        let mut v = minimal();
        v["name"] = json!("Has Spaces");
        assert_eq!(field_of(v), "name");

        let mut v = minimal();
        let rule = v["sections"][0]["rules"][0].clone();
        v["sections"][0]["rules"]
            .as_array_mut()
            .expect("array")
            .push(rule);
        assert_eq!(field_of(v), "sections[0].rules[1].rule");

        let mut v = minimal();
        v["sections"][0]["rules"][0] = json!({"rule": "x", "kind": "area_reports", "categories": ["city.a"], "source": "fax", "points_each": -1});
        assert_eq!(field_of(v), "sections[0].rules[0].source");
    }

    #[test]
    fn the_error_reads_with_file_and_field() {
        let mut v = minimal();
        v["sections"][0]["rules"][0]["metric"] = json!("nope");
        let e = parse(&v).expect_err("refused");
        let s = e.to_string();
        assert!(
            s.starts_with("appraisal profile test.json: sections[0].rules[0].metric: "),
            "{s}"
        );
    }

    #[test]
    fn sections_apply_by_kind_and_agency_type() {
        let s = Section {
            name: "s".into(),
            title: None,
            kinds: vec![UnitKind::Agency],
            agency_types: Some(vec!["market".into()]),
            cap: None,
            rules: vec![],
        };
        assert!(s.applies(UnitKind::Agency, Some("market")));
        assert!(!s.applies(UnitKind::Agency, Some("enforcement")));
        assert!(!s.applies(UnitKind::Agency, None));
        assert!(!s.applies(UnitKind::Department, None));
    }
}
