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
        "sheets": [{
            "name": "all",
            "title": "All",
            "applies_to": {"kinds": ["department", "agency"]},
            "base": 100,
            "sections": [{
                "name": "s",
                "title": "S",
                "points": 20,
                "groups": [{"name": "g", "cap": 5}],
                "items": [
                    {"code": "s.late_sign", "title": "late", "cap": 5, "group": "g",
                     "rule": {"metric": "late_signs", "points_each": -0.5}},
                    {"code": "s.found", "title": "found", "manual": {"points_each": -2}}
                ]
            }, {
                "name": "b",
                "title": "B",
                "bonus": true,
                "items": [
                    {"code": "b.media", "title": "media", "manual": {"points_each": 2}},
                    {"code": "b.area", "title": "area", "manual": {"min": 0, "max": 2}}
                ]
            }]
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

fn code_points(sheet: &Sheet) -> Vec<(&str, String)> {
    sheet
        .sections
        .iter()
        .flat_map(|s| &s.items)
        .map(|i| {
            let how = match &i.how {
                ItemHow::Rule(h) => h.kind().to_string(),
                ItemHow::Counted { points_each } => format!("{points_each}"),
                ItemHow::Free { min, max } => format!("{min}..{max}"),
            };
            (i.code.as_str(), how)
        })
        .collect()
}

#[test]
fn the_shipped_profiles_parse() {
    let ps = builtin().expect("the shipped profiles are valid");
    assert_eq!(ps.names(), vec![DEFAULT, "beijing-three-rates"]);
    let d = ps.get(DEFAULT).expect("default");
    let names: Vec<&str> = d.sheets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["department", "judicial", "enforcement", "market"]);
    let yearly = Some(Yearly {
        quarter_weight: 0.4,
        year_end_weight: 0.6,
    });
    for s in &d.sheets {
        // Every counted section's full points add up to the base.
        let total: f64 = s
            .sections
            .iter()
            .filter(|x| !x.bonus && !x.reference)
            .filter_map(|x| x.points)
            .sum();
        assert_eq!(total, s.base, "sheet {}", s.name);
        assert!(s.sections.iter().all(|x| x.source.is_some()), "{}", s.name);
        if s.name == "department" {
            assert_eq!((s.base, s.weight, s.yearly), (30.0, Some(0.3), None));
            assert_eq!(s.mean_of.as_deref(), Some("township_evaluation"));
        } else {
            assert_eq!((s.base, s.weight, s.yearly), (100.0, Some(0.6), yearly));
        }
    }
    let sheet = |n: &str| d.sheet(n).expect("a sheet");
    // The judicial sheet is entered by people only.
    assert!(
        sheet("judicial")
            .sections
            .iter()
            .flat_map(|s| &s.items)
            .all(Item::is_manual)
    );
    // The market office: one rule from tickets, 业务工作, per case, cap 30.
    let market = sheet("market");
    let rules: Vec<(&str, String)> = code_points(market)
        .into_iter()
        .filter(|(_, h)| h == "tickets" || h.starts_with("rate") || h == "each")
        .collect();
    assert_eq!(
        rules,
        [("business.delayed_or_substandard", "tickets".to_string())]
    );
    assert_eq!(
        market
            .item("business.delayed_or_substandard")
            .map(|(s, _)| s.points),
        Some(Some(30.0))
    );
    // The squad: 督查督办 per case, capped at 20; 恶劣影响 entered, the city's
    // finds computed without the tickets entered there.
    let squad = sheet("enforcement");
    let (sup, late) = squad
        .item("supervision.repeated")
        .expect("repeated supervision");
    assert_eq!(sup.points, Some(20.0));
    assert_eq!(
        late.how,
        ItemHow::Rule(How::Tickets {
            metrics: vec![EvidenceMetric::SupervisedRepeat],
            points_each: -2.0
        })
    );
    let (bonus, city) = squad.item("bonus.city_found").expect("city finds");
    assert!(bonus.bonus);
    assert_eq!(
        city.except_tickets_of.as_deref(),
        Some("bonus.city_found_bad_impact")
    );
    assert!(matches!(
        &city.how,
        ItemHow::Rule(How::AreaReports { source: Some(s), .. }) if s == "city_supervision"
    ));
    let (_, media) = squad.item("bonus.media_city").expect("media");
    assert_eq!(media.how, ItemHow::Counted { points_each: 2.0 });
    let (_, ev) = sheet("department")
        .item("township_evaluation")
        .expect("the evaluation");
    assert_eq!(
        ev.how,
        ItemHow::Free {
            min: 0.0,
            max: 30.0
        }
    );
    assert!(ev.year_only && ev.is_manual());
    let org = crate::org::model::demo();
    let of = |u: &str| d.sheet_for(&org, u).map(|s| s.name.as_str());
    assert_eq!(of("zhzf"), Some("department"));
    assert_eq!(of("hg-sfs"), Some("judicial"));
    assert_eq!(of("hg-zfzd"), Some("enforcement"));
    assert_eq!(of("hg-scjgs"), Some("market"));
    assert_eq!(of("hg-pcs"), None, "派出所: no sheet under 49号");
    assert_eq!(of("hg-ajb"), None, "a township's own office: no sheet");
    assert_eq!(of("hg"), None);

    let b = ps.get("beijing-three-rates").expect("beijing");
    assert_eq!(b.sheets.len(), 1);
    let weights: f64 = b.sheets[0].sections[0]
        .items
        .iter()
        .map(|i| match i.how {
            ItemHow::Rule(How::RateWeight { weight, .. }) => weight,
            _ => 0.0,
        })
        .sum();
    assert_eq!(weights, b.sheets[0].base);
    assert!(b.description.contains("Illustrative"));
    assert_eq!(b.sheet_for(&org, "hg-pcs").map(|s| s.base), Some(100.0));
}

#[test]
fn a_minimal_profile_parses_with_each_as_the_default_kind() {
    let p = parse(&minimal()).expect("valid");
    let s = &p.sheets[0];
    let (sec, i) = s.item("s.late_sign").expect("the rule");
    assert_eq!(
        i.how,
        ItemHow::Rule(How::Each {
            metric: EvidenceMetric::LateSigns,
            points_each: -0.5
        })
    );
    assert_eq!((i.cap, i.group.as_deref()), (Some(5.0), Some("g")));
    assert_eq!(sec.group("g").map(|g| g.cap), Some(5.0));
    assert!(!i.is_manual());
    let (_, found) = s.item("s.found").expect("manual");
    assert!(found.is_manual() && !found.year_only);
    assert_eq!(s.yearly, None);
    assert_eq!(s.item("nope"), None);
}

#[test]
fn a_bad_profile_names_the_field() {
    // One key set in the minimal profile, under the object at a JSON pointer, and
    // the field the error names.
    const SHEET: &str = "/sheets/0";
    const SEC: &str = "/sheets/0/sections/0";
    const RULE: &str = "/sheets/0/sections/0/items/0/rule";
    const MANUAL: &str = "/sheets/0/sections/0/items/1/manual";
    const ITEM: &str = "/sheets/0/sections/0/items/1";
    const APPLIES: &str = "/sheets/0/applies_to";
    let r = "sheets[0].sections[0].items[0].rule";
    for (at, key, value, field) in [
        ("", "colour", json!("red"), "colour".to_string()),
        (RULE, "metric", json!("late_sings"), format!("{r}.metric")),
        (RULE, "metric", json!("on_time_rate"), format!("{r}.metric")),
        (RULE, "points_each", json!(1), format!("{r}.points_each")),
        (RULE, "step", json!(0.05), format!("{r}.step")),
        (RULE, "kind", json!("sometimes"), format!("{r}.kind")),
        (RULE, "unknown", json!(1), format!("{r}.unknown")),
        (RULE, "cap", json!(5), format!("{r}.cap")),
        (
            MANUAL,
            "points_each",
            json!(3),
            "sheets[0].sections[0].items[1].manual.points_each".into(),
        ),
        (
            MANUAL,
            "min",
            json!(0),
            "sheets[0].sections[0].items[1].manual.min".into(),
        ),
        (
            ITEM,
            "code",
            json!("s.late_sign"),
            "sheets[0].sections[0].items[1].code".into(),
        ),
        (
            ITEM,
            "group",
            json!("nope"),
            "sheets[0].sections[0].items[1].group".into(),
        ),
        (
            ITEM,
            "rule",
            json!({"metric": "late_signs", "points_each": -1}),
            "sheets[0].sections[0].items[1].rule".into(),
        ),
        (
            ITEM,
            "except_tickets_of",
            json!("s.late_sign"),
            "sheets[0].sections[0].items[1].except_tickets_of".into(),
        ),
        (
            APPLIES,
            "kinds",
            json!(["grid"]),
            "sheets[0].applies_to.kinds[0]".into(),
        ),
        (
            APPLIES,
            "agency_types",
            json!(["bakery"]),
            "sheets[0].applies_to.agency_types[0]".into(),
        ),
        (
            SEC,
            "points",
            json!(-1),
            "sheets[0].sections[0].points".into(),
        ),
        (
            SEC,
            "points",
            json!(null),
            "sheets[0].sections[0].points".into(),
        ),
        (
            SEC,
            "title",
            json!(" "),
            "sheets[0].sections[0].title".into(),
        ),
        (
            SHEET,
            "yearly",
            json!({"quarter_weight": 0.5, "year_end_weight": 0.6}),
            "sheets[0].yearly".into(),
        ),
        (SHEET, "weight", json!(1.5), "sheets[0].weight".into()),
        (
            SHEET,
            "mean_of",
            json!("s.found"),
            "sheets[0].mean_of".into(),
        ),
        (SHEET, "name", json!("Has Spaces"), "sheets[0].name".into()),
        ("", "name", json!("Has Spaces"), "name".into()),
    ] {
        let mut v = minimal();
        v.pointer_mut(at).expect("in the minimal profile")[key] = value;
        assert_eq!(field_of(v), field, "{at}/{key}");
    }

    let mut v = minimal();
    v["sheets"][0]
        .as_object_mut()
        .expect("object")
        .remove("base");
    assert_eq!(field_of(v), "sheets[0].base");

    let mut v = minimal();
    let rule = &mut v["sheets"][0]["sections"][0]["items"][0]["rule"];
    rule["kind"] = json!("rate_steps");
    rule["metric"] = json!("on_time_rate");
    rule.as_object_mut().expect("object").remove("points_each");
    assert_eq!(field_of(v), "sheets[0].sections[0].items[0].rule.step");

    let mut v = minimal();
    v["sheets"][0]["sections"][0]["items"][0]["rule"] = json!({"kind": "area_reports", "categories": ["city.a"], "source": "fax", "points_each": -1});
    assert_eq!(field_of(v), "sheets[0].sections[0].items[0].rule.source");

    // A free item outside a bonus section deducts.
    let mut v = minimal();
    v["sheets"][0]["sections"][0]["items"][1]["manual"] = json!({"min": 0, "max": 2});
    assert_eq!(field_of(v), "sheets[0].sections[0].items[1].manual.max");

    // A second sheet for units the first already scores.
    let mut v = minimal();
    let mut second = v["sheets"][0].clone();
    second["name"] = json!("other");
    second["applies_to"] = json!({"kinds": ["agency"], "agency_types": ["market"]});
    v["sheets"].as_array_mut().expect("array").push(second);
    assert_eq!(field_of(v), "sheets[1].applies_to");
}

#[test]
fn the_error_reads_with_file_and_field() {
    let mut v = minimal();
    v["sheets"][0]["sections"][0]["items"][0]["rule"]["metric"] = json!("nope");
    let e = parse(&v).expect_err("refused");
    let s = e.to_string();
    assert!(
        s.starts_with("appraisal profile test.json: sheets[0].sections[0].items[0].rule.metric: "),
        "{s}"
    );
}

#[test]
fn sheets_apply_by_kind_and_agency_type() {
    let mut v = minimal();
    v["sheets"][0]["applies_to"] = json!({"kinds": ["agency"], "agency_types": ["market"]});
    let p = parse(&v).expect("valid");
    let s = &p.sheets[0];
    assert!(s.applies(UnitKind::Agency, Some("market")));
    assert!(!s.applies(UnitKind::Agency, Some("enforcement")));
    assert!(!s.applies(UnitKind::Agency, None));
    assert!(!s.applies(UnitKind::Department, None));
    assert_eq!(
        p.sheet_for_kind(UnitKind::Agency, Some("market"))
            .map(|s| s.name.as_str()),
        Some("all")
    );
    assert_eq!(p.sheet_for_kind(UnitKind::Department, None), None);
}
