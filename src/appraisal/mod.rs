//! Appraisal scores (考核, DESIGN §5): a rule profile ([`profile`]) turns each unit's
//! own statistics for a period into deductions from a base score, and every
//! deduction lists the tickets and event positions behind it.
//!
//! Nothing is stored: the score is computed at query time from the `unit_stats`
//! projection (`projections::stats`), so a changed profile applies to every period at
//! once and a score can always be reproduced from the log. [`appraise`] is pure
//! (figures in, scores out); [`appraise_from_store`] reads what it needs.
//!
//! How the numbers are made:
//! - a rule's points are rounded to 2 decimals and capped by the rule's `cap`; a
//!   section's `cap` then limits the section's total: the section's rules keep their
//!   order and their evidence, the points of the rules past the cap are cut so that
//!   the section deducts exactly its cap, every deduction of that section is marked
//!   `capped: true`, and one whose points were cut carries `uncapped_points` (what
//!   it would have deducted alone). So `score = base + Σ points` always holds;
//! - score = base + the deductions, never below 0;
//! - a year (profile with `yearly`): the mean of the scores of its quarters that have
//!   started (ended or in progress) × `quarter_weight` + the year-end score (the
//!   rules over the whole year, the listed deductions) × `year_end_weight` + bonus
//!   points (entered by people: 0 here). Without `yearly`, a year is the year-end
//!   score;
//! - `weight`: the share of this ticket-derived evaluation in the unit's appraisal
//!   (the profile's `weights` by unit kind; the rest is entered by people).

pub mod json;
pub mod ledger;
pub mod profile;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::org::{Org, UnitKind};
use crate::projections::periods::{Granularity, Period};
use crate::projections::stats;
use crate::projections::stats::model::{
    AreaReport, Evidence, Figures, Request, Table, Turnarounds, round,
};
use crate::store::{Pool, StoreError};
pub use profile::{How, Profile, ProfileError, Profiles, Rule, Section};

/// One rule's deduction for a unit in a period.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Deduction {
    pub rule: String,
    /// Events (or tickets, for a `tickets` rule) counted.
    pub count: u64,
    /// Negative: the points deducted.
    pub points: f64,
    pub evidence: Vec<Evidence>,
    pub section: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The rate a rate rule judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// A cap (the rule's, or its section's) limited this deduction or its section.
    pub capped: bool,
    /// What the rule would have deducted without the caps, when they cut it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uncapped_points: Option<f64>,
}

/// A period's score, for the quarters behind a yearly score.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PeriodScore {
    pub period: String,
    pub score: f64,
}

/// One unit's appraisal for a period.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UnitAppraisal {
    pub unit: String,
    pub base: f64,
    pub score: f64,
    pub deductions: Vec<Deduction>,
    pub unit_name: String,
    /// The unit's kind: `department` or `agency`.
    #[schema(value_type = String)]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agency_type: Option<String>,
    /// The share of this evaluation in the unit's appraisal (None: the profile says not).
    pub weight: Option<f64>,
    /// Year only: the quarters that have started and their scores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarters: Option<Vec<PeriodScore>>,
    /// Year only: the rules over the whole year.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub year_end_score: Option<f64>,
    /// Year only: bonus points, entered by people (0: out of scope here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bonus: Option<f64>,
}

/// The units an appraisal covers under `root` (a unit code): every department and
/// agency within it, in organisation order.
pub fn appraised_units(org: &Org, root: &str) -> Vec<String> {
    org.units()
        .iter()
        .filter(|u| matches!(u.kind, UnitKind::Department | UnitKind::Agency))
        .filter(|u| org.is_within(&u.code, root))
        .map(|u| u.code.clone())
        .collect()
}

/// Scores every unit of `table` for `period`.
///
/// `table` holds each unit's own figures (own_only) with a column for `period` and,
/// when `period` is a year, one for each of its quarters that counts (the caller
/// passes those that have started). `area_reports` are the reports accepted in the
/// townships (see [`stats::area_reports`]) covering the period.
pub fn appraise(
    profile: &Profile,
    org: &Org,
    period: &Period,
    table: &Table,
    area_reports: &[AreaReport],
) -> Vec<UnitAppraisal> {
    let empty = Figures::default();
    let column = table.periods.iter().position(|p| p == period);
    let quarter_columns: Vec<usize> = if period.granularity == Granularity::Year {
        table
            .periods
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.granularity == Granularity::Quarter
                    && p.first_day >= period.first_day
                    && p.end_day <= period.end_day
            })
            .map(|(i, _)| i)
            .collect()
    } else {
        Vec::new()
    };
    // The area rules' reports, merged once per township, rule and month: the
    // year and its quarters count the same months.
    let mut by_area: HashMap<&str, Vec<&AreaReport>> = HashMap::new();
    for o in area_reports {
        by_area.entry(o.unit.as_str()).or_default().push(o);
    }
    let mut runs: HashMap<(&str, usize, usize), Runs> = HashMap::new();
    for code in &table.units {
        let (kind, area) = kind_and_area(org, code);
        let Some(area) = area else {
            continue;
        };
        let agency_type = org.agency_type(code);
        let reports = by_area.get(area).map(Vec::as_slice).unwrap_or(&[]);
        for (si, s) in profile.sections.iter().enumerate() {
            if !s.applies(kind, agency_type) {
                continue;
            }
            for (ri, r) in s.rules.iter().enumerate() {
                if let How::AreaReports {
                    categories, source, ..
                } = &r.how
                {
                    runs.entry((area, si, ri))
                        .or_insert_with(|| area_runs(reports, categories, source.as_deref()));
                }
            }
        }
    }
    table
        .units
        .iter()
        .enumerate()
        .map(|(ui, code)| {
            let def = org.unit(code);
            let (kind, area) = kind_and_area(org, code);
            let agency_type = org.agency_type(code).map(str::to_string);
            let area_runs = |si: usize, ri: usize| -> &[(i64, Vec<Evidence>)] {
                area.and_then(|a| runs.get(&(a, si, ri)))
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
            };
            let cell = |p: &Period, col: Option<usize>, evidence: Items| {
                let f = col.map(|c| table.get(ui, c)).unwrap_or(&empty);
                score_cell(
                    profile,
                    kind,
                    agency_type.as_deref(),
                    p,
                    f,
                    &area_runs,
                    evidence,
                )
            };
            let (main_score, deductions) = cell(period, column, Items::Listed);
            let mut a = UnitAppraisal {
                unit: code.clone(),
                base: profile.base,
                score: main_score,
                deductions,
                unit_name: def.map(|u| u.name.clone()).unwrap_or_default(),
                kind: kind.as_str(),
                agency_type: agency_type.clone(),
                weight: profile.weights.and_then(|w| w.of(kind)),
                quarters: None,
                year_end_score: None,
                bonus: None,
            };
            if let (Granularity::Year, Some(y)) = (period.granularity, profile.yearly) {
                let quarters: Vec<PeriodScore> = quarter_columns
                    .iter()
                    .map(|&c| {
                        let p = &table.periods[c];
                        PeriodScore {
                            period: p.label.clone(),
                            // Only the quarter's score is shown: its evidence
                            // is not copied out.
                            score: cell(p, Some(c), Items::Counted).0,
                        }
                    })
                    .collect();
                let mean = if quarters.is_empty() {
                    main_score
                } else {
                    quarters.iter().map(|q| q.score).sum::<f64>() / quarters.len() as f64
                };
                let bonus = 0.0;
                a.score = round(
                    (mean * y.quarter_weight + main_score * y.year_end_weight + bonus).max(0.0),
                    2,
                );
                a.quarters = Some(quarters);
                a.year_end_score = Some(main_score);
                a.bonus = Some(bonus);
            }
            a
        })
        .collect()
}

/// A unit's kind, and for an agency the township whose reports count against it.
fn kind_and_area<'o>(org: &'o Org, code: &str) -> (UnitKind, Option<&'o str>) {
    let kind = org
        .unit(code)
        .map(|u| u.kind)
        .unwrap_or(UnitKind::Department);
    let area = org.township_of(code).filter(|_| kind == UnitKind::Agency);
    (kind, area)
}

/// Whether a deduction lists its evidence or only counts it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Items {
    Listed,
    Counted,
}

/// One unit's score and deductions for one period's figures; `area_runs`: an
/// area rule's reports in the unit's township (by section and rule index, see
/// [`area_runs`]), none for a unit without one.
fn score_cell<'r>(
    profile: &Profile,
    kind: UnitKind,
    agency_type: Option<&str>,
    period: &Period,
    f: &Figures,
    area_runs: &dyn Fn(usize, usize) -> &'r [(i64, Vec<Evidence>)],
    evidence: Items,
) -> (f64, Vec<Deduction>) {
    let mut out = Vec::new();
    for (si, s) in profile.sections.iter().enumerate() {
        if !s.applies(kind, agency_type) {
            continue;
        }
        let mut ds: Vec<Deduction> = s
            .rules
            .iter()
            .enumerate()
            .filter_map(|(ri, r)| {
                let runs = || {
                    area_runs(si, ri)
                        .iter()
                        .filter(|(at, _)| period.contains_us(*at))
                        .map(|(_, items)| items.as_slice())
                };
                apply_rule(profile, s, r, f, runs, evidence)
            })
            .collect();
        if let Some(cap) = s.cap {
            cap_section(&mut ds, cap);
        }
        out.extend(ds);
    }
    let total: f64 = out.iter().map(|d| d.points).sum();
    (round((profile.base + total).max(0.0), 2), out)
}

/// A rule's deduction, or None when it deducts nothing.
fn apply_rule<'r, I: Iterator<Item = &'r [Evidence]>>(
    profile: &Profile,
    section: &Section,
    rule: &Rule,
    f: &Figures,
    area_runs: impl Fn() -> I,
    listed: Items,
) -> Option<Deduction> {
    let strict = profile.satisfaction_strict;
    let keep = listed == Items::Listed;
    let (raw, count, evidence, rate) = match &rule.how {
        How::Each {
            metric,
            points_each,
        } => {
            let all = metric.evidence(f);
            let n = all.len() as u64;
            let ev = if keep { all.to_vec() } else { Vec::new() };
            (points_each * n as f64, n, ev, None)
        }
        How::Tickets {
            metrics,
            points_each,
        } => {
            // Each metric's list is sorted: the stable sort merges them.
            let mut ev: Vec<Evidence> = metrics
                .iter()
                .flat_map(|m| m.evidence(f).iter().copied())
                .collect();
            ev.sort();
            ev.dedup();
            // Sorted by ticket first, so a ticket's items are adjacent.
            let mut tickets: Vec<uuid::Uuid> = ev.iter().map(|e| e.ticket).collect();
            tickets.dedup();
            let n = tickets.len() as u64;
            if !keep {
                ev = Vec::new();
            }
            (points_each * n as f64, n, ev, None)
        }
        How::RateSteps {
            metric,
            step,
            points_per_step,
        } => {
            let rate = metric.rate(f, strict)?;
            let steps = ((1.0 - rate) / step + 1e-9).floor().max(0.0);
            let (n, ev) = shortfall(*metric, f, strict, keep);
            (points_per_step * steps, n, ev, Some(rate))
        }
        How::RateBelow {
            metric,
            threshold,
            points,
        } => {
            let rate = metric.rate(f, strict)?;
            let raw = if rate < *threshold { *points } else { 0.0 };
            let (n, ev) = shortfall(*metric, f, strict, keep);
            (raw, n, ev, Some(rate))
        }
        How::RateWeight { metric, weight } => {
            let rate = metric.rate(f, strict)?;
            let (n, ev) = shortfall(*metric, f, strict, keep);
            (-weight * (1.0 - rate), n, ev, Some(rate))
        }
        How::AreaReports { points_each, .. } => {
            // The period's runs (see `area_runs`), each sorted and without repeats.
            let (n, ev) = if keep {
                let mut ev: Vec<Evidence> = area_runs().flatten().copied().collect();
                // Sorted runs: the stable sort merges them.
                ev.sort();
                ev.dedup();
                (ev.len(), ev)
            } else {
                (union_len(area_runs()), Vec::new())
            };
            let n = n as u64;
            (points_each * n as f64, n, ev, None)
        }
    };
    let raw = round(raw, 2);
    if raw == 0.0 {
        return None;
    }
    let points = match rule.cap {
        Some(cap) => raw.max(-cap),
        None => raw,
    };
    let capped = points != raw;
    Some(Deduction {
        rule: rule.rule.clone(),
        count,
        points,
        evidence,
        section: section.name.clone(),
        title: rule.title.clone(),
        rate,
        capped,
        uncapped_points: capped.then_some(raw),
    })
}

/// Evidence by the instant it is counted at: sorted lists, in order of instant.
type Runs = Vec<(i64, Vec<Evidence>)>;

/// An area rule's reports in one township (`reports`, all of its reports), merged
/// per instant they are counted at (a month's start, or for days the report's
/// own instant): the items of its categories and source, sorted and without
/// repeats, in order of that instant.
fn area_runs(reports: &[&AreaReport], categories: &[String], source: Option<&str>) -> Runs {
    let mut lists: Vec<&AreaReport> = reports
        .iter()
        .copied()
        .filter(|o| categories.contains(&o.category))
        .filter(|o| source.is_none_or(|s| s == o.source))
        .collect();
    lists.sort_by_key(|o| o.at);
    lists
        .chunk_by(|a, b| a.at == b.at)
        .map(|same| {
            let mut items: Vec<Evidence> = same.iter().flat_map(|o| &o.items).copied().collect();
            if same.len() > 1 {
                // The categories' lists are sorted: the stable sort merges them.
                items.sort();
            }
            items.dedup();
            (same[0].at, items)
        })
        .collect()
}

/// How many items the sorted lists `runs` hold together, each counted once.
fn union_len<'r>(runs: impl Iterator<Item = &'r [Evidence]>) -> usize {
    let mut heads: Vec<&[Evidence]> = runs.filter(|r| !r.is_empty()).collect();
    if heads.len() > 16 {
        // Many short runs (a day's reports, one instant each): merged by sorting.
        let mut all: Vec<Evidence> = heads.concat();
        all.sort_unstable();
        all.dedup();
        return all.len();
    }
    let mut n = 0;
    // The smallest head is counted once and taken off every run that starts
    // with it (a few runs: a scan of the heads beats a heap).
    while let Some(min) = heads.iter().map(|r| r[0]).min() {
        n += 1;
        heads.retain_mut(|r| {
            if r[0] == min {
                *r = &r[1..];
            }
            !r.is_empty()
        });
    }
    n
}

/// A rate rule's shortfall: how many items, and the items when they are kept.
fn shortfall(
    metric: profile::RateMetric,
    f: &Figures,
    strict: bool,
    keep: bool,
) -> (u64, Vec<Evidence>) {
    if keep {
        let ev = metric.shortfall(f, strict);
        (ev.len() as u64, ev)
    } else {
        (metric.shortfall_len(f, strict) as u64, Vec::new())
    }
}

/// Limits a section's total deduction to `cap`: the rules keep their order, the
/// points past the cap are cut, and every deduction of the section is marked.
fn cap_section(ds: &mut [Deduction], cap: f64) {
    let total: f64 = ds.iter().map(|d| d.points).sum();
    if round(total, 2) >= -cap {
        return;
    }
    let mut left = cap;
    for d in ds.iter_mut() {
        let applied = round(d.points.max(-left), 2);
        if applied != d.points {
            d.uncapped_points.get_or_insert(d.points);
            d.points = applied;
        }
        d.capped = true;
        left = round(left + applied, 2);
    }
}

/// Puts two tables of the same units side by side (their period columns joined),
/// so overlapping periods (a year and its quarters) can be scored together.
pub fn join(a: Table, b: Table) -> Table {
    debug_assert_eq!(a.units, b.units);
    let (na, nb) = (a.periods.len(), b.periods.len());
    let mut cells = Vec::with_capacity(a.cells.len() + b.cells.len());
    let mut ca = a.cells.into_iter();
    let mut cb = b.cells.into_iter();
    for _ in 0..a.units.len() {
        cells.extend(ca.by_ref().take(na));
        cells.extend(cb.by_ref().take(nb));
    }
    let mut periods = a.periods;
    periods.extend(b.periods);
    Table {
        units: a.units,
        periods,
        cells,
    }
}

/// Reads the statistics and reports the appraisal needs and scores `units` (each
/// on its own rows). `scope_all`: the units are every appraised unit, so the rows
/// are read unfiltered.
pub async fn appraise_from_store(
    pool: &Pool,
    org: &Org,
    profile: &Profile,
    period: &Period,
    units: Vec<String>,
    scope_all: bool,
    now: DateTime<Utc>,
) -> Result<Vec<UnitAppraisal>, StoreError> {
    let scope = (!scope_all).then_some(units.as_slice());
    // The overdue lists depend on each period's end and are read from the rows:
    // only when a rule deducts for them.
    let overdue = profile
        .sections
        .iter()
        .flat_map(|s| &s.rules)
        .any(|r| match &r.how {
            How::Each { metric, .. } => *metric == profile::EvidenceMetric::Overdue,
            How::Tickets { metrics, .. } => metrics.contains(&profile::EvidenceMetric::Overdue),
            _ => false,
        });
    let request = |periods: Vec<Period>| Request {
        org,
        units: units.clone(),
        own_only: true,
        periods,
        now,
    };
    // The townships whose reports count against an appraised agency.
    let mut areas: Vec<String> = Vec::new();
    for code in &units {
        let Some(u) = org.unit(code) else { continue };
        let wants_reports = profile.sections.iter().any(|s| {
            s.applies(u.kind, u.agency_type.as_deref())
                && s.rules
                    .iter()
                    .any(|r| matches!(r.how, How::AreaReports { .. }))
        });
        if let (true, UnitKind::Agency, Some(t)) = (wants_reports, u.kind, org.township_of(code)) {
            if !areas.iter().any(|a| a == t) {
                areas.push(t.to_string());
            }
        }
    }
    // Only the categories some area rule counts are read (the rules filter again).
    let mut categories: Vec<String> = profile
        .sections
        .iter()
        .flat_map(|s| &s.rules)
        .filter_map(|r| match &r.how {
            How::AreaReports { categories, .. } => Some(categories.iter().cloned()),
            _ => None,
        })
        .flatten()
        .collect();
    categories.sort();
    categories.dedup();
    let figures = async {
        // A year is scored with its quarters that have started: one read of the
        // year's evidence serves both tables. No rule reads the turnaround.
        let mut reqs = vec![request(vec![period.clone()])];
        if period.granularity == Granularity::Year {
            let started: Vec<Period> = period
                .quarters()
                .into_iter()
                .filter(|q| q.start <= now)
                .collect();
            reqs.insert(0, request(started));
        }
        let refs: Vec<&Request> = reqs.iter().collect();
        let mut tables = stats::figures_with_evidence_of(
            pool,
            scope,
            &refs,
            overdue,
            profile.stored_lists(),
            Turnarounds::Skip,
        )
        .await?
        .into_iter();
        let first = tables.next();
        let table = match (first, tables.next()) {
            (Some(quarters), Some(year)) => join(quarters, year),
            (Some(one), None) => one,
            _ => return Err(StoreError::Corrupt("no table for the appraisal".into())),
        };
        Ok::<_, StoreError>(table)
    };
    let reports = async {
        if areas.is_empty() || categories.is_empty() {
            Ok(Vec::new())
        } else {
            stats::area_reports(pool, Some(&areas), Some(&categories), period).await
        }
    };
    let started = std::time::Instant::now();
    let (table, reports) = tokio::try_join!(figures, reports)?;
    let read = started.elapsed();
    let scores = crate::cpu::run(|| appraise(profile, org, period, &table, &reports));
    tracing::debug!(
        period = %period.label,
        read_ms = read.as_secs_f64() * 1e3,
        score_ms = (started.elapsed() - read).as_secs_f64() * 1e3,
        "appraisal computed"
    );
    Ok(scores)
}

#[cfg(test)]
mod tests;
