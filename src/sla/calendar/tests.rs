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
    for (friday, due) in [
        ("2025-01-24T15:00", (2025, 1, 26)), // Sun, 春节调休
        ("2025-04-25T15:00", (2025, 4, 27)), // Sun, 劳动节调休
        ("2025-09-26T15:00", (2025, 9, 28)), // Sun, 国庆节调休
        ("2026-02-13T15:00", (2026, 2, 14)), // Sat, 春节调休
        ("2026-09-18T15:00", (2026, 9, 20)), // Sun, 国庆节调休
        // ...and an ordinary weekend does not.
        ("2026-03-06T15:00", (2026, 3, 9)),
    ] {
        assert_eq!(
            cal.add_working_days(bj(friday), 1),
            end_of(due.0, due.1, due.2),
            "{friday}"
        );
    }
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
    for (from, due) in [
        ("2026-09-30T10:00", (2026, 9, 30)),
        ("2026-10-03T10:00", (2026, 10, 8)),
        ("2026-10-10T10:00", (2026, 10, 10)), // 调休 Saturday
        ("2026-10-11T10:00", (2026, 10, 12)), // Sunday
    ] {
        assert_eq!(
            cal.add_working_days(bj(from), 0),
            end_of(due.0, due.1, due.2),
            "{from}"
        );
    }
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
        shown.contains("2023.json") && shown.contains("2022-12-31") && shown.contains("2022.json"),
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
