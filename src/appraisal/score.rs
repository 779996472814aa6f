//! One unit's sheet for one period: its rule items computed from the period's
//! figures, its manual items summed from the entries people made for periods
//! within it, then the caps (item, group, section). Pure.

use std::collections::HashSet;

use uuid::Uuid;

use super::profile::{self, How, Item, ItemHow, Profile, Section, Sheet};
use super::{Deduction, EvidenceList};
use crate::appraisal::ledger::Entry;
use crate::projections::periods::Period;
use crate::projections::stats::model::{AreaReport, Evidence, Figures, round};

/// Whether a deduction lists its evidence or only counts it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Items {
    Listed,
    Counted,
}

/// An active entry of the unit, with its period parsed.
pub(super) struct UnitEntry<'l> {
    pub period: Period,
    pub entry: &'l Entry,
}

/// What a period's sheet adds up to.
pub(super) struct SheetResult {
    /// base + Σ counted items (not bonus, not reference), ≥ 0, rounded.
    pub score: f64,
    /// Σ the bonus sections' items, rounded.
    pub bonus: f64,
    /// The counted and bonus items, in sheet order.
    pub deductions: Vec<Deduction>,
    /// The reference sections' items.
    pub reference: Vec<Deduction>,
}

/// The inputs of one unit's sheet in one period.
pub(super) struct Cell<'a, 'r> {
    pub profile: &'a Profile,
    pub sheet: &'a Sheet,
    pub period: &'a Period,
    pub figures: &'a Figures,
    /// An area rule's runs in the unit's township, by (section, item) index.
    pub area_runs: &'a dyn Fn(usize, usize) -> &'r [(i64, Vec<Evidence>)],
    /// The unit's active entries (any period).
    pub entries: &'a [UnitEntry<'a>],
    pub evidence: Items,
}

/// Whether `outer` contains `inner` (a month lies in its quarter and year).
pub(super) fn contains(outer: &Period, inner: &Period) -> bool {
    outer.first_day <= inner.first_day && inner.end_day <= outer.end_day
}

pub(super) fn score_sheet(c: &Cell<'_, '_>) -> SheetResult {
    let mut deductions = Vec::new();
    let mut reference = Vec::new();
    let (mut counted, mut bonus) = (0.0, 0.0);
    for (si, s) in c.sheet.sections.iter().enumerate() {
        let mut ds: Vec<(Option<&str>, Deduction)> = Vec::new();
        for (ii, item) in s.items.iter().enumerate() {
            if c.sheet.mean_of.as_deref() == Some(item.code.as_str()) {
                continue;
            }
            let d = match &item.how {
                ItemHow::Rule(how) => {
                    let except = except_tickets(c, item);
                    let runs = || {
                        (c.area_runs)(si, ii)
                            .iter()
                            .filter(|(at, _)| c.period.contains_us(*at))
                            .map(|(_, items)| items.as_slice())
                    };
                    apply_rule(
                        c.profile, s, item, how, c.figures, runs, &except, c.evidence,
                    )
                }
                _ => manual_item(s, item, c.period, c.entries),
            };
            if let Some(d) = d {
                ds.push((item.group.as_deref(), d));
            }
        }
        for g in &s.groups {
            let idx: Vec<usize> = (0..ds.len())
                .filter(|&i| ds[i].0 == Some(g.name.as_str()))
                .collect();
            cap_indices(&mut ds, &idx, g.cap);
        }
        if let (Some(cap), false) = (s.points, s.bonus) {
            let idx: Vec<usize> = (0..ds.len()).collect();
            cap_indices(&mut ds, &idx, cap);
        }
        let total: f64 = ds.iter().map(|(_, d)| d.points).sum();
        let ds = ds.into_iter().map(|(_, d)| d);
        if s.reference {
            reference.extend(ds);
        } else {
            if s.bonus {
                bonus += total;
            } else {
                counted += total;
            }
            deductions.extend(ds);
        }
    }
    SheetResult {
        score: round((c.sheet.base + counted).max(0.0), 2),
        bonus: round(bonus, 2),
        deductions,
        reference,
    }
}

/// The tickets a rule item leaves out: those named by the unit's active entries
/// of the item its `except_tickets_of` names (any period: a case is counted
/// there, once).
fn except_tickets(c: &Cell<'_, '_>, item: &Item) -> HashSet<Uuid> {
    match &item.except_tickets_of {
        None => HashSet::new(),
        Some(code) => c
            .entries
            .iter()
            .filter(|e| &e.entry.body.item == code)
            .flat_map(|e| e.entry.body.tickets.iter().copied())
            .collect(),
    }
}

/// A manual item's result in `period`: the unit's active entries of the item
/// whose period lies within it, or None when there are none.
fn manual_item(
    section: &Section,
    item: &Item,
    period: &Period,
    entries: &[UnitEntry<'_>],
) -> Option<Deduction> {
    let mut ids = Vec::new();
    let (mut count, mut raw) = (0u64, 0.0);
    for e in entries
        .iter()
        .filter(|e| e.entry.body.item == item.code && contains(period, &e.period))
    {
        ids.push(e.entry.id);
        match item.how {
            ItemHow::Counted { points_each } => {
                let n = e.entry.body.count.unwrap_or(1);
                count += u64::from(n);
                raw += points_each * f64::from(n);
            }
            ItemHow::Free { .. } => {
                count += 1;
                raw += e.entry.body.points.unwrap_or(0.0);
            }
            ItemHow::Rule(_) => return None,
        }
    }
    if ids.is_empty() {
        return None;
    }
    Some(item_result(
        section,
        item,
        count,
        raw,
        EvidenceList {
            tickets: Vec::new(),
            entries: ids,
        },
        None,
        true,
    ))
}

/// An item's result with its own cap applied (on either side of 0).
fn item_result(
    section: &Section,
    item: &Item,
    count: u64,
    raw: f64,
    evidence: EvidenceList,
    rate: Option<f64>,
    manual: bool,
) -> Deduction {
    let raw = round(raw, 2);
    let points = match item.cap {
        Some(cap) => raw.clamp(-cap, cap),
        None => raw,
    };
    let capped = points != raw;
    Deduction {
        rule: item.code.clone(),
        count,
        points,
        evidence,
        section: section.name.clone(),
        title: item.title.clone(),
        rate,
        manual,
        capped,
        uncapped_points: capped.then_some(raw),
    }
}

/// A rule item's deduction, or None when it deducts nothing.
#[allow(clippy::too_many_arguments)]
fn apply_rule<'r, I: Iterator<Item = &'r [Evidence]>>(
    profile: &Profile,
    section: &Section,
    item: &Item,
    how: &How,
    f: &Figures,
    area_runs: impl Fn() -> I,
    except: &HashSet<Uuid>,
    listed: Items,
) -> Option<Deduction> {
    let strict = profile.satisfaction_strict;
    let keep = listed == Items::Listed;
    let (raw, count, evidence, rate) = match how {
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
                .filter(|e| !except.contains(&e.ticket))
                .collect();
            ev.sort();
            ev.dedup();
            // Sorted by ticket first, so a ticket's items are adjacent.
            let mut tickets: Vec<Uuid> = ev.iter().map(|e| e.ticket).collect();
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
            let (n, ev) = if keep || !except.is_empty() {
                let mut ev: Vec<Evidence> = area_runs()
                    .flatten()
                    .copied()
                    .filter(|e| !except.contains(&e.ticket))
                    .collect();
                // Sorted runs: the stable sort merges them.
                ev.sort();
                ev.dedup();
                let n = ev.len();
                (n, if keep { ev } else { Vec::new() })
            } else {
                (union_len(area_runs()), Vec::new())
            };
            let n = n as u64;
            (points_each * n as f64, n, ev, None)
        }
    };
    if round(raw, 2) == 0.0 {
        return None;
    }
    let evidence = EvidenceList {
        tickets: evidence,
        entries: Vec::new(),
    };
    Some(item_result(
        section, item, count, raw, evidence, rate, false,
    ))
}

/// Evidence by the instant it is counted at: sorted lists, in order of instant.
pub(super) type Runs = Vec<(i64, Vec<Evidence>)>;

/// An area rule's reports in one township (`reports`, all of its reports), merged
/// per instant they are counted at (a month's start, or for days the report's
/// own instant): the items of its categories and source, sorted and without
/// repeats, in order of that instant.
pub(super) fn area_runs(
    reports: &[&AreaReport],
    categories: &[String],
    source: Option<&str>,
) -> Runs {
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
pub(super) fn union_len<'r>(runs: impl Iterator<Item = &'r [Evidence]>) -> usize {
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

/// Limits the total deduction of the items at `idx` to `cap`: they keep their
/// order, the points past the cap are cut, and every one of them is marked.
/// Additions (positive points) are left alone and do not count.
fn cap_indices<G>(ds: &mut [(G, Deduction)], idx: &[usize], cap: f64) {
    let total: f64 = idx
        .iter()
        .map(|&i| ds[i].1.points)
        .filter(|p| *p < 0.0)
        .sum();
    if round(total, 2) >= -cap {
        return;
    }
    let mut left = cap;
    for &i in idx {
        let d = &mut ds[i].1;
        if d.points > 0.0 {
            continue;
        }
        let applied = round(d.points.max(-left), 2);
        if applied != d.points {
            d.uncapped_points.get_or_insert(d.points);
            d.points = applied;
        }
        d.capped = true;
        left = round(left + applied, 2);
    }
}
