//! STUB until i21-sheets is merged (see .h2/items_real.rs).

use super::EntryBody;
use crate::error::AppError;
use crate::org::Org;
use crate::projections::periods::{Granularity, Period};

pub(super) struct Checked {
    pub count: Option<u32>,
    pub points: Option<f64>,
    pub one_per_year: Option<String>,
}

pub(super) fn check(_org: &Org, b: &EntryBody, period: &Period) -> Result<Checked, AppError> {
    if b.item == "township_evaluation" {
        if period.granularity != Granularity::Year {
            return Err(AppError::invalid("period", "a year"));
        }
        return Ok(Checked {
            count: None,
            points: b.points,
            one_per_year: Some(b.item.clone()),
        });
    }
    Ok(Checked {
        count: b.count.map(|c| c as u32),
        points: b.points,
        one_per_year: None,
    })
}
