//! The file format of a profile and its parsing: every field checked, each
//! problem named by its place in the file ([`parse_profile`]).

use super::*;

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
    // Each of a pair of shares lies between 0 and 1.
    let shares = |pair: [(&str, f64); 2]| match pair
        .iter()
        .find(|(_, v)| !(v.is_finite() && (0.0..=1.0).contains(v)))
    {
        Some((f, _)) => Err(err(f.to_string(), "must be between 0 and 1".into())),
        None => Ok(()),
    };
    if let Some(y) = p.yearly {
        shares([
            ("yearly.quarter_weight", y.quarter_weight),
            ("yearly.year_end_weight", y.year_end_weight),
        ])?;
        if (y.quarter_weight + y.year_end_weight - 1.0).abs() > 1e-9 {
            return Err(err(
                "yearly".into(),
                "quarter_weight and year_end_weight must add up to 1".into(),
            ));
        }
    }
    if let Some(w) = p.weights {
        shares([
            ("weights.department", w.department),
            ("weights.agency", w.agency),
        ])?;
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
