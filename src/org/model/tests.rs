use super::*;
use serde_json::json;

/// A small valid organisation the problem tests break one piece at a time.
fn small() -> Value {
    json!({
        "units": [
            {"code": "d", "name": "区中心", "kind": "district", "parent": null},
            {"code": "dep", "name": "综合行政执法局", "kind": "department", "parent": "d"},
            {"code": "t1", "name": "甲街道", "kind": "township", "parent": "d"},
            {"code": "t1-zd", "name": "甲综合执法中队", "kind": "agency", "parent": "t1", "agency_type": "enforcement"},
            {"code": "t1-01", "name": "甲一社区", "kind": "community", "parent": "t1"},
            {"code": "t1-01-g01", "name": "甲一社区第1网格", "kind": "grid", "parent": "t1-01"},
            {"code": "t2", "name": "乙镇", "kind": "township", "parent": "d"},
            {"code": "t2-zd", "name": "乙综合执法中队", "kind": "agency", "parent": "t2", "agency_type": "enforcement"},
            {"code": "t2-01", "name": "乙一村", "kind": "community", "parent": "t2"},
            {"code": "t2-01-g01", "name": "乙一村第1网格", "kind": "grid", "parent": "t2-01"}
        ],
        "categories": [
            {"code": "city.stacking", "name": "乱堆乱放", "group": "城市管理", "default_unit": "dep",
             "routes": [{"area": "t1", "unit": "t1-zd"}]},
            {"code": "city.illegal_construction", "name": "违法建设", "default_unit": "dep",
             "routes": [], "sla": {"sign_days": 2, "normal": {"handle_days": 3}, "emergency": {"handle_hours": 1}}}
        ]
    })
}

fn parse(v: &Value) -> Result<Org, Vec<OrgProblem>> {
    parse_org(&v.to_string(), "test.json")
}

fn problems(v: &Value) -> Vec<OrgProblem> {
    match parse(v) {
        Ok(_) => panic!("expected problems, the file parsed"),
        Err(p) => p,
    }
}

/// Asserts there is exactly one problem, at `location`, whose message contains `msg`.
fn assert_one(v: &Value, location: &str, msg: &str) {
    let ps = problems(v);
    assert_eq!(ps.len(), 1, "expected one problem, got: {ps:#?}");
    assert_eq!(ps[0].location, location, "{ps:#?}");
    assert!(
        ps[0].message.contains(msg),
        "message {:?} lacks {msg:?}",
        ps[0].message
    );
}

#[test]
fn demo_parses() {
    let text = include_str!("../../../schema/reference/demo-org.json");
    let org = match parse_org(text, "demo-org.json") {
        Ok(o) => o,
        Err(ps) => panic!(
            "demo invalid:\n{}",
            ps.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    for kind in UnitKind::ALL {
        assert!(
            org.units_of_kind(kind).next().is_some(),
            "no {kind} in the demo"
        );
    }
    assert_eq!(org.root().code, "etdz");
    assert!(org.categories().len() >= 30);
    // Also the plain serde path (deny_unknown_fields everywhere) accepts it.
    let file: OrgFile = serde_json::from_str(text).unwrap();
    assert_eq!(file.units.len(), org.units().len());
    let _ = demo();
}

#[test]
fn demo_has_the_etdz_shape() {
    let org = demo();
    let townships: Vec<&str> = org
        .units_of_kind(UnitKind::Township)
        .map(|u| u.name.as_str())
        .collect();
    for name in [
        "泊于镇",
        "崮山镇",
        "桥头镇",
        "皇冠街道",
        "凤林街道",
        "西苑街道",
    ] {
        assert!(
            townships.iter().any(|t| t.starts_with(name)),
            "{name} missing"
        );
    }
    for t in org.units_of_kind(UnitKind::Township) {
        let kids = org.children(&t.code);
        let communities: Vec<&str> = kids
            .iter()
            .copied()
            .filter(|c| org.unit(c).unwrap().kind == UnitKind::Community)
            .collect();
        assert!(
            (2..=3).contains(&communities.len()),
            "{}: {communities:?}",
            t.code
        );
        for c in communities {
            assert!((2..=3).contains(&org.children(c).len()), "{c}");
        }
        // Every township has one agency of each type.
        for ty in AGENCY_TYPES {
            let n = kids
                .iter()
                .filter(|k| org.agency_type(k) == Some(ty))
                .count();
            assert_eq!(n, 1, "{} has {n} {ty} agencies", t.code);
        }
    }
    // Every category routes every grid somewhere that exists.
    for c in org.categories() {
        for g in org.units_of_kind(UnitKind::Grid) {
            let to = org
                .route(&c.code, &g.code)
                .unwrap_or_else(|| panic!("{} at {}", c.code, g.code));
            assert!(org.unit(to).is_some());
        }
    }
    assert!(org.unit("hg-01-g01").is_some());
}

#[test]
fn small_is_valid() {
    parse(&small()).unwrap();
}

#[test]
fn malformed_json_gives_line_and_column() {
    let ps = parse_org("{\"units\": [\n  {\"code\": \"d\",,}\n]}", "bad.json").unwrap_err();
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].location, "2:16");
    assert!(
        ps[0].message.starts_with("malformed JSON"),
        "{}",
        ps[0].message
    );
    assert!(!ps[0].message.contains(" at line "));
    assert_eq!(
        ps[0].to_string(),
        format!("bad.json: 2:16: {}", ps[0].message)
    );
}

#[test]
fn unknown_fields_are_rejected_with_their_path() {
    let mut v = small();
    v["units"][3]["parnet"] = json!("t1");
    assert_one(&v, "units[3] (t1-zd)", "unknown field `parnet`");

    let mut v = small();
    v["categories"][0]["routes"][0]["unti"] = json!("t1-zd");
    assert_one(
        &v,
        "categories[0].routes[0] (city.stacking)",
        "unknown field `unti`",
    );

    let mut v = small();
    v["categories"][1]["sla"]["normal"]["handle_dayz"] = json!(2);
    assert_one(
        &v,
        "categories[1].sla.normal (city.illegal_construction)",
        "unknown field `handle_dayz`",
    );

    let mut v = small();
    v["unitz"] = json!([]);
    assert_one(&v, "unitz", "unknown field");

    let mut v = small();
    v["units"][2]["kind"] = json!("street");
    assert_one(&v, "units[2] (t1)", "unknown variant `street`");
}

#[test]
fn a_broken_unit_does_not_cascade() {
    // t1's entry has a typo; its children must not also report "unknown parent".
    let mut v = small();
    v["units"][2]["nmae"] = json!("x");
    assert_one(&v, "units[2] (t1)", "unknown field `nmae`");
}

#[test]
fn duplicate_unit_code() {
    let mut v = small();
    v["units"][5]["code"] = json!("t1-01");
    // The grid became a second "t1-01"; nothing else is wrong with the tree.
    assert_one(
        &v,
        "units[5].code (t1-01)",
        "duplicate unit code \"t1-01\" (first defined at units[4])",
    );
}

#[test]
fn duplicate_category_code() {
    let mut v = small();
    v["categories"][1]["code"] = json!("city.stacking");
    assert_one(
        &v,
        "categories[1].code (city.stacking)",
        "duplicate category code",
    );
}

#[test]
fn unknown_parent() {
    let mut v = small();
    v["units"][5]["parent"] = json!("t9-01");
    assert_one(
        &v,
        "units[5].parent (t1-01-g01)",
        "unknown parent \"t9-01\"",
    );
}

#[test]
fn exactly_one_district() {
    let mut v = small();
    v["units"][0]["kind"] = json!("township");
    let ps = problems(&v);
    assert!(
        ps.iter()
            .any(|p| p.location == "units" && p.message.contains("no unit of kind district")),
        "{ps:#?}"
    );

    let mut v = small();
    v["units"]
        .as_array_mut()
        .unwrap()
        .push(json!({"code": "d2", "name": "另一中心", "kind": "district", "parent": null}));
    assert_one(&v, "units[10].kind (d2)", "a second district");

    let mut v = small();
    v["units"][0]["parent"] = json!("t1");
    let ps = problems(&v);
    assert!(
        ps.iter()
            .any(|p| p.location == "units[0].parent (d)" && p.message.contains("must be null")),
        "{ps:#?}"
    );
}

#[test]
fn cycle_in_parents() {
    // Two communities parenting each other: wrong kinds, and a cycle.
    let mut v = small();
    v["units"][4]["parent"] = json!("t2-01");
    v["units"][8]["parent"] = json!("t1-01");
    let ps = problems(&v);
    let cycles: Vec<&OrgProblem> = ps.iter().filter(|p| p.message.contains("cycle")).collect();
    assert_eq!(cycles.len(), 1, "{ps:#?}");
    assert_eq!(cycles[0].location, "units[4].parent (t1-01)");
    assert!(
        cycles[0].message.ends_with("t1-01 -> t2-01 -> t1-01"),
        "{}",
        cycles[0].message
    );
    assert!(ps.iter().any(|p| p.location == "units[4].parent (t1-01)"
        && p.message.contains("must sit under a township")));

    let mut v = small();
    v["units"][2]["parent"] = json!("t1");
    assert_one(&v, "units[2].parent (t1)", "parents form a cycle: t1 -> t1");
}

#[test]
fn kinds_under_the_wrong_parent() {
    let cases = [
        (
            2,
            "t1-01",
            "a township must sit under a district, but parent \"t1-01\" is a community",
        ),
        (4, "d", "a community must sit under a township"),
        (3, "t1-01", "an agency must sit under a township"),
        (5, "t1", "a grid must sit under a community"),
        (1, "t1", "a department must sit under a district"),
    ];
    for (i, parent, msg) in cases {
        let mut v = small();
        v["units"][i]["parent"] = json!(parent);
        let ps = problems(&v);
        let code = v["units"][i]["code"].as_str().unwrap();
        let want = format!("units[{i}].parent ({code})");
        assert!(
            ps.iter()
                .any(|p| p.location == want && p.message.contains(msg)),
            "{want}: {msg}: {ps:#?}"
        );
    }
    let mut v = small();
    v["units"][2]["parent"] = json!(null);
    assert_one(
        &v,
        "units[2].parent (t1)",
        "a township needs a parent (a district)",
    );
}

#[test]
fn empty_code_and_name() {
    let mut v = small();
    v["units"][1]["name"] = json!(" ");
    assert_one(&v, "units[1].name (dep)", "unit name is empty");

    let mut v = small();
    v["categories"][0]["name"] = json!("");
    assert_one(
        &v,
        "categories[0].name (city.stacking)",
        "category name is empty",
    );

    let mut v = small();
    v["categories"][1]["code"] = json!("");
    assert_one(&v, "categories[1].code", "category code is empty");

    // A department nobody references, so the empty code is the only problem.
    let mut v = small();
    v["units"]
        .as_array_mut()
        .unwrap()
        .push(json!({"code": "", "name": "某局", "kind": "department", "parent": "d"}));
    assert_one(&v, "units[10].code", "unit code is empty");
}

#[test]
fn agency_type_is_checked() {
    let mut v = small();
    v["units"][3]["agency_type"] = json!("traffic");
    assert_one(
        &v,
        "units[3].agency_type (t1-zd)",
        "unknown agency_type \"traffic\"",
    );

    let mut v = small();
    v["units"][1]["agency_type"] = json!("market");
    assert_one(&v, "units[1].agency_type (dep)", "only agencies");
}

#[test]
fn category_references() {
    let mut v = small();
    v["categories"][0]["default_unit"] = json!("nope");
    assert_one(
        &v,
        "categories[0].default_unit (city.stacking)",
        "unknown unit \"nope\"",
    );

    let mut v = small();
    v["categories"][0]["default_unit"] = json!("t1-zd");
    assert_one(
        &v,
        "categories[0].default_unit (city.stacking)",
        "must be a district department",
    );

    let mut v = small();
    v["categories"][0]["routes"][0]["unit"] = json!("t1-xx");
    assert_one(
        &v,
        "categories[0].routes[0].unit (city.stacking)",
        "unknown unit \"t1-xx\"",
    );

    let mut v = small();
    v["categories"][0]["routes"][0]["area"] = json!("t9");
    assert_one(
        &v,
        "categories[0].routes[0].area (city.stacking)",
        "unknown area \"t9\"",
    );

    let mut v = small();
    v["categories"][0]["routes"][0]["area"] = json!("t1-01");
    assert_one(
        &v,
        "categories[0].routes[0].area (city.stacking)",
        "must be a township, but \"t1-01\" is a community",
    );

    let mut v = small();
    v["categories"][0]["routes"][0]["unit"] = json!("t2-zd");
    assert_one(
        &v,
        "categories[0].routes[0].unit (city.stacking)",
        "not inside the route's area \"t1\"",
    );

    let mut v = small();
    v["categories"][0]["routes"][0]["unit"] = json!("t1-01-g01");
    assert_one(
        &v,
        "categories[0].routes[0].unit (city.stacking)",
        "is a grid",
    );

    let mut v = small();
    v["categories"][0]["routes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"area": "t1", "unit": "t1-01"}));
    assert_one(
        &v,
        "categories[0].routes[1].area (city.stacking)",
        "already routed at routes[0]",
    );

    let mut v = small();
    v["categories"][0]
        .as_object_mut()
        .unwrap()
        .remove("default_unit");
    assert_one(
        &v,
        "categories[0].default_unit (city.stacking)",
        "no route for t2",
    );
}

#[test]
fn sla_values() {
    let mut v = small();
    v["categories"][1]["sla"]["sign_days"] = json!(0);
    assert_one(
        &v,
        "categories[1].sla.sign_days (city.illegal_construction)",
        "at least 1",
    );

    let mut v = small();
    v["categories"][1]["sla"]["normal"]["handle_days"] = json!(0);
    assert_one(
        &v,
        "categories[1].sla.normal.handle_days (city.illegal_construction)",
        "at least 1",
    );

    let mut v = small();
    v["categories"][1]["sla"]["emergency"]["handle_hours"] = json!(0);
    assert_one(
        &v,
        "categories[1].sla.emergency.handle_hours (city.illegal_construction)",
        "at least 1",
    );

    let mut v = small();
    v["categories"][1]["sla"]["urgent"] = json!({"handle_days": 1, "handle_hours": 4});
    assert_one(
        &v,
        "categories[1].sla.urgent (city.illegal_construction)",
        "not both",
    );

    let mut v = small();
    v["categories"][1]["sla"]["urgent"] = json!({});
    assert_one(
        &v,
        "categories[1].sla.urgent (city.illegal_construction)",
        "give handle_days or handle_hours",
    );

    let mut v = small();
    v["categories"][1]["sla"]["normal"]["handle_days"] = json!(-1);
    assert_one(
        &v,
        "categories[1].sla.normal (city.illegal_construction)",
        "invalid value",
    );
}

#[test]
fn three_problems_are_all_reported() {
    let mut v = small();
    v["units"][5]["parent"] = json!("t9-01"); // unknown parent
    v["units"][7]["code"] = json!("t1-zd"); // duplicate unit code
    v["categories"][1]["sla"]["sign_days"] = json!(0); // zero SLA
    let ps = problems(&v);
    let locations: Vec<&str> = ps.iter().map(|p| p.location.as_str()).collect();
    assert_eq!(
        locations,
        [
            "units[7].code (t1-zd)",
            "units[5].parent (t1-01-g01)",
            "categories[1].sla.sign_days (city.illegal_construction)"
        ],
        "{ps:#?}"
    );
    assert_eq!(
        ps[1].to_string(),
        "test.json: units[5].parent (t1-01-g01): unknown parent \"t9-01\""
    );
}

#[test]
fn shape_problems_in_several_entries_are_all_reported() {
    let mut v = small();
    v["units"][1]["colour"] = json!("red");
    v["units"][8]["kind"] = json!(7);
    v["categories"][0]["routes"][0]["unit"] = json!(null);
    let ps = problems(&v);
    assert_eq!(ps.len(), 3, "{ps:#?}");
    assert_eq!(ps[2].location, "categories[0].routes[0] (city.stacking)");
}

#[test]
fn tree_lookups() {
    let org = demo();
    assert_eq!(org.parent("hg-01-g01"), Some("hg-01"));
    assert_eq!(org.parent("etdz"), None);
    assert_eq!(org.ancestors("hg-01-g01"), ["hg-01", "hg", "etdz"]);
    assert!(org.ancestors("etdz").is_empty());
    assert!(org.ancestors("nope").is_empty());

    assert!(org.is_within("hg-01-g01", "hg-01-g01"));
    assert!(org.is_within("hg-01-g01", "hg"));
    assert!(org.is_within("hg-zfzd", "etdz"));
    assert!(!org.is_within("hg-01-g01", "fl"));
    assert!(!org.is_within("hg", "hg-01"));
    assert!(!org.is_within("nope", "etdz"));

    let sub = org.subtree("hg-01");
    assert_eq!(sub, ["hg-01", "hg-01-g01", "hg-01-g02", "hg-01-g03"]);
    assert_eq!(org.subtree("etdz").len(), org.units().len());
    assert_eq!(org.subtree("hg")[..2], ["hg", "hg-sfs"]);

    assert_eq!(org.township_of("hg-01-g01"), Some("hg"));
    assert_eq!(org.township_of("by-scjgs"), Some("by"));
    assert_eq!(org.township_of("qt"), Some("qt"));
    assert_eq!(org.township_of("scjg"), None);
    assert_eq!(org.township_of("etdz"), None);

    assert!(org.is_centre("etdz") && org.is_centre("gs"));
    assert!(!org.is_centre("gs-01") && !org.is_centre("scjg") && !org.is_centre("gs-pcs"));
    assert_eq!(org.agency_type("fl-scjgs"), Some("market"));
}

#[test]
fn routing() {
    let org = demo();
    // City management goes to the township's enforcement squadron.
    assert_eq!(
        org.route("city.exposed_garbage", "hg-01-g01"),
        Some("hg-zfzd")
    );
    assert_eq!(
        org.route("city.exposed_garbage", "qt-02-g02"),
        Some("qt-zfzd")
    );
    // Food safety to the market-supervision office, disputes to the judicial office,
    // public order to the police station.
    assert_eq!(org.route("food.unlicensed", "xy-02-g01"), Some("xy-scjgs"));
    assert_eq!(org.route("dispute.neighbour", "gs-01-g01"), Some("gs-sfs"));
    assert_eq!(
        org.route("order.public_security", "fl-03-g02"),
        Some("fl-pcs")
    );
    // A location that is a community or the township works too.
    assert_eq!(org.route("dispute.neighbour", "gs-01"), Some("gs-sfs"));
    assert_eq!(org.route("dispute.neighbour", "gs"), Some("gs-sfs"));
    // No township (a hotline call with no address) or no route: the default department.
    assert_eq!(org.route("city.exposed_garbage", "etdz"), Some("zhzf"));
    assert_eq!(org.route("env.pollution_source", "hg-01-g01"), Some("sthj"));
    assert_eq!(org.route("nope", "hg-01-g01"), None);
}

#[test]
fn dispatching() {
    let org = demo();
    let from_district = org.dispatch_targets("etdz");
    assert!(
        from_district.contains(&"scjg")
            && from_district.contains(&"hg")
            && from_district.contains(&"qt")
    );
    assert!(!from_district.contains(&"hg-zfzd") && !from_district.contains(&"hg-01"));
    assert_eq!(
        from_district.len(),
        org.units_of_kind(UnitKind::Department).count()
            + org.units_of_kind(UnitKind::Township).count()
    );

    let from_hg = org.dispatch_targets("hg");
    assert_eq!(
        from_hg[..5],
        ["hg-sfs", "hg-zfzd", "hg-scjgs", "hg-pcs", "hg-ajb"]
    );
    assert!(from_hg.contains(&"hg-01") && from_hg.contains(&"etdz"));
    assert!(
        !from_hg.contains(&"hg-01-g01")
            && !from_hg.contains(&"fl-zfzd")
            && !from_hg.contains(&"scjg")
    );

    assert!(org.dispatch_targets("hg-zfzd").is_empty());
    assert!(org.dispatch_targets("nope").is_empty());

    assert!(org.may_dispatch("etdz", "hg"));
    assert!(org.may_dispatch("hg", "hg-zfzd"));
    assert!(org.may_dispatch("hg", "etdz"));
    assert!(!org.may_dispatch("etdz", "hg-zfzd"));
    assert!(!org.may_dispatch("hg", "fl-zfzd"));
    assert!(!org.may_dispatch("hg-zfzd", "hg"));

    // Two hops: district -> township -> agency; a township passes up for departments.
    assert_eq!(org.next_hop("etdz", "hg-zfzd"), Some("hg"));
    assert_eq!(org.next_hop("etdz", "scjg"), Some("scjg"));
    assert_eq!(org.next_hop("hg", "hg-zfzd"), Some("hg-zfzd"));
    assert_eq!(org.next_hop("hg", "hg-01-g02"), Some("hg-01"));
    assert_eq!(org.next_hop("hg", "scjg"), Some("etdz"));
    assert_eq!(org.next_hop("hg", "fl-zfzd"), Some("etdz"));
    assert_eq!(org.next_hop("hg", "hg"), None);
    assert_eq!(org.next_hop("hg-zfzd", "hg"), None);
}

#[test]
fn sla_defaults_and_overrides() {
    let org = demo();
    let plain = "city.exposed_garbage";
    assert_eq!(
        org.sla_for(plain, "normal"),
        SlaSpec {
            sign_days: 1,
            handle: HandleDue::Days(5)
        }
    );
    assert_eq!(
        org.sla_for(plain, "urgent"),
        SlaSpec {
            sign_days: 1,
            handle: HandleDue::Days(1)
        }
    );
    assert_eq!(
        org.sla_for(plain, "emergency"),
        SlaSpec {
            sign_days: 1,
            handle: HandleDue::Hours(2)
        }
    );
    assert_eq!(org.sla_for("nope", "normal").handle, HandleDue::Days(5));
    // 违法建设: 3 days (49号: demolish new illegal construction within 3 days).
    assert_eq!(
        org.sla_for("city.illegal_construction", "normal").handle,
        HandleDue::Days(3)
    );
    assert_eq!(
        org.sla_for("city.illegal_construction", "urgent").handle,
        HandleDue::Days(1)
    );
    assert_eq!(
        org.sla_for("order.stability", "urgent").handle,
        HandleDue::Hours(4)
    );

    let org = parse(&small()).unwrap();
    let s = org.sla_for("city.illegal_construction", "emergency");
    assert_eq!(
        s,
        SlaSpec {
            sign_days: 2,
            handle: HandleDue::Hours(1)
        }
    );
    assert_eq!(
        org.sla_for("city.illegal_construction", "bogus").handle,
        HandleDue::Days(3)
    );
}
