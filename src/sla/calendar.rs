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
mod tests;
