//! The pure scoring: figures in, deductions with evidence out.

use super::profile::{DEFAULT, builtin, parse_profile};
use super::*;
use crate::org::model::demo;
use crate::projections::stats::model::OccurrenceRow;

/// A ticket id named by a short name, ordered as the names are (the name's bytes,
/// padded with zeros).
fn tid(name: &str) -> uuid::Uuid {
    let mut b = [0u8; 16];
    b[..name.len()].copy_from_slice(name.as_bytes());
    uuid::Uuid::from_bytes(b)
}

fn ev(ticket: &str, position: i64) -> Evidence {
    Evidence {
        ticket: tid(ticket),
        position,
    }
}

fn evs(n: usize, prefix: &str) -> Vec<Evidence> {
    (0..n)
        .map(|i| ev(&format!("{prefix}{i}"), i as i64 + 1))
        .collect()
}

fn period(s: &str) -> Period {
    Period::parse(s).expect("a period")
}

fn default_profile() -> &'static Profile {
    builtin().expect("valid").get(DEFAULT).expect("default")
}

fn beijing() -> &'static Profile {
    builtin()
        .expect("valid")
        .get("beijing-three-rates")
        .expect("beijing")
}

/// A one-period table of these units' figures.
fn table(p: &Period, cells: Vec<(&str, Figures)>) -> Table {
    Table {
        units: cells.iter().map(|(u, _)| u.to_string()).collect(),
        periods: vec![p.clone()],
        cells: cells.into_iter().map(|(_, f)| f).collect(),
    }
}

fn report(
    position: i64,
    ticket: &str,
    area: &str,
    at: &Period,
    category: &str,
    source: &str,
) -> OccurrenceRow {
    OccurrenceRow {
        position,
        kind: "accepted".into(),
        ticket: tid(ticket).to_string(),
        unit: area.into(),
        at: at.start.timestamp_micros() + 3_600_000_000,
        category: category.into(),
        source: source.into(),
    }
}

fn rules(a: &UnitAppraisal) -> Vec<(&str, u64, f64)> {
    a.deductions
        .iter()
        .map(|d| (d.rule.as_str(), d.count, d.points))
        .collect()
}

fn find<'a>(a: &'a UnitAppraisal, rule: &str) -> &'a Deduction {
    a.deductions
        .iter()
        .find(|d| d.rule == rule)
        .unwrap_or_else(|| panic!("no deduction {rule} in {:?}", rules(a)))
}

fn tickets(d: &Deduction) -> &[Evidence] {
    &d.evidence.tickets
}

/// One unit's appraisal for 2026-Q3 by `profile`, from its figures alone.
fn appraise_q3(profile: &Profile, unit: &str, f: Figures) -> UnitAppraisal {
    let q3 = period("2026-Q3");
    let t = table(&q3, vec![(unit, f)]);
    appraise(profile, &demo(), &q3, &t, &[], &Ledger::default()).remove(0)
}

#[test]
fn an_enforcement_squad_loses_points_rule_by_rule_with_evidence() {
    let org = demo();
    let q3 = period("2026-Q3");
    let f = Figures {
        due_to_sign: 20,
        signed_on_time: 8,
        late_signs: evs(12, "s"),
        due_to_finish: 10,
        handled_on_time: 8,
        not_on_time: vec![ev("n1", 40), ev("n2", 41)],
        late_completions: vec![ev("n1", 40)],
        verification_failed: vec![ev("v1", 50)],
        supervised_repeat: vec![ev("r1", 60)],
        satisfied: 18,
        unsatisfied: 2,
        feedback_unsatisfied: vec![ev("u1", 70), ev("u2", 71)],
        ..Figures::default()
    };
    let q2 = period("2026-Q2");
    let reports = vec![
        report(100, "g1", "hg", &q3, "city.exposed_garbage", "grid"),
        report(101, "g2", "hg", &q3, "city.exposed_garbage", "hotline"),
        report(102, "g3", "fl", &q3, "city.exposed_garbage", "grid"),
        report(103, "g4", "hg", &q3, "city.road_spillage", "grid"),
        report(
            104,
            "g5",
            "hg",
            &q3,
            "city.illegal_construction",
            "city_supervision",
        ),
        report(105, "g6", "hg", &q2, "city.exposed_garbage", "grid"),
        report(106, "g7", "hg", &q3, "city.kitchen_waste", "grid"),
        report(107, "g8", "hg", &q3, "city.illegal_construction", "grid"),
    ];
    let t = table(&q3, vec![("hg-zfzd", f)]);
    let out = appraise(
        default_profile(),
        &org,
        &q3,
        &t,
        &AreaReport::from_rows(&reports),
        &Ledger::default(),
    );
    assert_eq!(out.len(), 1);
    let a = &out[0];
    assert_eq!(a.unit, "hg-zfzd");
    assert_eq!(a.kind, "agency");
    assert_eq!(a.sheet.as_deref(), Some("enforcement"));
    assert_eq!(a.agency_type.as_deref(), Some("enforcement"));
    assert_eq!(a.weight, Some(0.6));
    assert_eq!(
        rules(a),
        vec![
            ("team.satisfaction", 2, -3.0),
            ("supervision.late_completion", 1, -1.0),
            ("supervision.quality_failure", 1, -1.0),
            ("supervision.repeated", 1, -2.0),
            ("regulation.late_registration", 12, -5.0),
            ("regulation.on_time_rate", 2, -4.0),
            ("appearance.street", 1, -0.5),
            ("appearance.road", 1, -0.5),
            ("bonus.city_found", 1, -0.1),
        ]
    );
    assert_eq!(a.score, Some(83.0), "the bonus is not added to a quarter");
    assert_eq!(a.bonus, Some(-0.1));
    assert!(a.deductions.iter().all(|d| !d.manual));
    let sign = find(a, "regulation.late_registration");
    assert!(sign.capped);
    assert_eq!(sign.uncapped_points, Some(-6.0));
    assert_eq!(
        sign.evidence.len(),
        12,
        "a cap keeps every piece of evidence"
    );
    let rate = find(a, "regulation.on_time_rate");
    assert_eq!(rate.rate, Some(0.8));
    assert_eq!(tickets(rate), [ev("n1", 40), ev("n2", 41)]);
    assert!(!rate.capped);
    assert_eq!(find(a, "team.satisfaction").rate, Some(0.9));
    assert_eq!(tickets(find(a, "appearance.street")), [ev("g1", 100)]);
    assert_eq!(tickets(find(a, "appearance.road")), [ev("g4", 103)]);
    assert_eq!(
        tickets(find(a, "bonus.city_found")),
        [ev("g5", 104)],
        "only what the city found counts"
    );
    assert_eq!(find(a, "supervision.repeated").section, "supervision");
    assert_eq!(find(a, "bonus.city_found").section, "bonus");
}

#[test]
fn the_supervision_section_caps_at_20_and_keeps_the_evidence() {
    let f = Figures {
        late_completions: evs(15, "l"),
        verification_failed: evs(5, "v"),
        supervised_repeat: evs(3, "r"),
        ..Figures::default()
    };
    let a = &appraise_q3(default_profile(), "hg-zfzd", f);
    assert_eq!(
        rules(a),
        vec![
            ("supervision.late_completion", 15, -15.0),
            ("supervision.quality_failure", 5, -5.0),
            ("supervision.repeated", 3, 0.0),
        ]
    );
    assert!(a.deductions.iter().all(|d| d.capped));
    assert_eq!(find(a, "supervision.late_completion").uncapped_points, None);
    assert_eq!(find(a, "supervision.repeated").uncapped_points, Some(-6.0));
    assert_eq!(find(a, "supervision.repeated").evidence.len(), 3);
    assert_eq!(a.score, Some(80.0));
}

#[test]
fn a_section_cap_can_cut_a_rule_partway() {
    let f = Figures {
        late_completions: evs(18, "l"),
        supervised_repeat: evs(2, "r"),
        ..Figures::default()
    };
    let a = &appraise_q3(default_profile(), "hg-zfzd", f);
    assert_eq!(
        rules(a),
        vec![
            ("supervision.late_completion", 18, -18.0),
            ("supervision.repeated", 2, -2.0)
        ]
    );
    assert_eq!(find(a, "supervision.repeated").uncapped_points, Some(-4.0));
    assert_eq!(a.score, Some(80.0));
}

#[test]
fn a_ticket_supervised_three_times_is_one_case_of_repeated_supervision() {
    // The second and third supervision of t1 are both repeats: one case, −2.
    let f = Figures {
        supervised_repeat: vec![ev("t1", 20), ev("t1", 30)],
        ..Figures::default()
    };
    let a = &appraise_q3(default_profile(), "hg-zfzd", f);
    assert_eq!(rules(a), vec![("supervision.repeated", 1, -2.0)]);
    assert_eq!(
        tickets(find(a, "supervision.repeated")),
        [ev("t1", 20), ev("t1", 30)],
        "both events are evidence"
    );
    assert_eq!(a.score, Some(98.0));
}

#[test]
fn rate_steps_count_full_steps_only() {
    let at = |on_time: u64, due: u64| {
        let f = Figures {
            due_to_finish: due,
            handled_on_time: on_time,
            not_on_time: evs((due - on_time) as usize, "n"),
            ..Figures::default()
        };
        appraise_q3(default_profile(), "hg-zfzd", f)
            .deductions
            .into_iter()
            .find(|d| d.rule == "regulation.on_time_rate")
            .map(|d| d.points)
    };
    assert_eq!(at(20, 20), None, "100%: nothing");
    assert_eq!(at(19, 20), Some(-1.0), "exactly 95%: one full step");
    assert_eq!(at(1999, 2100), None, "95.19%: less than a full step");
    assert_eq!(at(9, 10), Some(-2.0));
    assert_eq!(at(2, 3), Some(-5.0), "66.67%: six steps, capped at 5");
    assert_eq!(at(0, 0), None, "nothing due: nothing deducted");
}

#[test]
fn a_unit_with_nothing_keeps_the_base() {
    let a = &appraise_q3(default_profile(), "hg-scjgs", Figures::default());
    assert_eq!(a.score, Some(100.0));
    assert_eq!(a.base, Some(100.0));
    assert_eq!(a.bonus, Some(0.0));
    assert!(a.deductions.is_empty());
    assert_eq!(a.quarters, None);
    assert_eq!(a.year_end_score, None);
    assert_eq!(a.reference, None);
}

#[test]
fn a_market_office_with_one_late_ticket_loses_exactly_2_points() {
    // Signed late, finished late: the on-time rate is 0 and the sign rate too,
    // but the market office's sheet has only 业务工作's −2 per case.
    let f = Figures {
        due_to_sign: 1,
        late_signs: vec![ev("t1", 10)],
        due_to_finish: 1,
        not_on_time: vec![ev("t1", 30)],
        late_completions: vec![ev("t1", 30)],
        satisfied: 0,
        unsatisfied: 1,
        feedback_unsatisfied: vec![ev("t1", 40)],
        ..Figures::default()
    };
    let a = &appraise_q3(default_profile(), "hg-scjgs", f);
    assert_eq!(a.sheet.as_deref(), Some("market"));
    assert_eq!(rules(a), vec![("business.delayed_or_substandard", 1, -2.0)]);
    assert_eq!(a.score, Some(98.0));
}

#[test]
fn a_market_agency_loses_2_per_delayed_or_substandard_ticket_once() {
    let org = demo();
    let q3 = period("2026-Q3");
    let f = Figures {
        late_completions: vec![ev("t1", 10), ev("t3", 30)],
        verification_failed: vec![ev("t1", 12), ev("t2", 20)],
        ..Figures::default()
    };
    let reports = vec![report(1, "g1", "hg", &q3, "city.exposed_garbage", "grid")];
    let t = table(&q3, vec![("hg-scjgs", f.clone()), ("hg-pcs", f)]);
    let out = appraise(
        default_profile(),
        &org,
        &q3,
        &t,
        &AreaReport::from_rows(&reports),
        &Ledger::default(),
    );
    let market = &out[0];
    let d = find(market, "business.delayed_or_substandard");
    assert_eq!((d.count, d.points), (3, -6.0));
    assert_eq!(d.section, "business");
    assert_eq!(
        tickets(d),
        [ev("t1", 10), ev("t1", 12), ev("t2", 20), ev("t3", 30)]
    );
    assert_eq!(
        market.deductions.len(),
        1,
        "容貌管理 is the enforcement squad's"
    );
    assert_eq!(market.score, Some(94.0));
    // A police station has no sheet under 49号: statistics only.
    let police = &out[1];
    assert_eq!(police.sheet, None);
    assert_eq!(
        (police.score, police.base, police.weight),
        (None, None, None)
    );
    assert!(police.deductions.is_empty());
}

#[test]
fn satisfaction_counts_basic_as_satisfied_unless_strict() {
    let f = Figures {
        satisfied: 18,
        basically_satisfied: 2,
        feedback_basic: vec![ev("b1", 1), ev("b2", 2)],
        ..Figures::default()
    };
    assert!(
        appraise_q3(default_profile(), "hg-zfzd", f.clone())
            .deductions
            .is_empty()
    );
    let mut strict = default_profile().clone();
    strict.satisfaction_strict = true;
    let a = &appraise_q3(&strict, "hg-zfzd", f);
    let d = find(a, "team.satisfaction");
    assert_eq!((d.count, d.points, d.rate), (2, -3.0, Some(0.9)));
    assert_eq!(tickets(d), [ev("b1", 1), ev("b2", 2)]);
}

#[test]
fn beijing_three_rates_weigh_30_35_35() {
    let org = demo();
    let q3 = period("2026-Q3");
    let f = Figures {
        due_to_sign: 10,
        signed_on_time: 9,
        late_signs: vec![ev("s1", 5)],
        due_to_finish: 10,
        handled_on_time: 7,
        not_on_time: evs(3, "n"),
        satisfied: 8,
        unsatisfied: 2,
        feedback_unsatisfied: vec![ev("u1", 7), ev("u2", 8)],
        ..Figures::default()
    };
    let perfect = Figures {
        due_to_sign: 3,
        signed_on_time: 3,
        due_to_finish: 3,
        handled_on_time: 3,
        satisfied: 3,
        ..Figures::default()
    };
    let t = table(&q3, vec![("zhzf", f), ("scjg", perfect)]);
    let out = appraise(beijing(), &org, &q3, &t, &[], &Ledger::default());
    assert_eq!(
        rules(&out[0]),
        vec![
            ("three_rates_response", 1, -3.0),
            ("three_rates_resolution", 3, -10.5),
            ("three_rates_satisfaction", 2, -7.0),
        ]
    );
    assert_eq!(
        tickets(find(&out[0], "three_rates_response")),
        [ev("s1", 5)]
    );
    assert_eq!(out[0].score, Some(79.5));
    assert_eq!(out[0].weight, None, "the Beijing profile gives no weights");
    assert_eq!(out[1].score, Some(100.0));
    assert!(out[1].deductions.is_empty());
}

#[test]
fn a_year_is_the_quarter_mean_times_40_plus_the_year_end_times_60() {
    let org = demo();
    let year = period("2026");
    let quarters: Vec<Period> = year.quarters().into_iter().take(3).collect();
    let q3_figures = Figures {
        late_completions: evs(5, "l"),
        ..Figures::default()
    };
    let year_figures = Figures {
        late_completions: evs(6, "l"),
        ..Figures::default()
    };
    let mut periods = quarters.clone();
    periods.push(year.clone());
    let t = Table {
        units: vec!["hg-zfzd".into()],
        periods,
        cells: vec![
            Figures::default(),
            Figures {
                late_completions: evs(1, "x"),
                ..Figures::default()
            },
            q3_figures,
            year_figures,
        ],
    };
    let a = &appraise(default_profile(), &org, &year, &t, &[], &Ledger::default())[0];
    let qs: Vec<(&str, f64)> = a
        .quarters
        .as_ref()
        .expect("quarters")
        .iter()
        .map(|q| (q.period.as_str(), q.score))
        .collect();
    assert_eq!(
        qs,
        vec![("2026-Q1", 100.0), ("2026-Q2", 99.0), ("2026-Q3", 95.0)]
    );
    assert_eq!(a.year_end_score, Some(94.0));
    assert_eq!(a.bonus, Some(0.0));
    // (100 + 99 + 95) / 3 × 0.4 + 94 × 0.6 = 39.2 + 56.4
    assert_eq!(a.score, Some(95.6));
    assert_eq!(rules(a), vec![("supervision.late_completion", 6, -6.0)]);
}

#[test]
fn a_year_without_a_yearly_rule_is_its_year_end_score() {
    let org = demo();
    let year = period("2026");
    let f = Figures {
        due_to_finish: 10,
        handled_on_time: 9,
        not_on_time: evs(1, "n"),
        ..Figures::default()
    };
    let t = table(&year, vec![("zhzf", f)]);
    let a = &appraise(beijing(), &org, &year, &t, &[], &Ledger::default())[0];
    assert_eq!(a.score, Some(96.5));
    assert_eq!(a.quarters, None);
}

#[test]
fn a_score_never_falls_below_zero() {
    let org = demo();
    let q3 = period("2026-Q3");
    let p = parse_profile(
        r#"{"name": "harsh", "title": "Harsh", "sheets": [{"name": "d", "title": "D",
            "applies_to": {"kinds": ["department"]}, "base": 10,
            "sections": [{"name": "s", "title": "S", "points": 100, "items": [
                {"code": "late", "title": "late",
                 "rule": {"metric": "late_completions", "points_each": -4}}]}]}]}"#,
        "harsh.json",
    )
    .expect("valid");
    let f = Figures {
        late_completions: evs(3, "l"),
        ..Figures::default()
    };
    let t = table(&q3, vec![("zhzf", f.clone()), ("hg-zfzd", f)]);
    let out = appraise(&p, &org, &q3, &t, &[], &Ledger::default());
    assert_eq!(out[0].score, Some(0.0));
    assert_eq!(rules(&out[0]), vec![("late", 3, -12.0)]);
    assert_eq!(out[1].score, None, "the sheet applies to departments only");
}

#[test]
fn join_puts_periods_side_by_side() {
    let q1 = period("2026-Q1");
    let q2 = period("2026-Q2");
    let y = period("2026");
    let f = |n: u64| Figures {
        received: n,
        ..Figures::default()
    };
    let a = Table {
        units: vec!["a".into(), "b".into()],
        periods: vec![q1.clone(), q2.clone()],
        cells: vec![f(1), f(2), f(3), f(4)],
    };
    let b = Table {
        units: vec!["a".into(), "b".into()],
        periods: vec![y.clone()],
        cells: vec![f(10), f(30)],
    };
    let t = join(a, b);
    assert_eq!(t.periods, vec![q1, q2, y]);
    let got: Vec<u64> = (0..2)
        .flat_map(|u| (0..3).map(move |p| (u, p)))
        .map(|(u, p)| t.get(u, p).received)
        .collect();
    assert_eq!(got, vec![1, 2, 10, 3, 4, 30]);
}

#[test]
fn appraised_units_are_departments_and_agencies_in_org_order() {
    let org = demo();
    let hg = appraised_units(&org, "hg");
    assert_eq!(
        hg,
        vec!["hg-sfs", "hg-zfzd", "hg-scjgs", "hg-pcs", "hg-ajb"]
    );
    let all = appraised_units(&org, "etdz");
    assert_eq!(all.len(), 13 + 30);
    assert_eq!(all[0], "zhzf");
    assert_eq!(appraised_units(&org, "hg-zfzd"), vec!["hg-zfzd"]);
    assert!(appraised_units(&org, "hg-01-g01").is_empty());
}

mod merging {
    use super::super::score::{area_runs, union_len};
    use super::*;
    use proptest::prelude::*;

    fn item() -> impl Strategy<Value = Evidence> {
        // Few tickets and positions: repeats across lists are common.
        (0u128..6, 0i64..6).prop_map(|(t, position)| Evidence {
            ticket: uuid::Uuid::from_u128(t << 64 | t),
            position,
        })
    }

    fn sorted_set(v: Vec<Evidence>) -> Vec<Evidence> {
        let mut v = v;
        v.sort();
        v.dedup();
        v
    }

    proptest! {
        /// The count of sorted lists' union: as many as sorting them all together
        /// and dropping repeats leaves, for few lists and for many.
        #[test]
        fn union_len_counts_each_item_once(
            lists in prop::collection::vec(prop::collection::vec(item(), 0..12), 0..24)
        ) {
            let lists: Vec<Vec<Evidence>> = lists.into_iter().map(sorted_set).collect();
            let want = sorted_set(lists.concat()).len();
            prop_assert_eq!(union_len(lists.iter().map(Vec::as_slice)), want);
        }

        /// Merged per instant: each run the union of that instant's lists of the
        /// rule's categories and source, the instants in order.
        #[test]
        fn area_runs_merge_the_rule_reports_of_each_instant(
            reports in prop::collection::vec(
                (0i64..4, 0usize..3, any::<bool>(), prop::collection::vec(item(), 0..8)),
                0..16,
            )
        ) {
            let reports: Vec<AreaReport> = reports
                .into_iter()
                .map(|(at, cat, grid, items)| AreaReport {
                    unit: "t".into(),
                    at,
                    source: if grid { "grid" } else { "hotline" }.into(),
                    category: format!("c{cat}"),
                    items: sorted_set(items),
                })
                .collect();
            let refs: Vec<&AreaReport> = reports.iter().collect();
            let categories = vec!["c0".to_string(), "c2".to_string()];
            let got = area_runs(&refs, &categories, Some("grid"));
            let mut want: Vec<(i64, Vec<Evidence>)> = Vec::new();
            for at in 0..4 {
                let items: Vec<Evidence> = reports
                    .iter()
                    .filter(|o| o.at == at && o.source == "grid" && o.category != "c1")
                    .flat_map(|o| o.items.clone())
                    .collect();
                if reports.iter().any(|o| o.at == at && o.source == "grid" && o.category != "c1") {
                    want.push((at, sorted_set(items)));
                }
            }
            prop_assert_eq!(got, want);
        }
    }
}

mod sheets;
