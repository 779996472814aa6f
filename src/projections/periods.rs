//! Reporting periods: a day, month, quarter or year of business dates
//! (Asia/Shanghai), as the half-open interval of instants `[start, end)`.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::sla::calendar::{business_date, start_of_day};

#[derive(Clone, Copy, Debug, PartialEq, Eq, utoipa::ToSchema)]
#[schema(
    rename_all = "snake_case",
    description = "`granularity=` of the statistics."
)]
pub enum Granularity {
    Day,
    Month,
    Quarter,
    Year,
}

impl Granularity {
    pub fn parse(s: &str) -> Option<Granularity> {
        match s {
            "day" => Some(Granularity::Day),
            "month" => Some(Granularity::Month),
            "quarter" => Some(Granularity::Quarter),
            "year" => Some(Granularity::Year),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    /// `2026-10-01`, `2026-10`, `2026-Q4` or `2026`.
    pub label: String,
    pub granularity: Granularity,
    pub first_day: NaiveDate,
    /// The day after the last day.
    pub end_day: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Period {
    /// The period of this granularity that contains `day`.
    pub fn containing(g: Granularity, day: NaiveDate) -> Period {
        let (first, end, label) = match g {
            Granularity::Day => (
                day,
                day.succ_opt().unwrap_or(day),
                day.format("%Y-%m-%d").to_string(),
            ),
            Granularity::Month => {
                let first = ymd(day.year(), day.month());
                (first, add_months(first, 1), day.format("%Y-%m").to_string())
            }
            Granularity::Quarter => {
                let q = (day.month() - 1) / 3;
                let first = ymd(day.year(), q * 3 + 1);
                (
                    first,
                    add_months(first, 3),
                    format!("{}-Q{}", day.year(), q + 1),
                )
            }
            Granularity::Year => {
                let first = ymd(day.year(), 1);
                (first, add_months(first, 12), day.year().to_string())
            }
        };
        Period {
            label,
            granularity: g,
            first_day: first,
            end_day: end,
            start: start_of_day(first),
            end: start_of_day(end),
        }
    }

    /// `2026-Q3`, `2026-09`, `2026` or `2026-09-30`.
    pub fn parse(s: &str) -> Option<Period> {
        let s = s.trim();
        if let Some((y, q)) = s.split_once("-Q").or_else(|| s.split_once("-q")) {
            let y: i32 = y.parse().ok()?;
            let q: u32 = q.parse().ok()?;
            if !(1..=4).contains(&q) || !(1900..=9999).contains(&y) {
                return None;
            }
            return Some(Period::containing(
                Granularity::Quarter,
                ymd(y, (q - 1) * 3 + 1),
            ));
        }
        match s.len() {
            4 => {
                let y: i32 = s.parse().ok()?;
                (1900..=9999)
                    .contains(&y)
                    .then(|| Period::containing(Granularity::Year, ymd(y, 1)))
            }
            7 => {
                let d = NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").ok()?;
                Some(Period::containing(Granularity::Month, d))
            }
            10 => {
                let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
                Some(Period::containing(Granularity::Day, d))
            }
            _ => None,
        }
    }

    /// The quarters of a year period (for the yearly appraisal formula).
    pub fn quarters(&self) -> Vec<Period> {
        (0..4)
            .map(|q| {
                Period::containing(Granularity::Quarter, ymd(self.first_day.year(), q * 3 + 1))
            })
            .collect()
    }

    pub fn contains_us(&self, us: i64) -> bool {
        us >= self.start.timestamp_micros() && us < self.end.timestamp_micros()
    }
}

/// The periods of granularity `g` from the one holding `from` to the one holding `to`.
pub fn between(g: Granularity, from: NaiveDate, to: NaiveDate) -> Vec<Period> {
    between_at_most(g, from, to, usize::MAX)
}

/// [`between`], stopping after `max` periods (a request's range can span the whole
/// calendar). The last representable period ends where it starts (dates saturate at
/// `NaiveDate::MAX`), so the walk also stops when a period does not move on.
pub fn between_at_most(g: Granularity, from: NaiveDate, to: NaiveDate, max: usize) -> Vec<Period> {
    let mut out = Vec::new();
    let mut p = Period::containing(g, from);
    while p.first_day <= to && out.len() < max {
        let next = Period::containing(g, p.end_day);
        let moved_on = next.first_day > p.first_day;
        out.push(p);
        if !moved_on {
            break;
        }
        p = next;
    }
    out
}

/// A date given as `YYYY-MM-DD` or `YYYY-MM` (its first day), in years 1 to 9999:
/// chrono also reads signed years of any width, out to its last representable day,
/// where the start of a Shanghai day no longer fits in a timestamp.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .or_else(|| NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").ok())
        .filter(|d| (1..=9999).contains(&d.year()))
}

/// Today's business date.
pub fn today(now: DateTime<Utc>) -> NaiveDate {
    business_date(now)
}

fn ymd(y: i32, m: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(NaiveDate::MIN)
}

fn add_months(d: NaiveDate, n: u32) -> NaiveDate {
    d.checked_add_months(chrono::Months::new(n))
        .unwrap_or(NaiveDate::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_bounds() {
        let q = Period::parse("2026-Q4").unwrap();
        assert_eq!(q.label, "2026-Q4");
        assert_eq!(q.first_day, NaiveDate::from_ymd_opt(2026, 10, 1).unwrap());
        // 00:00 Beijing time is 16:00 UTC the day before.
        assert_eq!(q.start.to_rfc3339(), "2026-09-30T16:00:00+00:00");
        assert_eq!(q.end.to_rfc3339(), "2026-12-31T16:00:00+00:00");
        assert_eq!(
            Period::parse("2026-09").unwrap().end_day,
            NaiveDate::from_ymd_opt(2026, 10, 1).unwrap()
        );
        assert_eq!(Period::parse("2026").unwrap().quarters().len(), 4);
        assert_eq!(Period::parse("2026-10-01").unwrap().label, "2026-10-01");
        for bad in ["", "2026-Q5", "26", "2026-13", "2026-02-30", "x"] {
            assert!(Period::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn between_covers_partial_ends() {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let ps = between(Granularity::Month, d(9, 15), d(11, 2));
        let labels: Vec<_> = ps.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["2026-09", "2026-10", "2026-11"]);
        assert_eq!(between(Granularity::Day, d(9, 30), d(10, 2)).len(), 3);
    }
}
