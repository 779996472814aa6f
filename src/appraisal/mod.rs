//! Appraisal scores (考核, DESIGN §5): a rule profile ([`profile`]) gives each kind
//! of unit its sheet (考核评价表); a unit's sheet for a period is its base less the
//! items found: rule items computed from the unit's own statistics (with the
//! tickets and event positions behind each point) and manual items people entered
//! ([`ledger`], with the entries behind each point).
//!
//! Nothing is stored: the score is computed at query time from the `unit_stats`
//! projection (`projections::stats`) and the ledger folded from the log, so a
//! changed profile applies to every period at once and a score can always be
//! reproduced from the log. [`appraise`] is pure (figures and ledger in, scores
//! out); [`appraise_from_store`] reads the figures it needs.
//!
//! How the numbers are made (per period sheet):
//! - an item's points are rounded to 2 decimals and limited by the item's `cap`;
//!   a group's cap then limits the group's items together, and a section's full
//!   `points` the section's: the items keep their order and their evidence, the
//!   points past the cap are cut so that the section deducts exactly its cap,
//!   every deduction of that section is marked `capped: true`, and one whose
//!   points were cut carries `uncapped_points` (what it would have deducted
//!   alone). So `score = base + Σ counted points` always holds;
//! - a manual entry counts in the sheet of every period containing its own (a
//!   March entry in 2026-03, 2026-Q1 and 2026), as a ticket's event does;
//! - score = base + the items of the counted sections, never below 0; the items of
//!   a `bonus` section (加减分) are summed into `bonus`, shown beside a month or a
//!   quarter and added to a year after its weighting; a `reference` section's
//!   items are listed in `reference` and never counted;
//! - a year, for a sheet with `yearly`: the mean of the scores of its quarters that
//!   have started (ended or in progress) × `quarter_weight` + the year-end score
//!   (the sheet over the whole year, the listed deductions) × `year_end_weight` +
//!   the year's bonus. Without `yearly`, a year is the year-end score;
//! - a sheet with `mean_of` (the departments'): a year's score is the mean of the
//!   active entries of that item for the year (the townships' evaluations, each
//!   listed in `evaluations`); other periods, or a year nobody scored: null;
//! - a unit no sheet applies to: `sheet`, `base`, `score` null, no deductions.

pub mod json;
pub mod ledger;
pub mod profile;
mod score;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::ser::SerializeSeq;
use uuid::Uuid;

use crate::org::{Org, UnitKind};
use crate::projections::periods::{Granularity, Period};
use crate::projections::stats;
use crate::projections::stats::model::{
    AreaReport, Evidence, Figures, Request, Table, Turnarounds, round,
};
use crate::store::{Pool, StoreError};
pub use ledger::Ledger;
pub use profile::{How, Item, ItemHow, Profile, ProfileError, Profiles, Section, Sheet};
use score::{Cell, Items, Runs, UnitEntry, area_runs, contains, score_sheet};

/// What an item's points rest on: ticket events (`{ticket, position}`, sorted) and
/// entries people made (`{entry}`, in log order). Serialized as one list, the
/// tickets first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EvidenceList {
    pub tickets: Vec<Evidence>,
    pub entries: Vec<Uuid>,
}

impl EvidenceList {
    pub fn len(&self) -> usize {
        self.tickets.len() + self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `{"entry": id}`
#[derive(Serialize)]
struct EntryRef<'a> {
    entry: &'a Uuid,
}

impl Serialize for EvidenceList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for t in &self.tickets {
            seq.serialize_element(t)?;
        }
        for e in &self.entries {
            seq.serialize_element(&EntryRef { entry: e })?;
        }
        seq.end()
    }
}

/// One evidence item of a deduction: a ticket's event or an entry people made.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum EvidenceItem {
    /// A ticket's event: `{ticket, position}`.
    Ticket(Evidence),
    /// An entry people made: `{entry}`.
    Entry(EntryEvidence),
}

/// An entry behind a manual item's points.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct EntryEvidence {
    /// The entry's id (`GET /api/v1/appraisal/entries`).
    entry: Uuid,
}

/// One item's result for a unit in a period: a deduction (negative points) or,
/// in a bonus section, an addition.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Deduction {
    /// The item's code in the sheet (e.g. `supervision.late_completion`).
    pub rule: String,
    /// Events (or tickets, for a `tickets` rule; or the entries' counts) counted.
    pub count: u64,
    /// Negative: the points deducted; positive: points added (bonus items).
    pub points: f64,
    #[schema(value_type = Vec<EvidenceItem>)]
    pub evidence: EvidenceList,
    pub section: String,
    /// The document's wording of the item.
    pub title: String,
    /// The rate a rate rule judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Entered by people (the evidence are entries), not computed from tickets.
    pub manual: bool,
    /// A cap (the item's, its group's or its section's) limited this item or its
    /// section.
    pub capped: bool,
    /// What the item would have deducted without the caps, when they cut it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uncapped_points: Option<f64>,
}

/// A period's score, for the quarters behind a yearly score.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PeriodScore {
    pub period: String,
    pub score: f64,
}

/// One township's evaluation of a department for a year (三(一)).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Evaluation {
    pub township: String,
    pub township_name: String,
    pub points: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade_word: Option<String>,
    pub note: String,
    /// The entry's id.
    pub entry: Uuid,
}

/// One unit's appraisal for a period.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UnitAppraisal {
    pub unit: String,
    /// The sheet that scores the unit (null: none does; statistics only).
    pub sheet: Option<String>,
    /// The sheet's full score (null without a sheet).
    pub base: Option<f64>,
    /// Null without a sheet, and for a department in any period but a year it has
    /// evaluations for.
    pub score: Option<f64>,
    /// The items found, counted and bonus, section by section.
    pub deductions: Vec<Deduction>,
    pub unit_name: String,
    /// The unit's kind: `department` or `agency`.
    #[schema(value_type = String)]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agency_type: Option<String>,
    /// The share of this evaluation in the unit's yearly appraisal (absent without
    /// a sheet, or when the sheet gives none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// Year only: the quarters that have started and their scores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarters: Option<Vec<PeriodScore>>,
    /// Year only: the sheet over the whole year.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub year_end_score: Option<f64>,
    /// The sum of the bonus (加减分) items: added to a year's score after the
    /// weighting, shown beside a month's or a quarter's. Absent for a sheet scored
    /// by evaluations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bonus: Option<f64>,
    /// A department: the townships' evaluations for the year.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluations: Option<Vec<Evaluation>>,
    /// Items computed for reference and not counted (a department's ticket figures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<Vec<Deduction>>,
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
/// townships (see [`stats::area_reports`]) covering the period; `ledger` what people
/// entered (its active entries count).
pub fn appraise(
    profile: &Profile,
    org: &Org,
    period: &Period,
    table: &Table,
    area_reports: &[AreaReport],
    ledger: &Ledger,
) -> Vec<UnitAppraisal> {
    let empty = Figures::default();
    let column = table.periods.iter().position(|p| p == period);
    let quarter_columns: Vec<usize> = if period.granularity == Granularity::Year {
        table
            .periods
            .iter()
            .enumerate()
            .filter(|(_, p)| p.granularity == Granularity::Quarter && contains(period, p))
            .map(|(i, _)| i)
            .collect()
    } else {
        Vec::new()
    };
    // The active entries by unit, their periods parsed once; only those within
    // the period can count.
    let mut entries: HashMap<&str, Vec<UnitEntry<'_>>> = HashMap::new();
    for e in ledger.active() {
        let Some(p) = Period::parse(&e.body.period) else {
            continue;
        };
        if p.granularity == Granularity::Day {
            continue;
        }
        entries
            .entry(e.body.unit.as_str())
            .or_default()
            .push(UnitEntry {
                period: p,
                entry: e,
            });
    }
    // The area rules' reports, merged once per township, rule and month: the
    // year and its quarters count the same months.
    let mut by_area: HashMap<&str, Vec<&AreaReport>> = HashMap::new();
    for o in area_reports {
        by_area.entry(o.unit.as_str()).or_default().push(o);
    }
    let mut runs: HashMap<(&str, &str, usize, usize), Runs> = HashMap::new();
    for code in &table.units {
        let (kind, area) = kind_and_area(org, code);
        let Some(area) = area else {
            continue;
        };
        let agency_type = org.agency_type(code);
        let Some(sheet) = profile.sheet_for_kind(kind, agency_type) else {
            continue;
        };
        let reports = by_area.get(area).map(Vec::as_slice).unwrap_or(&[]);
        for (si, s) in sheet.sections.iter().enumerate() {
            for (ii, item) in s.items.iter().enumerate() {
                if let ItemHow::Rule(How::AreaReports {
                    categories, source, ..
                }) = &item.how
                {
                    runs.entry((area, sheet.name.as_str(), si, ii))
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
            let mut a = UnitAppraisal {
                unit: code.clone(),
                sheet: None,
                base: None,
                score: None,
                deductions: Vec::new(),
                unit_name: def.map(|u| u.name.clone()).unwrap_or_default(),
                kind: kind.as_str(),
                agency_type: agency_type.clone(),
                weight: None,
                quarters: None,
                year_end_score: None,
                bonus: None,
                evaluations: None,
                reference: None,
            };
            let Some(sheet) = profile.sheet_for_kind(kind, agency_type.as_deref()) else {
                return a;
            };
            let unit_entries: Vec<UnitEntry<'_>> = entries
                .get(code.as_str())
                .map(|v| {
                    v.iter()
                        .filter(|e| contains(period, &e.period))
                        .map(|e| UnitEntry {
                            period: e.period.clone(),
                            entry: e.entry,
                        })
                        .collect()
                })
                .unwrap_or_default();
            let area_runs = |si: usize, ii: usize| -> &[(i64, Vec<Evidence>)] {
                area.and_then(|a| runs.get(&(a, sheet.name.as_str(), si, ii)))
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
            };
            let cell = |p: &Period, col: Option<usize>, evidence: Items| {
                let f = col.map(|c| table.get(ui, c)).unwrap_or(&empty);
                score_sheet(&Cell {
                    profile,
                    sheet,
                    period: p,
                    figures: f,
                    area_runs: &area_runs,
                    entries: &unit_entries,
                    evidence,
                })
            };
            let main = cell(period, column, Items::Listed);
            a.sheet = Some(sheet.name.clone());
            a.base = Some(sheet.base);
            a.weight = sheet.weight;
            a.deductions = main.deductions;
            if sheet.sections.iter().any(|s| s.reference) {
                a.reference = Some(main.reference);
            }
            if let Some(item) = &sheet.mean_of {
                let evaluations = evaluations(org, item, period, &unit_entries);
                a.score = (period.granularity == Granularity::Year && !evaluations.is_empty())
                    .then(|| {
                        let sum: f64 = evaluations.iter().map(|e| e.points).sum();
                        round(sum / evaluations.len() as f64, 2)
                    });
                a.evaluations = Some(evaluations);
                return a;
            }
            a.score = Some(main.score);
            a.bonus = Some(main.bonus);
            if let (Granularity::Year, Some(y)) = (period.granularity, sheet.yearly) {
                let quarters: Vec<PeriodScore> = quarter_columns
                    .iter()
                    .map(|&c| {
                        let p = &table.periods[c];
                        PeriodScore {
                            period: p.label.clone(),
                            // Only the quarter's score is shown: its evidence
                            // is not copied out.
                            score: cell(p, Some(c), Items::Counted).score,
                        }
                    })
                    .collect();
                let mean = if quarters.is_empty() {
                    main.score
                } else {
                    quarters.iter().map(|q| q.score).sum::<f64>() / quarters.len() as f64
                };
                a.score = Some(round(
                    (mean * y.quarter_weight + main.score * y.year_end_weight + main.bonus)
                        .max(0.0),
                    2,
                ));
                a.quarters = Some(quarters);
                a.year_end_score = Some(main.score);
            }
            a
        })
        .collect()
}

/// A department's evaluations for a year: the active entries of the sheet's
/// `mean_of` item whose period is the year (none for any other period).
fn evaluations(
    org: &Org,
    item: &str,
    period: &Period,
    entries: &[UnitEntry<'_>],
) -> Vec<Evaluation> {
    if period.granularity != Granularity::Year {
        return Vec::new();
    }
    entries
        .iter()
        .filter(|e| e.entry.body.item == item && e.period == *period)
        .map(|e| {
            let b = &e.entry.body;
            Evaluation {
                township: b.township.clone(),
                township_name: org
                    .unit(&b.township)
                    .map(|u| u.name.clone())
                    .unwrap_or_default(),
                points: b.points.unwrap_or(0.0),
                grade_word: b.grade_word.clone(),
                note: b.note.clone(),
                entry: e.entry.id,
            }
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
/// on its own rows) with what people entered (`ledger`, folded by the caller).
/// `scope_all`: the units are every appraised unit, so the rows are read
/// unfiltered.
// The signature the entry routes and bulletins share (design21.md): what is read,
// for whom, and what people entered.
#[allow(clippy::too_many_arguments)]
pub async fn appraise_from_store(
    pool: &Pool,
    org: &Org,
    profile: &Profile,
    period: &Period,
    units: Vec<String>,
    scope_all: bool,
    now: DateTime<Utc>,
    ledger: &Ledger,
) -> Result<Vec<UnitAppraisal>, StoreError> {
    let scope = (!scope_all).then_some(units.as_slice());
    // The overdue lists depend on each period's end and are read from the rows:
    // only when a rule deducts for them.
    let overdue = profile.rules().any(|h| match h {
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
        let wants_reports = profile
            .sheet_for_kind(u.kind, u.agency_type.as_deref())
            .is_some_and(|s| {
                s.sections
                    .iter()
                    .flat_map(|s| &s.items)
                    .any(|i| matches!(i.how, ItemHow::Rule(How::AreaReports { .. })))
            });
        if let (true, UnitKind::Agency, Some(t)) = (wants_reports, u.kind, org.township_of(code))
            && !areas.iter().any(|a| a == t)
        {
            areas.push(t.to_string());
        }
    }
    // Only the categories some area rule counts are read (the rules filter again).
    let mut categories: Vec<String> = profile
        .rules()
        .filter_map(|h| match h {
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
    let scores = crate::cpu::run(|| appraise(profile, org, period, &table, &reports, ledger));
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
