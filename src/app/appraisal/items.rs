//! An entry against its unit's sheet (`appraisal::profile`): the item exists on the
//! sheet and is entered by people; a counted item takes a whole count ≥ 1 and no
//! points, a free item points within its range and no count; an item scored for a
//! year only (the townships' evaluation of a department) takes a `YYYY` period.

use super::EntryBody;
use crate::appraisal::profile::{self, DEFAULT, ItemHow};
use crate::error::AppError;
use crate::org::Org;
use crate::projections::periods::{Granularity, Period};

/// What the sheet makes of an entry.
pub(super) struct Checked {
    pub count: Option<u32>,
    pub points: Option<f64>,
    /// The item takes one active entry per unit, township and year (the
    /// evaluation a township gives a department): its code.
    pub one_per_year: Option<String>,
}

pub(super) fn check(org: &Org, b: &EntryBody, period: &Period) -> Result<Checked, AppError> {
    let profiles =
        profile::builtin().map_err(|e| AppError::Internal(anyhow::anyhow!(e.to_string())))?;
    let profile = profiles
        .get(DEFAULT)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no default profile")))?;
    let sheet = profile.sheet_for(org, &b.unit).ok_or_else(|| {
        AppError::invalid(
            "unit",
            format!(
                "{} has no appraisal sheet (only departments and the judicial, enforcement and \
                 market agencies have one)",
                b.unit
            ),
        )
    })?;
    let (_, item) = sheet.item(&b.item).ok_or_else(|| {
        let codes: Vec<&str> = sheet
            .sections
            .iter()
            .flat_map(|s| &s.items)
            .filter(|i| i.is_manual())
            .map(|i| i.code.as_str())
            .collect();
        AppError::invalid(
            "item",
            format!(
                "no item {:?} on the {} sheet; its items entered by people are: {}",
                b.item,
                sheet.name,
                codes.join(", ")
            ),
        )
    })?;
    if item.year_only && period.granularity != Granularity::Year {
        return Err(AppError::invalid(
            "period",
            format!(
                "{} is given for a year: the period must be a year (2026), not {}",
                item.code, period.label
            ),
        ));
    }
    let (count, points) = match &item.how {
        ItemHow::Rule(_) => {
            return Err(AppError::invalid(
                "item",
                format!(
                    "{} is computed from tickets, not entered (its evidence is the tickets)",
                    item.code
                ),
            ));
        }
        ItemHow::Counted { .. } => {
            if b.points.is_some() {
                return Err(AppError::invalid(
                    "points",
                    format!("{} is counted: give `count`, not points", item.code),
                ));
            }
            let n = b.count.ok_or_else(|| {
                AppError::invalid(
                    "count",
                    format!(
                        "is required: {} is counted (how many cases or places)",
                        item.code
                    ),
                )
            })?;
            let n = u32::try_from(n)
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .ok_or_else(|| {
                    AppError::invalid("count", "must be a whole number from 1 to 10000")
                })?;
            (Some(n), None)
        }
        ItemHow::Free { min, max } => {
            if b.count.is_some() {
                return Err(AppError::invalid(
                    "count",
                    format!("{} is scored freely: give `points`, not a count", item.code),
                ));
            }
            let p = b.points.ok_or_else(|| {
                AppError::invalid(
                    "points",
                    format!(
                        "is required: {} takes points from {min} to {max}",
                        item.code
                    ),
                )
            })?;
            if !p.is_finite() || p < *min || p > *max {
                return Err(AppError::invalid(
                    "points",
                    format!("{p} is outside {}'s range, {min} to {max}", item.code),
                ));
            }
            // Hundredths at most: the scores are rounded to them.
            if ((p * 100.0).round() - p * 100.0).abs() > 1e-6 {
                return Err(AppError::invalid("points", "at most two decimals"));
            }
            (None, Some(p))
        }
    };
    let one_per_year =
        (sheet.mean_of.as_deref() == Some(item.code.as_str())).then(|| item.code.clone());
    Ok(Checked {
        count,
        points,
        one_per_year,
    })
}
