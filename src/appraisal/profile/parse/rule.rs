//! A rule item's `rule`: its kind, the fields each kind takes, and their checks.

use super::*;

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

    /// The optional fields this kind uses (besides kind).
    fn fields(self) -> &'static [&'static str] {
        match self {
            RuleKind::Each => &["metric", "points_each"],
            RuleKind::Tickets => &["metrics", "points_each"],
            RuleKind::RateSteps => &["metric", "step", "points_per_step"],
            RuleKind::RateBelow => &["metric", "threshold", "points"],
            RuleKind::RateWeight => &["metric", "weight"],
            RuleKind::AreaReports => &["categories", "source", "points_each"],
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleFile {
    #[serde(default)]
    kind: RuleKind,
    #[serde(default)]
    metric: Option<String>,
    #[serde(default)]
    metrics: Option<Vec<String>>,
    #[serde(default)]
    points_each: Option<f64>,
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

pub(super) fn check_rule(
    r: RuleFile,
    at: &dyn Fn(&str) -> String,
) -> Result<How, (String, String)> {
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
            if let Some(s) = r.source.as_deref()
                && Source::parse(s).is_none()
            {
                return Err((
                    at("source"),
                    format!(
                        "{s:?} is not a source; use one of {}, or leave it out for all",
                        Source::ALL.map(Source::as_str).join(", ")
                    ),
                ));
            }
            How::AreaReports {
                categories,
                source: r.source,
                points_each: deduction(r.points_each, "points_each")?,
            }
        }
    };
    Ok(how)
}
