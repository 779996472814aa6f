use super::*;

/// A profile reads the lists its rules count, the rates' shortfalls included,
/// and not the others.
#[test]
fn a_profile_reads_the_lists_its_rules_use() {
    use crate::projections::daily::{EVIDENCE_LISTS, Lists};
    let profiles = builtin().expect("the shipped profiles are valid");
    let default = profiles.get(DEFAULT).expect("the default profile");
    let lists = default.stored_lists();
    // It reads every list but these (`EVIDENCE_LISTS` names all nine).
    let unread: Vec<&str> = EVIDENCE_LISTS
        .iter()
        .enumerate()
        .filter(|(i, _)| !lists.has(*i))
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(unread, ["feedback_basic", "returned", "extension_approved"]);
    let strict = Profile {
        satisfaction_strict: true,
        ..default.clone()
    };
    assert_eq!(strict.stored_lists(), lists.with("feedback_basic"));
    assert_ne!(lists, Lists::ALL);
}

/// A rate's shortfall is the union of the lists `shortfall_lists` names.
#[test]
fn shortfalls_come_from_the_lists_they_name() {
    let item = |n: u128| Evidence {
        ticket: uuid::Uuid::from_u128(n),
        position: n as i64,
    };
    let f = Figures {
        late_signs: vec![item(1)],
        not_on_time: vec![item(2)],
        feedback_unsatisfied: vec![item(3), item(5)],
        feedback_basic: vec![item(4)],
        ..Figures::default()
    };
    for m in [
        RateMetric::OnTimeRate,
        RateMetric::SignedOnTimeRate,
        RateMetric::SatisfactionRate,
    ] {
        for strict in [false, true] {
            let mut want: Vec<Evidence> = m
                .shortfall_lists(strict)
                .iter()
                .flat_map(|l| l.evidence(&f).iter().copied())
                .collect();
            want.sort();
            assert_eq!(m.shortfall(&f, strict), want);
            assert_eq!(m.shortfall_len(&f, strict), want.len());
        }
    }
}
use serde_json::{Value, json};

fn minimal() -> Value {
    json!({
        "name": "t",
        "title": "T",
        "base": 100,
        "sections": [{
            "name": "s",
            "applies_to": {"kinds": ["department", "agency"]},
            "rules": [{"rule": "late_sign", "metric": "late_signs", "points_each": -0.5, "cap": 5}]
        }]
    })
}

fn parse(v: &Value) -> Result<Profile, ProfileError> {
    parse_profile(&v.to_string(), "test.json")
}

fn field_of(v: Value) -> String {
    let e = parse(&v).expect_err("the profile is refused");
    assert!(!e.message.is_empty());
    e.field
}

#[test]
fn the_shipped_profiles_parse() {
    let ps = builtin().expect("the shipped profiles are valid");
    assert_eq!(ps.names(), vec![DEFAULT, "beijing-three-rates"]);
    let d = ps.get(DEFAULT).expect("default");
    assert_eq!(d.base, 100.0);
    assert_eq!(
        d.yearly,
        Some(Yearly {
            quarter_weight: 0.4,
            year_end_weight: 0.6
        })
    );
    assert_eq!(d.weights.and_then(|w| w.of(UnitKind::Agency)), Some(0.6));
    assert!(
        d.sections
            .iter()
            .any(|s| s.name == "supervision" && s.cap == Some(20.0))
    );
    let b = ps.get("beijing-three-rates").expect("beijing");
    let weights: f64 = b.sections[0]
        .rules
        .iter()
        .map(|r| match r.how {
            How::RateWeight { weight, .. } => weight,
            _ => 0.0,
        })
        .sum();
    assert_eq!(weights, b.base);
}

#[test]
fn a_minimal_profile_parses_with_each_as_the_default_kind() {
    let p = parse(&minimal()).expect("valid");
    assert_eq!(
        p.sections[0].rules[0].how,
        How::Each {
            metric: EvidenceMetric::LateSigns,
            points_each: -0.5
        }
    );
    assert_eq!(p.sections[0].rules[0].cap, Some(5.0));
    assert_eq!(p.yearly, None);
}

#[test]
fn a_bad_profile_names_the_field() {
    // One key set in the minimal profile, under the object at a JSON pointer, and
    // the field the error names.
    const RULE: &str = "/sections/0/rules/0";
    const APPLIES: &str = "/sections/0/applies_to";
    for (at, key, value, field) in [
        ("", "colour", json!("red"), "colour"),
        (
            RULE,
            "metric",
            json!("late_sings"),
            "sections[0].rules[0].metric",
        ),
        (
            RULE,
            "metric",
            json!("on_time_rate"),
            "sections[0].rules[0].metric",
        ),
        (
            RULE,
            "points_each",
            json!(1),
            "sections[0].rules[0].points_each",
        ),
        (RULE, "step", json!(0.05), "sections[0].rules[0].step"),
        (
            RULE,
            "kind",
            json!("sometimes"),
            "sections[0].rules[0].kind",
        ),
        (RULE, "unknown", json!(1), "sections[0].rules[0].unknown"),
        (
            APPLIES,
            "kinds",
            json!(["grid"]),
            "sections[0].applies_to.kinds[0]",
        ),
        (
            APPLIES,
            "agency_types",
            json!(["bakery"]),
            "sections[0].applies_to.agency_types[0]",
        ),
        ("/sections/0", "cap", json!(-1), "sections[0].cap"),
        (
            "",
            "yearly",
            json!({"quarter_weight": 0.5, "year_end_weight": 0.6}),
            "yearly",
        ),
        ("", "name", json!("Has Spaces"), "name"),
    ] {
        let mut v = minimal();
        v.pointer_mut(at).expect("in the minimal profile")[key] = value;
        assert_eq!(field_of(v), field, "{at}/{key}");
    }

    let mut v = minimal();
    v.as_object_mut().expect("object").remove("base");
    assert_eq!(field_of(v), "base");

    let mut v = minimal();
    v["sections"][0]["rules"][0]["kind"] = json!("rate_steps");
    v["sections"][0]["rules"][0]["metric"] = json!("on_time_rate");
    v["sections"][0]["rules"][0]
        .as_object_mut()
        .expect("object")
        .remove("points_each");
    assert_eq!(field_of(v), "sections[0].rules[0].step");

    let mut v = minimal();
    let rule = v["sections"][0]["rules"][0].clone();
    v["sections"][0]["rules"]
        .as_array_mut()
        .expect("array")
        .push(rule);
    assert_eq!(field_of(v), "sections[0].rules[1].rule");

    let mut v = minimal();
    v["sections"][0]["rules"][0] = json!({"rule": "x", "kind": "area_reports", "categories": ["city.a"], "source": "fax", "points_each": -1});
    assert_eq!(field_of(v), "sections[0].rules[0].source");
}

#[test]
fn the_error_reads_with_file_and_field() {
    let mut v = minimal();
    v["sections"][0]["rules"][0]["metric"] = json!("nope");
    let e = parse(&v).expect_err("refused");
    let s = e.to_string();
    assert!(
        s.starts_with("appraisal profile test.json: sections[0].rules[0].metric: "),
        "{s}"
    );
}

#[test]
fn sections_apply_by_kind_and_agency_type() {
    let s = Section {
        name: "s".into(),
        title: None,
        kinds: vec![UnitKind::Agency],
        agency_types: Some(vec!["market".into()]),
        cap: None,
        rules: vec![],
    };
    assert!(s.applies(UnitKind::Agency, Some("market")));
    assert!(!s.applies(UnitKind::Agency, Some("enforcement")));
    assert!(!s.applies(UnitKind::Agency, None));
    assert!(!s.applies(UnitKind::Department, None));
}
