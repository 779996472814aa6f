//! The sheets with what people entered: the ledger's active entries counted in
//! every period that contains theirs, caps, withdrawals, the departments' mean of
//! evaluations and the yearly formula, worked by hand.

use super::*;
use crate::appraisal::ledger::{AppraisalEvent, EntryRecorded, EntryWithdrawn, Ledger, Recorded};
use uuid::Uuid;

/// Builds a ledger from entries and withdrawals, in log order.
#[derive(Default)]
struct Log {
    events: Vec<Recorded>,
}

impl Log {
    /// Records an entry; returns its id.
    fn entry(&mut self, unit: &str, period: &str, item: &str, count: u32) -> Uuid {
        self.record(unit, period, item, Some(count), None, "hg", &[])
    }

    fn free(&mut self, unit: &str, period: &str, item: &str, points: f64, township: &str) -> Uuid {
        self.record(unit, period, item, None, Some(points), township, &[])
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        unit: &str,
        period: &str,
        item: &str,
        count: Option<u32>,
        points: Option<f64>,
        township: &str,
        tickets: &[&str],
    ) -> Uuid {
        let id = Uuid::from_u128(0xe000 + self.events.len() as u128);
        self.push(
            id,
            AppraisalEvent::EntryRecorded(EntryRecorded {
                unit: unit.into(),
                period: period.into(),
                item: item.into(),
                count,
                points,
                note: format!("{item} {period}"),
                township: township.into(),
                grade_word: points.map(|_| "好".to_string()),
                tickets: tickets.iter().map(|t| tid(t)).collect(),
                photos: vec![],
            }),
        );
        id
    }

    fn withdraw(&mut self, id: Uuid) {
        self.push(
            id,
            AppraisalEvent::EntryWithdrawn(EntryWithdrawn {
                reason: "entered twice".into(),
            }),
        );
    }

    fn push(&mut self, stream: Uuid, event: AppraisalEvent) {
        let position = 1_000 + self.events.len() as i64;
        self.events.push(Recorded {
            position,
            stream,
            event,
            actor: "appraiser-hg".into(),
            at: chrono::DateTime::from_timestamp(1_780_000_000 + position, 0).expect("a time"),
        });
    }

    fn ledger(&self) -> Ledger {
        Ledger::fold(&self.events)
    }
}

fn one(unit: &str, p: &str, f: Figures, ledger: &Ledger) -> UnitAppraisal {
    let p = period(p);
    let t = table(&p, vec![(unit, f)]);
    appraise(default_profile(), &demo(), &p, &t, &[], ledger).remove(0)
}

fn entries(d: &Deduction) -> &[Uuid] {
    &d.evidence.entries
}

#[test]
fn a_department_loses_nothing_from_tickets_and_scores_the_mean_of_the_townships() {
    let mut log = Log::default();
    let hg = log.free("zhzf", "2026", "township_evaluation", 27.0, "hg");
    let fl = log.free("zhzf", "2026", "township_evaluation", 24.0, "fl");
    let wrong = log.free("zhzf", "2026", "township_evaluation", 3.0, "sx");
    log.withdraw(wrong);
    // Another department's, and another year's: not this one's.
    log.free("scjg", "2026", "township_evaluation", 10.0, "hg");
    log.free("zhzf", "2025", "township_evaluation", 10.0, "hg");
    let ledger = log.ledger();
    let late = Figures {
        due_to_sign: 4,
        late_signs: evs(4, "s"),
        late_completions: evs(3, "l"),
        supervised_repeat: evs(1, "r"),
        ..Figures::default()
    };
    let a = one("zhzf", "2026", late.clone(), &ledger);
    assert_eq!(a.sheet.as_deref(), Some("department"));
    assert_eq!((a.base, a.weight), (Some(30.0), Some(0.3)));
    assert!(a.deductions.is_empty(), "tickets deduct nothing");
    // (27 + 24) / 2
    assert_eq!(a.score, Some(25.5));
    assert_eq!(a.bonus, None);
    let evs: Vec<(&str, &str, f64, Uuid)> = a
        .evaluations
        .as_ref()
        .expect("evaluations")
        .iter()
        .map(|e| {
            (
                e.township.as_str(),
                e.township_name.as_str(),
                e.points,
                e.entry,
            )
        })
        .collect();
    assert_eq!(evs.len(), 2);
    assert_eq!((evs[0].0, evs[0].2, evs[0].3), ("hg", 27.0, hg));
    assert_eq!((evs[1].0, evs[1].2, evs[1].3), ("fl", 24.0, fl));
    assert!(!evs[0].1.is_empty(), "the township's name");
    // The ticket figures are shown as reference, with their evidence.
    let reference = a.reference.as_ref().expect("reference");
    let codes: Vec<(&str, f64)> = reference
        .iter()
        .map(|d| (d.rule.as_str(), d.points))
        .collect();
    assert_eq!(
        codes,
        [
            ("regulation.late_registration", -2.0),
            ("supervision.late_completion", -3.0),
            ("supervision.repeated", -2.0),
        ]
    );
    assert_eq!(reference[1].evidence.len(), 3);
    // A quarter has no evaluation: no score, the reference still shown.
    let q = one("zhzf", "2026-Q3", late, &ledger);
    assert_eq!(q.score, None);
    assert_eq!(q.evaluations.as_deref(), Some(&[][..]));
    assert_eq!(q.reference.as_ref().map(Vec::len), Some(3));
    // A year nobody scored: no score.
    let none = one("zhzf", "2027", Figures::default(), &ledger);
    assert_eq!(none.score, None);
}

#[test]
fn a_squads_quarter_hits_the_caps_and_keeps_every_entry() {
    let mut log = Log::default();
    let u = "hg-zfzd";
    // 1.队伍建设 (20): every point of it (5 each) lost, one way or two.
    let plan = log.entry(u, "2026-01", "team.no_plan", 1); // −2
    let unreal = log.entry(u, "2026-Q1", "team.plan_unrealistic", 4); // −4 → (1) at 5
    log.entry(u, "2026-02", "team.no_rules", 1); // −2
    log.entry(u, "2026-02", "team.rules_incomplete", 3); // −3 → (2) = 5
    log.entry(u, "2026-03", "team.drill_record_missing", 7); // −7 → (3) at 5
    log.entry(u, "2026-03", "team.uncivil", 3); // −3, after satisfaction's −3 → (4) at 5
    // 5.档案管理 (5): seven findings in two months.
    let a1 = log.entry(u, "2026-01", "archives.finding", 4);
    let a2 = log.entry(u, "2026-03", "archives.finding", 3);
    // Not in Q1: April, and the year-end check.
    log.entry(u, "2026-04", "archives.finding", 1);
    log.entry(u, "2026", "archives.finding", 1);
    let ledger = log.ledger();
    let f = Figures {
        satisfied: 8,
        unsatisfied: 2,
        feedback_unsatisfied: vec![ev("u1", 7), ev("u2", 8)],
        ..Figures::default()
    };
    let a = one(u, "2026-Q1", f, &ledger);
    assert_eq!(
        rules(&a),
        vec![
            ("team.no_plan", 1, -2.0),
            ("team.plan_unrealistic", 4, -3.0),
            ("team.no_rules", 1, -2.0),
            ("team.rules_incomplete", 3, -3.0),
            ("team.drill_record_missing", 7, -5.0),
            ("team.satisfaction", 2, -3.0),
            ("team.uncivil", 3, -2.0),
            ("archives.finding", 7, -5.0),
        ]
    );
    // 100 − 20 − 5
    assert_eq!(a.score, Some(75.0));
    let team: f64 = a
        .deductions
        .iter()
        .filter(|d| d.section == "team")
        .map(|d| d.points)
        .sum();
    assert_eq!(team, -20.0, "the section's full points");
    let unreal_d = find(&a, "team.plan_unrealistic");
    assert!(unreal_d.capped && unreal_d.manual);
    assert_eq!(unreal_d.uncapped_points, Some(-4.0));
    assert_eq!(entries(unreal_d), [unreal]);
    assert_eq!(entries(find(&a, "team.no_plan")), [plan]);
    let archives = find(&a, "archives.finding");
    assert_eq!(entries(archives), [a1, a2], "a cap keeps every entry");
    assert!(archives.capped);
    assert_eq!(archives.uncapped_points, Some(-7.0));
    assert!(archives.evidence.tickets.is_empty());
    let uncivil = find(&a, "team.uncivil");
    assert_eq!(
        uncivil.uncapped_points,
        Some(-3.0),
        "the group (4) shares 5 points"
    );
    assert!(!find(&a, "team.satisfaction").manual);
    // The month sees only its own entries; the year-end sheet every one of them.
    let jan = one(u, "2026-01", Figures::default(), &ledger);
    assert_eq!(
        rules(&jan),
        vec![("team.no_plan", 1, -2.0), ("archives.finding", 4, -4.0)]
    );
    let y = one(u, "2026", Figures::default(), &ledger);
    assert_eq!(find(&y, "archives.finding").count, 9);
}

#[test]
fn a_judicial_office_is_scored_by_entries_only_and_a_section_cap_cuts_partway() {
    let mut log = Log::default();
    let u = "hg-sfs";
    log.entry(u, "2026-01", "integrity.party_discipline", 2); // −10
    log.entry(u, "2026-Q1", "integrity.party_discipline", 1); // −5
    log.entry(u, "2026-02", "integrity.reported", 1); // −5
    let wd = log.entry(u, "2026-03", "integrity.work_discipline", 2); // −4 → cut to 0
    log.entry(u, "2026-03", "party.volunteer_missed", 2); // −4
    let ledger = log.ledger();
    // Tickets late: nothing on this sheet is computed from them.
    let f = Figures {
        late_completions: evs(3, "l"),
        late_signs: evs(3, "s"),
        ..Figures::default()
    };
    let a = one(u, "2026-Q1", f, &ledger);
    assert_eq!(a.sheet.as_deref(), Some("judicial"));
    assert_eq!(
        rules(&a),
        vec![
            ("integrity.party_discipline", 3, -15.0),
            ("integrity.reported", 1, -5.0),
            ("integrity.work_discipline", 2, 0.0),
            ("party.volunteer_missed", 2, -4.0),
        ]
    );
    let cut = find(&a, "integrity.work_discipline");
    assert_eq!((cut.capped, cut.uncapped_points), (true, Some(-4.0)));
    assert_eq!(entries(cut), [wd]);
    assert_eq!(a.score, Some(76.0));
}

#[test]
fn a_withdrawal_restores_the_score() {
    let mut log = Log::default();
    let u = "hg-scjgs";
    let id = log.entry(u, "2026-08", "standards.dress", 2);
    let before = one(u, "2026-Q3", Figures::default(), &log.ledger());
    assert_eq!(before.score, Some(96.0));
    assert_eq!(entries(find(&before, "standards.dress")), [id]);
    log.withdraw(id);
    let after = one(u, "2026-Q3", Figures::default(), &log.ledger());
    assert_eq!(after.score, Some(100.0));
    assert!(after.deductions.is_empty());
}

#[test]
fn a_year_with_quarters_a_year_end_check_and_a_bonus_follows_the_formula() {
    let org = demo();
    let u = "hg-zfzd";
    let mut log = Log::default();
    log.entry(u, "2026-Q1", "archives.finding", 1); // Q1 and the year: −1
    log.entry(u, "2026", "regulation.no_recorder", 1); // the year-end check: −3
    log.entry(u, "2026-Q2", "bonus.media_city", 1); // +2
    log.entry(u, "2026-05", "bonus.media_district", 1); // +1
    log.free(u, "2026-Q3", "bonus.self_found_area", 0.37, "hg"); // +0.37
    log.entry(u, "2026", "bonus.report_late", 1); // −1
    let ledger = log.ledger();
    let year = period("2026");
    let mut periods = year.quarters();
    periods.push(year.clone());
    let late = |n: usize| Figures {
        late_completions: evs(n, "l"),
        ..Figures::default()
    };
    let t = Table {
        units: vec![u.into()],
        periods,
        cells: vec![late(1), late(0), late(2), late(0), late(3)],
    };
    let a = &appraise(default_profile(), &org, &year, &t, &[], &ledger)[0];
    let qs: Vec<f64> = a
        .quarters
        .as_ref()
        .expect("quarters")
        .iter()
        .map(|q| q.score)
        .collect();
    // Q1: −1 ticket −1 archives; Q2: the bonus is not in a quarter's score.
    assert_eq!(qs, [98.0, 100.0, 98.0, 100.0]);
    // 100 − 3 tickets − 1 archives − 3 recorder
    assert_eq!(a.year_end_score, Some(93.0));
    // +2 +1 +0.37 −1
    assert_eq!(a.bonus, Some(2.37));
    // 99 × 0.4 + 93 × 0.6 + 2.37 = 39.6 + 55.8 + 2.37
    assert_eq!(a.score, Some(97.77));
    assert!(find(a, "bonus.media_city").points > 0.0);
    // The quarter shows its bonus beside its score.
    let q2 = one(u, "2026-Q2", Figures::default(), &ledger);
    assert_eq!((q2.score, q2.bonus), (Some(100.0), Some(3.0)));
}

#[test]
fn a_case_entered_as_bad_impact_leaves_the_city_found_list() {
    let q3 = period("2026-Q3");
    let u = "hg-zfzd";
    let reports = vec![
        report(
            1,
            "c1",
            "hg",
            &q3,
            "city.illegal_construction",
            "city_supervision",
        ),
        report(
            2,
            "c2",
            "hg",
            &q3,
            "city.illegal_construction",
            "city_supervision",
        ),
        report(3, "c3", "hg", &q3, "city.illegal_construction", "patrol"),
    ];
    let mut log = Log::default();
    let bad = log.record(
        u,
        "2026-08",
        "bonus.city_found_bad_impact",
        Some(1),
        None,
        "hg",
        &["c2"],
    );
    let t = table(&q3, vec![(u, Figures::default())]);
    let a = &appraise(
        default_profile(),
        &demo(),
        &q3,
        &t,
        &AreaReport::from_rows(&reports),
        &log.ledger(),
    )[0];
    assert_eq!(
        rules(a),
        vec![
            ("bonus.city_found", 1, -0.1),
            ("bonus.city_found_bad_impact", 1, -0.2),
        ]
    );
    assert_eq!(tickets(find(a, "bonus.city_found")), [ev("c1", 1)]);
    assert_eq!(entries(find(a, "bonus.city_found_bad_impact")), [bad]);
    assert_eq!((a.score, a.bonus), (Some(100.0), Some(-0.3)));
}
