//! The working-day (工作日) calendar of mainland China, used for every SLA deadline.
//!
//! Deadlines in the source regulations are counted in working days: Saturdays,
//! Sundays and the statutory holidays are off, but the "adjusted" weekends (调休上班)
//! that the State Council moves around the holidays are on. There is no formula for
//! these: every year the General Office of the State Council publishes a notice
//! (《国务院办公厅关于××年部分节假日安排的通知》), so the calendar is *data*, one
//! file per year in `schema/calendars/YYYY.json` (DESIGN.md §3):
//!
//! ```json
//! {"year": 2026,
//!  "source": "国务院办公厅关于2026年部分节假日安排的通知（国办发明电〔2025〕7号）",
//!  "holidays": [{"name": "国庆节", "days": ["2026-10-01", "2026-10-02"]}],
//!  "workdays": [{"name": "国庆节调休", "days": ["2026-10-10"]}]}
//! ```
//!
//! Every day in a file must lie in that file's year. A notice whose holiday crosses
//! New Year (e.g. 元旦 2023 began on 2022-12-31) therefore puts the earlier days in
//! the previous year's file; this keeps "which file decides day D" unambiguous.
//! `scripts/check_calendar.py` compares the files with the independent
//! `chinese-calendar` package day by day.
//!
//! All business dates are dates in Asia/Shanghai ([`business_date`]): a ticket
//! dispatched at 2026-10-09 07:00 +08:00 was dispatched on Friday the 9th, although
//! it is still the 8th in UTC. Instants stay `DateTime<Utc>` everywhere else.
//!
//! For a year without a file the calendar falls back to "weekends only" rather than
//! failing, because a deadline that is off by a holiday is better than a dispatch that
//! cannot be recorded at all; it logs a warning once per missing year and remembers
//! the year so a metric can expose it ([`Calendar::missing_years_used`]).
//!
//! This module does no I/O except in [`Calendar::from_dir`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::Deserialize;

/// The time zone of every business date (工作日, 当日) in the service.
pub const BUSINESS_TZ: Tz = chrono_tz::Asia::Shanghai;

/// The year files compiled into the binary, in the order they are checked.
///
/// Adding a year means adding the file *and* a line here; the test
/// `shipped_directory_matches_embedded_list` fails if the two disagree.
#[rustfmt::skip]
const EMBEDDED: &[(&str, &str)] = &[
    ("2020.json", include_str!("../../schema/calendars/2020.json")),
    ("2021.json", include_str!("../../schema/calendars/2021.json")),
    ("2022.json", include_str!("../../schema/calendars/2022.json")),
    ("2023.json", include_str!("../../schema/calendars/2023.json")),
    ("2024.json", include_str!("../../schema/calendars/2024.json")),
    ("2025.json", include_str!("../../schema/calendars/2025.json")),
    ("2026.json", include_str!("../../schema/calendars/2026.json")),
];

/// The local (Asia/Shanghai) date of an instant: the business date it belongs to.
pub fn business_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&BUSINESS_TZ).date_naive()
}

/// The instant a local day starts (00:00 Asia/Shanghai).
pub fn start_of_day(day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_time(NaiveTime::MIN);
    match BUSINESS_TZ.from_local_datetime(&midnight) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        // Shanghai has had no DST since 1991, but tzdata knows older transitions; if
        // 00:00 happened twice, the day starts at the first one.
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        // If 00:00 was skipped by a spring-forward at midnight (1940s tzdata), the day
        // starts at the end of the gap, which is 00:00 at the old offset of +08:00.
        LocalResult::None => Utc.from_utc_datetime(&(midnight - Duration::hours(8))),
    }
}

/// The instant a local day ends (24:00 Asia/Shanghai = 00:00 of the next day).
/// Saturates at the end of time instead of panicking on chrono's last date.
fn end_of_day(day: NaiveDate) -> DateTime<Utc> {
    day.succ_opt()
        .map_or(DateTime::<Utc>::MAX_UTC, start_of_day)
}

fn is_weekend(day: NaiveDate) -> bool {
    matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// One year's exceptions to the Monday–Friday rule.
#[derive(Debug, Clone)]
struct Year {
    source: String,
    holidays: HashSet<NaiveDate>,
    workdays: HashSet<NaiveDate>,
}

#[derive(Debug)]
struct Inner {
    years: BTreeMap<i32, Year>,
    /// Years asked about that have no file. Behind a Mutex (not per-clone state) so
    /// that every clone handed to a worker reports into the same set, and the warning
    /// is logged once per calendar rather than once per clone.
    missing: Mutex<BTreeSet<i32>>,
}

/// Mainland China's working-day calendar; cheap to clone (clones share everything,
/// including the record of missing years).
#[derive(Clone)]
pub struct Calendar {
    inner: Arc<Inner>,
}

impl fmt::Debug for Calendar {
    // The day sets are long and uninteresting in logs; the years say what matters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calendar")
            .field("years", &self.years())
            .field("missing_years_used", &self.missing_years_used())
            .finish()
    }
}

/// The on-disk format of one year file. Unknown fields are rejected so that a typo
/// such as `"workday"` is an error instead of a silently ignored list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    year: i32,
    source: String,
    holidays: Vec<Period>,
    workdays: Vec<Period>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Period {
    name: String,
    /// Parsed by `check_year` rather than by serde, so that every bad date is reported
    /// with its period, not just the first one with a line number.
    days: Vec<String>,
}

/// Which list of a year file a day was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// `holidays`: statutory days off.
    Holidays,
    /// `workdays`: adjusted working weekends (调休上班).
    Workdays,
}

impl fmt::Display for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            List::Holidays => "holidays",
            List::Workdays => "workdays",
        })
    }
}

/// One thing wrong with the calendar files. Each names the file and, where there is
/// one, the offending day, so the fix can be made without further digging.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("{file}: line {line}, column {column}: not a valid calendar file: {message}")]
    Malformed {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },

    #[error(
        "{file}: {list} \"{period}\" lists \"{text}\", which is not a date written as YYYY-MM-DD"
    )]
    BadDate {
        file: String,
        list: List,
        period: String,
        text: String,
    },

    #[error(
        "{file}: {list} \"{period}\" lists {day}, which is outside the file's year {year}; \
         put it in {}.json instead", day.year()
    )]
    OutsideYear {
        file: String,
        year: i32,
        list: List,
        period: String,
        day: NaiveDate,
    },

    #[error(
        "{file}: {day} is listed twice ({first_list} \"{first}\" and {second_list} \"{second}\"); \
         remove one of them"
    )]
    Duplicate {
        file: String,
        day: NaiveDate,
        first_list: List,
        first: String,
        second_list: List,
        second: String,
    },

    #[error(
        "{file}: {day} is both a holiday (\"{holiday}\") and an adjusted working day (\"{workday}\"); \
         check the notice and keep only the right one"
    )]
    HolidayAndWorkday {
        file: String,
        day: NaiveDate,
        holiday: String,
        workday: String,
    },

    #[error(
        "{file}: workdays \"{period}\" lists {day}, a {} ({}); adjusted working days (调休上班) \
         are always a Saturday or Sunday, so this is probably a typo",
        weekday_en(*.day), weekday_zh(*.day)
    )]
    WorkdayNotWeekend {
        file: String,
        period: String,
        day: NaiveDate,
    },

    #[error("year {year} is defined by both {first} and {second}; keep exactly one file per year")]
    DuplicateYear {
        year: i32,
        first: String,
        second: String,
    },
}

fn weekday_en(day: NaiveDate) -> &'static str {
    match day.weekday() {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

fn weekday_zh(day: NaiveDate) -> &'static str {
    ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]
        [day.weekday().num_days_from_monday() as usize]
}

/// Why a calendar could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("cannot read calendar data at {}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    /// A configured directory without any year file is a deployment mistake, not a
    /// request for the weekends-only fallback.
    #[error("no calendar files (*.json) in {}; expected one YYYY.json per year", dir.display())]
    NoFiles { dir: PathBuf },

    /// Every problem found, not just the first, so one edit can fix them all.
    #[error("{}", describe_problems(.0))]
    Invalid(Vec<Problem>),
}

fn describe_problems(problems: &[Problem]) -> String {
    let mut text = format!(
        "calendar data has {} problem{}:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for problem in problems {
        text.push_str("\n  - ");
        text.push_str(&problem.to_string());
    }
    text
}

fn malformed(file: &str, err: &serde_json::Error) -> Problem {
    // serde_json appends " at line L column C"; we show the position first instead.
    let full = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    Problem::Malformed {
        file: file.to_string(),
        line: err.line(),
        column: err.column(),
        message,
    }
}

/// Checks one parsed file, appending its problems; returns the year's data.
fn check_year(file: &str, parsed: YearFile, problems: &mut Vec<Problem>) -> Year {
    let mut seen: HashMap<NaiveDate, (List, String)> = HashMap::new();
    let mut year = Year {
        source: parsed.source,
        holidays: HashSet::new(),
        workdays: HashSet::new(),
    };
    let lists = [
        (List::Holidays, parsed.holidays),
        (List::Workdays, parsed.workdays),
    ];
    for (list, periods) in lists {
        for period in periods {
            for text in period.days {
                // Round-tripping rejects what chrono would leniently accept ("2026-1-1").
                let day = match NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
                    Ok(day) if day.format("%Y-%m-%d").to_string() == text => day,
                    _ => {
                        problems.push(Problem::BadDate {
                            file: file.to_string(),
                            list,
                            period: period.name.clone(),
                            text,
                        });
                        continue;
                    }
                };
                if day.year() != parsed.year {
                    problems.push(Problem::OutsideYear {
                        file: file.to_string(),
                        year: parsed.year,
                        list,
                        period: period.name.clone(),
                        day,
                    });
                }
                if list == List::Workdays && !is_weekend(day) {
                    problems.push(Problem::WorkdayNotWeekend {
                        file: file.to_string(),
                        period: period.name.clone(),
                        day,
                    });
                }
                match seen.get(&day) {
                    None => {
                        seen.insert(day, (list, period.name.clone()));
                    }
                    Some((List::Holidays, first)) if list == List::Workdays => {
                        problems.push(Problem::HolidayAndWorkday {
                            file: file.to_string(),
                            day,
                            holiday: first.clone(),
                            workday: period.name.clone(),
                        });
                    }
                    Some((first_list, first)) => problems.push(Problem::Duplicate {
                        file: file.to_string(),
                        day,
                        first_list: *first_list,
                        first: first.clone(),
                        second_list: list,
                        second: period.name.clone(),
                    }),
                }
                match list {
                    List::Holidays => year.holidays.insert(day),
                    List::Workdays => year.workdays.insert(day),
                };
            }
        }
    }
    year
}

impl Calendar {
    /// The calendar shipped in the binary (`schema/calendars/*.json`).
    pub fn embedded() -> Calendar {
        // Cannot fail at run time: the files are compiled in, and the test
        // `embedded_calendar_parses` parses exactly these bytes, so broken data fails
        // `cargo test` before it can ship.
        Calendar::from_files(EMBEDDED)
            .expect("embedded calendar files are valid (see tests::embedded_calendar_parses)")
    }

    /// Loads every `*.json` in `dir` (other files are ignored), in file-name order.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Calendar, CalendarError> {
        let dir = dir.as_ref();
        let io_err = |path: &Path, error| CalendarError::Io {
            path: path.to_path_buf(),
            error,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
            let path = entry.map_err(|e| io_err(dir, e))?.path();
            if path.extension().is_some_and(|ext| ext == "json") && path.is_file() {
                paths.push(path);
            }
        }
        if paths.is_empty() {
            return Err(CalendarError::NoFiles {
                dir: dir.to_path_buf(),
            });
        }
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            files.push((name, text));
        }
        Calendar::from_files(&files)
    }

    /// Parses `(file name, contents)` pairs; the names are only used in error messages.
    /// An empty slice gives a calendar that knows no year (weekends only).
    pub fn from_files<N: AsRef<str>, T: AsRef<str>>(
        files: &[(N, T)],
    ) -> Result<Calendar, CalendarError> {
        let mut problems = Vec::new();
        let mut years: BTreeMap<i32, (String, Year)> = BTreeMap::new();
        for (name, text) in files {
            let name = name.as_ref();
            let parsed: YearFile = match serde_json::from_str(text.as_ref()) {
                Ok(parsed) => parsed,
                Err(err) => {
                    problems.push(malformed(name, &err));
                    continue;
                }
            };
            let number = parsed.year;
            let year = check_year(name, parsed, &mut problems);
            if let Some((first, _)) = years.get(&number) {
                problems.push(Problem::DuplicateYear {
                    year: number,
                    first: first.clone(),
                    second: name.to_string(),
                });
            } else {
                years.insert(number, (name.to_string(), year));
            }
        }
        if !problems.is_empty() {
            return Err(CalendarError::Invalid(problems));
        }
        let years = years
            .into_iter()
            .map(|(number, (_, year))| (number, year))
            .collect();
        Ok(Calendar {
            inner: Arc::new(Inner {
                years,
                missing: Mutex::new(BTreeSet::new()),
            }),
        })
    }

    /// Whether `year` has a file.
    pub fn covers_year(&self, year: i32) -> bool {
        self.inner.years.contains_key(&year)
    }

    /// The years that have a file, ascending.
    pub fn years(&self) -> Vec<i32> {
        self.inner.years.keys().copied().collect()
    }

    /// The `source` (the State Council notice) of a year's file.
    pub fn source(&self, year: i32) -> Option<&str> {
        self.inner.years.get(&year).map(|y| y.source.as_str())
    }

    /// Years without a file for which a working-day question was answered by the
    /// weekends-only fallback since this calendar was built, ascending.
    pub fn missing_years_used(&self) -> Vec<i32> {
        self.missing().iter().copied().collect()
    }

    fn missing(&self) -> std::sync::MutexGuard<'_, BTreeSet<i32>> {
        // A panic while holding this lock cannot leave a BTreeSet<i32> half-updated in a
        // way that matters, so a poisoned lock is simply used.
        self.inner
            .missing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn note_missing_year(&self, year: i32) {
        let first_time = self.missing().insert(year);
        if first_time {
            tracing::warn!(
                year,
                "no working-day calendar for {year}: counting only Saturdays and Sundays as days off; \
                 add schema/calendars/{year}.json from the State Council notice"
            );
        }
    }

    /// Whether `day` is a working day: a weekday that is not a holiday, or an adjusted
    /// working weekend (调休上班).
    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        match self.inner.years.get(&day.year()) {
            Some(year) => {
                year.workdays.contains(&day) || (!is_weekend(day) && !year.holidays.contains(&day))
            }
            None => {
                self.note_missing_year(day.year());
                !is_weekend(day)
            }
        }
    }

    /// The first working day strictly after `day` (saturates at chrono's last date).
    pub fn next_working_day(&self, day: NaiveDate) -> NaiveDate {
        let mut day = day;
        // Terminates quickly: a known year has at most a few weeks of consecutive days off,
        // and an unknown year has no more than two.
        loop {
            match day.succ_opt() {
                Some(next) => day = next,
                None => return day,
            }
            if self.is_working_day(day) {
                return day;
            }
        }
    }

    /// The deadline `n` working days after the instant `t`: the end (24:00 Asia/Shanghai)
    /// of the `n`-th working day strictly after `t`'s local date. The day of `t` itself
    /// never counts, whatever the hour: periods counted in days start on the next day
    /// and end at 24:00 of their last day (《民法典》第二百零一条、第二百零三条).
    /// `n == 0` means "by the end of today" if today is a working day, else by the end
    /// of the next working day.
    ///
    /// Cost is linear in the calendar days spanned; SLA terms are days or weeks.
    pub fn add_working_days(&self, t: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        let mut day = business_date(t);
        if n == 0 {
            if self.is_working_day(day) {
                return end_of_day(day);
            }
            return end_of_day(self.next_working_day(day));
        }
        for _ in 0..n {
            day = self.next_working_day(day);
        }
        end_of_day(day)
    }

    /// The deadline `h` wall-clock hours after `t` (emergencies: 2 hours means 2 hours,
    /// even at night or on a holiday). Saturates at the end of time.
    pub fn add_hours(&self, t: DateTime<Utc>, h: u32) -> DateTime<Utc> {
        t.checked_add_signed(Duration::hours(i64::from(h)))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Time elapsed from `from` to `to`, not counting the parts that fall on
    /// non-working local days (whole days: hours of the day are not business hours).
    /// Zero if `to <= from`.
    pub fn working_duration(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        let mut total = Duration::zero();
        let mut cursor = from;
        let mut day = business_date(from);
        while cursor < to {
            let segment_end = end_of_day(day).min(to);
            if self.is_working_day(day) {
                total += segment_end - cursor;
            }
            cursor = segment_end;
            match day.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    /// An instant written as Beijing time, e.g. "2026-09-30T10:00".
    fn bj(local: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("{local}:00+08:00"))
            .unwrap()
            .with_timezone(&Utc)
    }

    /// The end of a local day, i.e. 00:00 +08:00 of the following day.
    fn end_of_date(day: NaiveDate) -> DateTime<Utc> {
        bj(&format!("{}T00:00", day.succ_opt().unwrap()))
    }

    fn end_of(y: i32, m: u32, day: u32) -> DateTime<Utc> {
        end_of_date(d(y, m, day))
    }

    fn cal() -> Calendar {
        Calendar::embedded()
    }

    // ---- the shipped data ------------------------------------------------------

    #[test]
    fn embedded_calendar_parses() {
        let cal = Calendar::from_files(EMBEDDED).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cal.years(), (2020..=2026).collect::<Vec<_>>());
        assert_eq!(Calendar::embedded().years(), cal.years());
        for year in 2020..=2026 {
            let source = cal.source(year).unwrap();
            assert!(
                source.contains(&format!("{year}年部分节假日安排")),
                "{year}: {source}"
            );
            assert!(source.contains("国办发明电"), "{year}: {source}");
        }
    }

    #[test]
    fn shipped_directory_matches_embedded_list() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/calendars");
        let from_dir = Calendar::from_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            from_dir.years(),
            cal().years(),
            "a file in {} is missing from EMBEDDED",
            dir.display()
        );
    }

    #[test]
    fn year_metadata() {
        let cal = cal();
        assert!(cal.covers_year(2020) && cal.covers_year(2026));
        assert!(!cal.covers_year(2019) && !cal.covers_year(2027));
        assert!(
            cal.missing_years_used().is_empty(),
            "covers_year must not count as a fallback use"
        );
        assert!(format!("{cal:?}").contains("2026"));
    }

    // ---- the acceptance criterion ----------------------------------------------

    #[test]
    fn national_day_2026_acceptance() {
        let cal = cal();
        let t = bj("2026-09-30T10:00");
        // Oct 1–7 off, so the first working day after Sep 30 is Oct 8.
        assert_eq!(cal.add_working_days(t, 1), bj("2026-10-09T00:00"));
        // Oct 8, 9, Sat Oct 10 (国庆节调休), Mon Oct 12, Tue Oct 13.
        assert_eq!(cal.add_working_days(t, 5), bj("2026-10-14T00:00"));
    }

    // ---- every holiday period of 2025 and 2026 ---------------------------------

    /// (period, first and last day off as published, dispatch day = the last working
    /// day before the period, the first five working days after the dispatch day).
    /// Worked out by hand from the notices, not with the code under test; listing all
    /// five days (not just the 5th) makes a misplaced 调休 day fail even when the
    /// deadline happens to come out the same.
    #[rustfmt::skip]
    const PERIODS_2025_2026: &[(&str, &str, &str, &str, [&str; 5])] = &[
        // 2025 (国办发明电〔2024〕12号)
        ("2025 元旦", "2025-01-01", "2025-01-01", "2024-12-31",
         ["2025-01-02", "2025-01-03", "2025-01-06", "2025-01-07", "2025-01-08"]),
        ("2025 春节", "2025-01-28", "2025-02-04", "2025-01-27", // Sat Feb 8 调休
         ["2025-02-05", "2025-02-06", "2025-02-07", "2025-02-08", "2025-02-10"]),
        ("2025 清明节", "2025-04-04", "2025-04-06", "2025-04-03",
         ["2025-04-07", "2025-04-08", "2025-04-09", "2025-04-10", "2025-04-11"]),
        ("2025 劳动节", "2025-05-01", "2025-05-05", "2025-04-30",
         ["2025-05-06", "2025-05-07", "2025-05-08", "2025-05-09", "2025-05-12"]),
        ("2025 端午节", "2025-05-31", "2025-06-02", "2025-05-30",
         ["2025-06-03", "2025-06-04", "2025-06-05", "2025-06-06", "2025-06-09"]),
        ("2025 国庆节、中秋节", "2025-10-01", "2025-10-08", "2025-09-30", // Sat Oct 11 调休
         ["2025-10-09", "2025-10-10", "2025-10-11", "2025-10-13", "2025-10-14"]),
        // 2026 (国办发明电〔2025〕7号)
        ("2026 元旦", "2026-01-01", "2026-01-03", "2025-12-31", // Sun Jan 4 调休
         ["2026-01-04", "2026-01-05", "2026-01-06", "2026-01-07", "2026-01-08"]),
        ("2026 春节", "2026-02-15", "2026-02-23", "2026-02-14", // dispatched on Sat Feb 14 (调休); Sat Feb 28 调休
         ["2026-02-24", "2026-02-25", "2026-02-26", "2026-02-27", "2026-02-28"]),
        ("2026 清明节", "2026-04-04", "2026-04-06", "2026-04-03",
         ["2026-04-07", "2026-04-08", "2026-04-09", "2026-04-10", "2026-04-13"]),
        ("2026 劳动节", "2026-05-01", "2026-05-05", "2026-04-30", // Sat May 9 调休
         ["2026-05-06", "2026-05-07", "2026-05-08", "2026-05-09", "2026-05-11"]),
        ("2026 端午节", "2026-06-19", "2026-06-21", "2026-06-18",
         ["2026-06-22", "2026-06-23", "2026-06-24", "2026-06-25", "2026-06-26"]),
        ("2026 中秋节", "2026-09-25", "2026-09-27", "2026-09-24", // then Oct 1–7 off
         ["2026-09-28", "2026-09-29", "2026-09-30", "2026-10-08", "2026-10-09"]),
        ("2026 国庆节", "2026-10-01", "2026-10-07", "2026-09-30", // Sat Oct 10 调休
         ["2026-10-08", "2026-10-09", "2026-10-10", "2026-10-12", "2026-10-13"]),
    ];

    fn ymd(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn every_holiday_period_of_2025_and_2026() {
        let cal = cal();
        for &(name, first, last, dispatch, next_five) in PERIODS_2025_2026 {
            let (first, last, dispatch) = (ymd(first), ymd(last), ymd(dispatch));
            let next_five = next_five.map(ymd);
            assert!(dispatch < first, "{name}: the table is wrong");
            assert!(
                cal.is_working_day(dispatch),
                "{name}: dispatch day {dispatch} should be working"
            );
            // Everything from the day after dispatch to the end of the period is off.
            let mut day = dispatch.succ_opt().unwrap();
            while day <= last {
                assert!(!cal.is_working_day(day), "{name}: {day} should be off");
                day = day.succ_opt().unwrap();
            }
            let mut chain = dispatch;
            for expected in next_five {
                chain = cal.next_working_day(chain);
                assert_eq!(chain, expected, "{name}: working days after {dispatch}");
            }
            // Midnight, morning and just-before-midnight dispatches all count from the next day.
            for hour in ["00:00", "10:00", "23:59"] {
                let t = bj(&format!("{dispatch}T{hour}"));
                let one = cal.add_working_days(t, 1);
                let five = cal.add_working_days(t, 5);
                assert_eq!(one, end_of_date(next_five[0]), "{name}: +1 from {hour}");
                assert_eq!(five, end_of_date(next_five[4]), "{name}: +5 from {hour}");
                assert!(
                    one > end_of_date(last),
                    "{name}: +1 falls inside the period"
                );
                for (k, expected) in (1..=5).zip(next_five) {
                    assert_eq!(
                        cal.add_working_days(t, k),
                        end_of_date(expected),
                        "{name}: +{k}"
                    );
                }
            }
        }
        assert!(cal.missing_years_used().is_empty());
    }

    #[test]
    fn adjusted_weekends_before_a_holiday_count() {
        let cal = cal();
        // Friday before the 调休 Sunday/Saturday: the next working day is that weekend day.
        assert_eq!(
            cal.add_working_days(bj("2025-01-24T15:00"), 1),
            end_of(2025, 1, 26)
        ); // Sun, 春节调休
        assert_eq!(
            cal.add_working_days(bj("2025-04-25T15:00"), 1),
            end_of(2025, 4, 27)
        ); // Sun, 劳动节调休
        assert_eq!(
            cal.add_working_days(bj("2025-09-26T15:00"), 1),
            end_of(2025, 9, 28)
        ); // Sun, 国庆节调休
        assert_eq!(
            cal.add_working_days(bj("2026-02-13T15:00"), 1),
            end_of(2026, 2, 14)
        ); // Sat, 春节调休
        assert_eq!(
            cal.add_working_days(bj("2026-09-18T15:00"), 1),
            end_of(2026, 9, 20)
        ); // Sun, 国庆节调休
        // ...and an ordinary weekend does not.
        assert_eq!(
            cal.add_working_days(bj("2026-03-06T15:00"), 1),
            end_of(2026, 3, 9)
        );
    }

    #[test]
    fn is_working_day_examples() {
        let cal = cal();
        assert!(!cal.is_working_day(d(2026, 10, 1))); // holiday on a Thursday
        assert!(cal.is_working_day(d(2026, 10, 10))); // 调休 Saturday
        assert!(!cal.is_working_day(d(2026, 10, 11))); // ordinary Sunday
        assert!(cal.is_working_day(d(2026, 10, 12))); // ordinary Monday
        assert!(!cal.is_working_day(d(2020, 2, 1))); // Saturday: the 2020 春节 extension cancelled its 调休
        assert!(!cal.is_working_day(d(2020, 1, 31))); // Friday: 春节 extended (国办发明电〔2020〕1号)
        assert_eq!(cal.next_working_day(d(2026, 10, 9)), d(2026, 10, 10));
        assert_eq!(cal.next_working_day(d(2026, 10, 10)), d(2026, 10, 12));
    }

    // ---- time zone and the n = 0 / hours terms ---------------------------------

    #[test]
    fn business_date_is_shanghai_not_utc() {
        // 07:00 on Fri 2026-10-09 in Beijing is still Oct 8 in UTC.
        let t = bj("2026-10-09T07:00");
        assert_eq!(t.date_naive(), d(2026, 10, 8));
        assert_eq!(business_date(t), d(2026, 10, 9));
        // Counting from Oct 9, the next working day is the 调休 Saturday Oct 10.
        assert_eq!(cal().add_working_days(t, 1), end_of(2026, 10, 10));
        // 23:30 on Sep 30 in Beijing is 15:30 UTC; same business date.
        assert_eq!(business_date(bj("2026-09-30T23:30")), d(2026, 9, 30));
    }

    #[test]
    fn zero_working_days_means_end_of_today_or_next_working_day() {
        let cal = cal();
        assert_eq!(
            cal.add_working_days(bj("2026-09-30T10:00"), 0),
            end_of(2026, 9, 30)
        );
        assert_eq!(
            cal.add_working_days(bj("2026-10-03T10:00"), 0),
            end_of(2026, 10, 8)
        );
        assert_eq!(
            cal.add_working_days(bj("2026-10-10T10:00"), 0),
            end_of(2026, 10, 10)
        ); // 调休 Saturday
        assert_eq!(
            cal.add_working_days(bj("2026-10-11T10:00"), 0),
            end_of(2026, 10, 12)
        ); // Sunday
    }

    #[test]
    fn add_hours_is_wall_clock() {
        let cal = cal();
        // Holidays do not stop the clock for hour terms.
        assert_eq!(
            cal.add_hours(bj("2026-09-30T23:00"), 2),
            bj("2026-10-01T01:00")
        );
        assert_eq!(
            cal.add_hours(bj("2026-10-03T09:15"), 0),
            bj("2026-10-03T09:15")
        );
        assert_eq!(
            cal.add_hours(DateTime::<Utc>::MAX_UTC, 1),
            DateTime::<Utc>::MAX_UTC
        );
    }

    // ---- working_duration --------------------------------------------------------

    #[test]
    fn working_duration_across_a_weekend() {
        let cal = cal();
        // Fri 16:00 → Mon 10:00: 8 h on Friday + 10 h on Monday; the weekend does not count.
        assert_eq!(
            cal.working_duration(bj("2026-03-06T16:00"), bj("2026-03-09T10:00")),
            Duration::hours(18)
        );
    }

    #[test]
    fn working_duration_across_a_holiday() {
        let cal = cal();
        // Wed Sep 30 20:00 → Thu Oct 8 09:00: 4 h + 9 h; Oct 1–7 do not count.
        assert_eq!(
            cal.working_duration(bj("2026-09-30T20:00"), bj("2026-10-08T09:00")),
            Duration::hours(13)
        );
        // Fri Oct 9 12:00 → Sun Oct 11 12:00: 12 h + the whole 调休 Saturday; Sunday does not count.
        assert_eq!(
            cal.working_duration(bj("2026-10-09T12:00"), bj("2026-10-11T12:00")),
            Duration::hours(36)
        );
    }

    #[test]
    fn working_duration_edge_cases() {
        let cal = cal();
        let t = bj("2026-09-30T10:00");
        assert_eq!(cal.working_duration(t, t), Duration::zero());
        assert_eq!(
            cal.working_duration(t, bj("2026-09-30T09:00")),
            Duration::zero()
        );
        assert_eq!(
            cal.working_duration(t, bj("2026-09-30T12:30")),
            Duration::minutes(150)
        );
        // Entirely inside a holiday.
        assert_eq!(
            cal.working_duration(bj("2026-10-02T08:00"), bj("2026-10-05T08:00")),
            Duration::zero()
        );
        // A deadline computed by add_working_days leaves exactly n working days of time
        // after the dispatch day.
        let deadline = cal.add_working_days(t, 5);
        assert_eq!(
            cal.working_duration(end_of(2026, 9, 30), deadline),
            Duration::days(5)
        );
    }

    // ---- missing years -----------------------------------------------------------

    /// Counts WARN events, to prove the fallback warns once per missing year.
    struct CountWarnings(Arc<AtomicUsize>);

    impl tracing::Subscriber for CountWarnings {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            if *event.metadata().level() == tracing::Level::WARN {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn missing_year_falls_back_to_weekends_and_is_recorded_once() {
        let warnings = Arc::new(AtomicUsize::new(0));
        let subscriber = CountWarnings(Arc::clone(&warnings));
        tracing::subscriber::with_default(subscriber, || {
            let cal = cal();
            assert!(cal.is_working_day(d(2030, 1, 1))); // a Tuesday: New Year unknown without a file
            assert!(!cal.is_working_day(d(2030, 1, 5))); // Saturday
            assert!(cal.is_working_day(d(2030, 1, 7)));
            assert_eq!(cal.missing_years_used(), vec![2030]);
            assert_eq!(
                warnings.load(Ordering::SeqCst),
                1,
                "one warning per missing year"
            );

            // Clones share the record.
            let clone = cal.clone();
            assert!(!clone.is_working_day(d(2019, 1, 6))); // Sunday
            assert_eq!(cal.missing_years_used(), vec![2019, 2030]);
            assert_eq!(warnings.load(Ordering::SeqCst), 2);

            // A deadline that runs into a year without a file uses the fallback (New
            // Year's Day 2027 is counted as a working day) and is recorded.
            assert_eq!(
                cal.add_working_days(bj("2026-12-31T10:00"), 1),
                end_of(2027, 1, 1)
            );
            assert_eq!(clone.missing_years_used(), vec![2019, 2027, 2030]);
            assert_eq!(warnings.load(Ordering::SeqCst), 3);
        });
    }

    #[test]
    fn an_empty_calendar_is_weekends_only() {
        let cal = Calendar::from_files::<&str, &str>(&[]).unwrap();
        assert!(cal.years().is_empty());
        assert!(cal.is_working_day(d(2026, 10, 1)));
        assert_eq!(
            cal.add_working_days(bj("2026-10-09T10:00"), 1),
            end_of(2026, 10, 12)
        );
        assert_eq!(cal.missing_years_used(), vec![2026]);
        // A separately built calendar has its own record.
        assert!(Calendar::embedded().missing_years_used().is_empty());
    }

    // ---- validation --------------------------------------------------------------

    fn problems(files: &[(&str, &str)]) -> Vec<Problem> {
        match Calendar::from_files(files) {
            Err(CalendarError::Invalid(problems)) => problems,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    const GOOD_2026: &str = r#"{"year": 2026, "source": "test",
        "holidays": [{"name": "国庆节", "days": ["2026-10-01", "2026-10-02"]}],
        "workdays": [{"name": "国庆节调休", "days": ["2026-10-10"]}]}"#;

    #[test]
    fn malformed_json_reports_line_and_column() {
        let text = "{\"year\": 2026,\n \"source\": \"x\",\n \"holidays\": [}\n";
        let found = problems(&[("2026.json", text)]);
        assert_eq!(found.len(), 1);
        let Problem::Malformed {
            file, line, column, ..
        } = &found[0]
        else {
            panic!("{found:?}")
        };
        assert_eq!((file.as_str(), *line), ("2026.json", 3));
        assert!(*column > 0);
        let shown = found[0].to_string();
        assert!(shown.starts_with("2026.json: line 3, column "), "{shown}");
        assert!(
            !shown.ends_with(&format!("at line 3 column {column}")),
            "position printed twice: {shown}"
        );
    }

    #[test]
    fn unknown_fields_are_malformed() {
        let typo = r#"{"year": 2026, "source": "x", "holidays": [], "workday": []}"#;
        let found = problems(&[("b.json", typo)]);
        assert!(
            matches!(&found[..], [Problem::Malformed { file, .. }] if file == "b.json"),
            "{found:?}"
        );
        assert!(found[0].to_string().contains("workday"), "{}", found[0]);
    }

    #[test]
    fn every_bad_date_is_reported() {
        let text = r#"{"year": 2026, "source": "x",
            "holidays": [{"name": "春节", "days": ["2026-02-30", "2026-2-1", "2026-02-16"]}],
            "workdays": [{"name": "调休", "days": ["14 Feb 2026"]}]}"#;
        let found = problems(&[("2026.json", text)]);
        let bad: Vec<&str> = found
            .iter()
            .map(|p| match p {
                Problem::BadDate { file, text, .. } if file == "2026.json" => text.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(bad, ["2026-02-30", "2026-2-1", "14 Feb 2026"]);
        assert!(
            found[0]
                .to_string()
                .contains("holidays \"春节\" lists \"2026-02-30\""),
            "{}",
            found[0]
        );
    }

    #[test]
    fn date_outside_the_files_year() {
        let text = r#"{"year": 2023, "source": "x",
            "holidays": [{"name": "元旦", "days": ["2022-12-31", "2023-01-01", "2023-01-02"]}], "workdays": []}"#;
        let found = problems(&[("2023.json", text)]);
        assert_eq!(
            found,
            vec![Problem::OutsideYear {
                file: "2023.json".into(),
                year: 2023,
                list: List::Holidays,
                period: "元旦".into(),
                day: d(2022, 12, 31),
            }]
        );
        let shown = found[0].to_string();
        assert!(
            shown.contains("2023.json")
                && shown.contains("2022-12-31")
                && shown.contains("2022.json"),
            "{shown}"
        );
    }

    #[test]
    fn day_listed_twice() {
        let text = r#"{"year": 2026, "source": "x",
            "holidays": [{"name": "中秋节", "days": ["2026-09-27"]}, {"name": "国庆节", "days": ["2026-09-27", "2026-10-01", "2026-10-01"]}],
            "workdays": [{"name": "调休", "days": ["2026-10-10", "2026-10-10"]}]}"#;
        let found = problems(&[("2026.json", text)]);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found
                .iter()
                .all(|p| matches!(p, Problem::Duplicate { file, .. } if file == "2026.json"))
        );
        let shown = found[0].to_string();
        assert!(
            shown.contains("2026-09-27") && shown.contains("中秋节") && shown.contains("国庆节"),
            "{shown}"
        );
        assert!(found[2].to_string().contains("2026-10-10"), "{}", found[2]);
    }

    #[test]
    fn day_both_holiday_and_workday() {
        let text = r#"{"year": 2026, "source": "x",
            "holidays": [{"name": "国庆节", "days": ["2026-10-03"]}],
            "workdays": [{"name": "国庆节调休", "days": ["2026-10-03"]}]}"#;
        let found = problems(&[("2026.json", text)]);
        assert_eq!(
            found,
            vec![Problem::HolidayAndWorkday {
                file: "2026.json".into(),
                day: d(2026, 10, 3),
                holiday: "国庆节".into(),
                workday: "国庆节调休".into(),
            }]
        );
    }

    #[test]
    fn workday_that_is_not_a_weekend() {
        let text = r#"{"year": 2026, "source": "x", "holidays": [],
            "workdays": [{"name": "国庆节调休", "days": ["2026-10-09", "2026-10-10"]}]}"#;
        let found = problems(&[("2026.json", text)]);
        assert_eq!(
            found,
            vec![Problem::WorkdayNotWeekend {
                file: "2026.json".into(),
                period: "国庆节调休".into(),
                day: d(2026, 10, 9)
            }]
        );
        let shown = found[0].to_string();
        assert!(
            shown.contains("2026-10-09") && shown.contains("Friday") && shown.contains("周五"),
            "{shown}"
        );
    }

    #[test]
    fn two_files_for_one_year() {
        let found = problems(&[("2026.json", GOOD_2026), ("2026-copy.json", GOOD_2026)]);
        assert_eq!(
            found,
            vec![Problem::DuplicateYear {
                year: 2026,
                first: "2026.json".into(),
                second: "2026-copy.json".into()
            }]
        );
    }

    #[test]
    fn every_problem_is_reported_not_just_the_first() {
        let bad_2025 = r#"{"year": 2025, "source": "x",
            "holidays": [{"name": "元旦", "days": ["2024-12-31", "2025-01-01"]}],
            "workdays": [{"name": "调休", "days": ["2025-01-01", "2025-01-02"]}]}"#;
        let err = Calendar::from_files(&[
            ("2025.json", bad_2025),
            ("broken.json", "{"),
            ("2026.json", GOOD_2026),
            ("2026b.json", GOOD_2026),
        ])
        .unwrap_err();
        let CalendarError::Invalid(found) = &err else {
            panic!("{err:?}")
        };
        // 2024-12-31 outside; 2025-01-01 is a Wednesday workday and also a holiday;
        // 2025-01-02 is a Thursday workday; broken.json; 2026 twice.
        assert_eq!(found.len(), 6, "{found:#?}");
        let shown = err.to_string();
        assert!(
            shown.starts_with("calendar data has 6 problems:"),
            "{shown}"
        );
        for needle in [
            "2024-12-31",
            "2025-01-01",
            "2025-01-02",
            "broken.json",
            "2026b.json",
        ] {
            assert!(shown.contains(needle), "{needle} missing from:\n{shown}");
        }
        assert_eq!(shown.lines().count(), 7, "{shown}");
    }

    #[test]
    fn from_dir_loads_json_files_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("2026.json"), GOOD_2026).unwrap();
        std::fs::write(dir.path().join("README.md"), "not a calendar").unwrap();
        let cal = Calendar::from_dir(dir.path()).unwrap();
        assert_eq!(cal.years(), vec![2026]);
        assert!(!cal.is_working_day(d(2026, 10, 2)));
        assert!(cal.is_working_day(d(2026, 10, 10)));
        // Problems name the file as found in the directory.
        std::fs::write(dir.path().join("2027.json"), r#"{"year": 2027"#).unwrap();
        let err = Calendar::from_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("2027.json: line 1"), "{err}");
    }

    #[test]
    fn from_dir_errors_a_person_can_act_on() {
        let dir = tempfile::tempdir().unwrap();
        let err = Calendar::from_dir(dir.path()).unwrap_err();
        assert!(matches!(err, CalendarError::NoFiles { .. }), "{err:?}");
        assert!(err.to_string().contains("no calendar files"), "{err}");

        let missing = dir.path().join("nope");
        let err = Calendar::from_dir(&missing).unwrap_err();
        assert!(matches!(err, CalendarError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
