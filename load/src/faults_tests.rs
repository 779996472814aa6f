//! Negative controls for what `faults.rs` itself judges (issue 25): the
//! projections against a rebuild, and each scenario's minimum activity.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{compare_projections, minimum_activity};

fn answers(units: i64) -> Vec<(String, Value)> {
    vec![
        (
            "/api/v1/stats/units?granularity=day".into(),
            json!({"units": [{"code": "fl", "accepted": units}]}),
        ),
        (
            "/api/v1/appraisal?period=2026-11".into(),
            json!({"rows": [{"unit": "fl", "score": 98.5}]}),
        ),
    ]
}

#[test]
fn equal_projections_pass() {
    assert_eq!(
        compare_projections(&answers(3), &answers(3)),
        Vec::<String>::new()
    );
}

#[test]
fn a_projection_that_differs_from_its_rebuild_is_reported() {
    let p = compare_projections(&answers(3), &answers(4));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains("granularity=day: the live projection differs from a rebuild")
            && p[0].contains(".units[0].accepted: live 3 / rebuilt 4"),
        "{p:?}"
    );
}

#[test]
fn answers_missing_from_either_side_are_reported() {
    let mut short = answers(3);
    short.pop();
    let p = compare_projections(&answers(3), &short);
    assert!(p.iter().any(|p| p.contains("not the same routes")), "{p:?}");
    let p = compare_projections(&[], &[]);
    assert!(p.iter().any(|p| p.contains("not the same routes")), "{p:?}");
}

/// The counts of a scenario that did something everywhere.
fn busy() -> BTreeMap<&'static str, u64> {
    BTreeMap::from([
        ("acknowledged commands", 500),
        ("acknowledged after a retry", 12),
        ("SSE events received", 900),
        ("SSE subscribers", 2),
        ("projection answers compared", 8),
        ("SLA events", 14),
    ])
}

fn busy_fault() -> Value {
    json!({"answers_dropped": 40, "probe_commands": 4, "sla_events_after_the_kill": 6})
}

#[test]
fn a_busy_scenario_meets_its_minimum() {
    for s in [
        "steady", "kill", "drop", "outage", "disk", "cluster", "rolling",
    ] {
        assert_eq!(
            minimum_activity(s, &busy(), &busy_fault(), 2),
            Vec::<String>::new(),
            "{s}"
        );
    }
}

#[test]
fn each_missing_activity_fails_its_scenario() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("steady", "acknowledged commands", None),
        ("steady", "SSE events received", None),
        ("steady", "projection answers compared", None),
        ("kill", "acknowledged after a retry", None),
        ("drop", "acknowledged after a retry", None),
        ("outage", "acknowledged after a retry", None),
        ("disk", "acknowledged after a retry", None),
        ("drop", "answers dropped", Some("answers_dropped")),
        (
            "outage",
            "probe commands during the outage",
            Some("probe_commands"),
        ),
        ("cluster", "SLA events", None),
        (
            "cluster",
            "SLA events appended after the kill",
            Some("sla_events_after_the_kill"),
        ),
    ];
    for (scenario, what, field) in cases {
        let mut counts = busy();
        let mut fault = busy_fault();
        match field {
            Some(k) => fault[*k] = json!(0),
            None => {
                counts.insert(what, 0);
            }
        }
        let p = minimum_activity(scenario, &counts, &fault, 2);
        assert!(
            p.iter()
                .any(|p| p.starts_with(&format!("{scenario}: {what}: 0"))),
            "{scenario} with no {what}: {p:?}"
        );
    }
}

#[test]
fn a_subscriber_that_never_reported_fails_the_scenario() {
    let mut counts = busy();
    counts.insert("SSE subscribers", 1);
    let p = minimum_activity("steady", &counts, &busy_fault(), 2);
    assert!(
        p.iter()
            .any(|p| p.contains("1 SSE subscribers reported what they saw, of 2")),
        "{p:?}"
    );
}
