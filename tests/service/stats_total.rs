//! `granularity=total`: one row per unit for a range spanning months, each ticket
//! counted once, equal to a recount ticket by ticket; and the `subtotal` mark on the
//! rows that roll up units listed beside them.
//!
//! The history is the National Day one of `statistics.rs` (T1..T6, September and
//! October) and two more tickets of the township's enforcement squad that cross the
//! end of October: T7 due in October and handled (late) in November, T8 handled
//! (on time) in October and due in November. Each is due to finish in two months:
//! the months' rows count it twice, the range once.

use crate::stats_history::{bj, crossing, history, import};
use crate::support;

use serde_json::{Value, json};
use yiwang::auth::Role;
use yiwang::clock::Clock;

use support::{TestApp, engines};

/// One assignment of a ticket to a unit, as a person recounting it on paper sees it
/// for the range 2026-09-01..2026-11-30.
struct Episode {
    ticket: &'static str,
    unit: &'static str,
    /// Its handle deadline falls in the range or it was handled there (and it was
    /// not returned before the deadline).
    due: bool,
    /// Handled by the deadline in force.
    on_time: bool,
    /// Working hours from assignment to handling, when handled in the range.
    turnaround: Option<f64>,
    /// Open past its deadline at the end of the range.
    overdue: bool,
}

const EPISODES: [Episode; 7] = [
    ep("T1", "hg-zfzd", true, true, Some(76.0), false),
    ep("T2", "hg-zfzd", true, true, Some(192.5), false),
    ep("T3", "hg-zfzd", true, false, Some(143.0), false),
    // Returned at once: neither due nor handled.
    ep("T4", "hg-zfzd", false, false, None, false),
    ep("T5", "hg-scjgs", true, false, None, true),
    ep("T7", "hg-zfzd", true, false, Some(167.0), false),
    ep("T8", "hg-zfzd", true, true, Some(72.0), false),
];

const fn ep(
    ticket: &'static str,
    unit: &'static str,
    due: bool,
    on_time: bool,
    turnaround: Option<f64>,
    overdue: bool,
) -> Episode {
    Episode {
        ticket,
        unit,
        due,
        on_time,
        turnaround,
        overdue,
    }
}

/// The recount of the episodes of `units`: received, due to finish, handled on
/// time, handled, overdue, and the turnaround mean, median and p90 (nearest rank).
fn recount(units: &[&str]) -> Value {
    let mine: Vec<&Episode> = EPISODES
        .iter()
        .filter(|e| units.contains(&e.unit))
        .collect();
    let due = mine.iter().filter(|e| e.due).count() as u64;
    let on_time = mine.iter().filter(|e| e.due && e.on_time).count() as u64;
    let mut hours: Vec<f64> = mine.iter().filter_map(|e| e.turnaround).collect();
    hours.sort_by(f64::total_cmp);
    let rank = |q: f64| hours[((q * hours.len() as f64).ceil() as usize).max(1) - 1];
    let r2 = |x: f64| (x * 100.0).round() / 100.0;
    let rate = (due > 0).then(|| (on_time as f64 / due as f64 * 10000.0).round() / 10000.0);
    let tickets: std::collections::HashSet<&str> = mine.iter().map(|e| e.ticket).collect();
    json!({
        "received": tickets.len(),
        "due_to_finish": due,
        "handled_on_time": on_time,
        "on_time_rate": rate,
        "handled": hours.len(),
        "overdue_open": mine.iter().filter(|e| e.overdue).count(),
        "turnaround_hours": if hours.is_empty() {
            json!({"mean": null, "median": null, "p90": null})
        } else {
            json!({
                "mean": r2(hours.iter().sum::<f64>() / hours.len() as f64),
                "median": rank(0.5),
                "p90": rank(0.9),
            })
        },
    })
}

fn rows<'a>(body: &'a Value, unit: &str) -> Vec<&'a Value> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["unit"] == unit)
        .collect()
}

fn sum(rows: &[&Value], field: &str) -> u64 {
    rows.iter().map(|r| r[field].as_u64().unwrap()).sum()
}

#[tokio::test]
async fn a_range_counts_each_ticket_once_as_a_recount_does() {
    for engine in engines().await {
        let app = TestApp::spawn_with_clock(engine, Clock::manual(bj("2026-12-01T12:00:00"))).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("history.ndjson");
        std::fs::write(&file, history() + &crossing()).unwrap();
        let out = import(&app.db.url, &file);
        assert!(
            out.status.success(),
            "import: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        app.catch_up().await;
        let admin = app.token(Role::Admin, "etdz").await;
        let range = "unit=hg&from=2026-09-01&to=2026-11-30";

        let total = app
            .get(
                &format!("/api/v1/stats/units?{range}&granularity=total"),
                &admin,
            )
            .await;
        assert_eq!(total.status, 200, "{}", total.body);
        let months = app
            .get(
                &format!("/api/v1/stats/units?{range}&granularity=month"),
                &admin,
            )
            .await;
        assert_eq!(months.status, 200, "{}", months.body);

        // One row per unit, the requested unit first, labelled with the range.
        let units: Vec<&str> = total.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["unit"].as_str().unwrap())
            .collect();
        assert_eq!(
            units,
            ["hg", "hg-zfzd", "hg-scjgs"],
            "{engine:?} {}",
            total.body
        );
        for i in total.body["items"].as_array().unwrap() {
            assert_eq!(i["period"], "2026-09-01/2026-11-30");
        }

        for (unit, of) in [
            ("hg", &["hg-zfzd", "hg-scjgs"][..]),
            ("hg-zfzd", &["hg-zfzd"][..]),
            ("hg-scjgs", &["hg-scjgs"][..]),
        ] {
            let row = rows(&total.body, unit)[0];
            let want = recount(of);
            for (k, v) in want.as_object().unwrap() {
                assert_eq!(&row[k], v, "{engine:?} {unit} total {k}: {row}");
            }
            // The counts of events add up over months; the tickets due do not.
            let monthly = rows(&months.body, unit);
            assert_eq!(monthly.len(), 3, "{engine:?} {unit}");
            for k in ["received", "handled", "returns", "supervisions", "feedback"] {
                assert_eq!(
                    row[k].as_u64().unwrap(),
                    sum(&monthly, k),
                    "{engine:?} {unit} {k}"
                );
            }
            // Overdue open is that of the range's end, as the last month's.
            assert_eq!(
                row["overdue_open"], monthly[2]["overdue_open"],
                "{engine:?} {unit}"
            );
        }
        // T7 and T8 are due to finish in October and in November: twice in the months
        // (T8 on time in both, T7 in neither), so the months' sums give 4 of 7.
        let zf_months = rows(&months.body, "hg-zfzd");
        assert_eq!(sum(&zf_months, "due_to_finish"), 7, "{engine:?}");
        assert_eq!(sum(&zf_months, "handled_on_time"), 4, "{engine:?}");
        let zf = rows(&total.body, "hg-zfzd")[0];
        assert_eq!(zf["due_to_finish"], 5);
        assert_eq!(zf["on_time_rate"], json!(0.6));
        assert_eq!(
            zf["turnaround_hours"],
            json!({"mean": 130.1, "median": 143.0, "p90": 192.5})
        );
        // The rest of the row: the occurrences of the range, and the sign figures.
        let rest = json!({
            "due_to_sign": 5, "signed": 5, "signed_on_time": 4, "signed_on_time_rate": 0.8,
            "returns": 1, "extensions_requested": 1, "extensions_approved": 1,
            "verification_failures": 1, "supervisions": 2, "repeated_supervisions": 1,
            "feedback": 2, "satisfied": 1, "unsatisfied": 1, "satisfaction_rate": 0.5,
            "one_time": 3, "one_time_rate": 0.6, "repeat_complaints": 1,
        });
        for (k, v) in rest.as_object().unwrap() {
            assert_eq!(&zf[k], v, "{engine:?} hg-zfzd total {k}: {zf}");
        }

        // Subtotals: the township's row rolls up its two agencies; theirs roll up
        // nothing listed. The same marks on the months' rows.
        for body in [&total.body, &months.body] {
            for i in body["items"].as_array().unwrap() {
                assert_eq!(i["subtotal"], json!(i["unit"] == "hg"), "{engine:?} {i}");
            }
        }
        // Asked for alone, an agency's row is no subtotal.
        let alone = app
            .get(
                "/api/v1/stats/units?unit=hg-zfzd&from=2026-09-01&to=2026-11-30&granularity=total",
                &admin,
            )
            .await;
        assert_eq!(alone.status, 200);
        let items = alone.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["subtotal"], false);
        assert_eq!(items[0]["due_to_finish"], 5);

        // A range of one month is that month's row, figure for figure.
        let oct = app
            .get(
                "/api/v1/stats/units?unit=hg&from=2026-10-01&to=2026-10-31&granularity=total",
                &admin,
            )
            .await;
        for row in oct.body["items"].as_array().unwrap() {
            let unit = row["unit"].as_str().unwrap();
            let month = rows(&months.body, unit)
                .into_iter()
                .find(|m| m["period"] == "2026-10")
                .unwrap_or_else(|| panic!("no {unit} 2026-10"));
            let (mut a, mut b) = (row.clone(), month.clone());
            a["period"] = json!(null);
            b["period"] = json!(null);
            assert_eq!(a, b, "{engine:?} {unit}: October as a range and as a month");
        }

        // A range not on month boundaries: 10-25..11-05 holds T7 (due 10-29, handled
        // 11-02) and T8 (handled 10-30, due 11-03) once each; T2's rework (10-16) not.
        let mid = app
            .get(
                "/api/v1/stats/units?unit=hg-zfzd&from=2026-10-25&to=2026-11-05&granularity=total",
                &admin,
            )
            .await;
        let m = &mid.body["items"][0];
        assert_eq!(m["due_to_finish"], 2, "{engine:?} {m}");
        assert_eq!(m["handled_on_time"], 1, "{engine:?} {m}");
        assert_eq!(m["received"], 1, "{engine:?} T8 only: {m}");
        assert_eq!(
            m["turnaround_hours"],
            json!({"mean": 119.5, "median": 72.0, "p90": 167.0})
        );

        // CSV carries the mark; a bad granularity names the choices.
        let csv = app
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/stats/units?{range}&granularity=total"),
                Some(&admin),
                None,
                &[("accept", "text/csv".to_string())],
            )
            .await;
        assert_eq!(csv.status, 200);
        let text = csv.body.as_str().unwrap_or_default().to_string();
        let mut lines = text.lines();
        assert!(lines.next().unwrap().ends_with(",subtotal"), "{text}");
        assert!(lines.next().unwrap().ends_with(",true"), "{text}");
        let bad = app
            .get(
                &format!("/api/v1/stats/units?{range}&granularity=week"),
                &admin,
            )
            .await;
        assert_eq!(bad.status, 422);
        assert!(
            bad.body["detail"].as_str().unwrap().contains("total"),
            "{}",
            bad.body
        );
        app.finish().await;
    }
}
