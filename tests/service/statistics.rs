//! A hand-made history across the 2026 Mid-Autumn and National Day holidays,
//! imported with `yiwang import`, whose statistics and appraisal deductions were
//! worked out by hand below; the API must return exactly those figures, with the
//! right evidence.
//!
//! The calendar (国办发明电〔2025〕7号): 9-25..27 and 10-01..07 are holidays,
//! 10-10 (Sat) is a working day, 10-11 (Sun) is not. Default deadlines: sign by the
//! end of the next working day, handle within 5 working days (违法建设: 3), rework
//! within 3; "the end of day D" is 24:00 of D and counts in D's period.

use crate::stats_history::{bj, history, import};
use crate::support;

use std::collections::HashMap;

use serde_json::{Value, json};
use yiwang::auth::Role;
use yiwang::clock::Clock;

use support::{TestApp, engines};

/// ticket ref -> (id, its events' (type, position), in order)
type Positions = HashMap<String, (String, Vec<(String, i64)>)>;

async fn positions(app: &TestApp, tok: &str) -> Positions {
    let mut out = HashMap::new();
    let r = app.get("/api/v1/tickets?limit=100", tok).await;
    for t in r.body["items"].as_array().unwrap() {
        let id = t["id"].as_str().unwrap().to_string();
        let evs = app.get(&format!("/api/v1/tickets/{id}/events"), tok).await;
        let list: Vec<(String, i64)> = evs.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap().to_string(),
                    e["position"].as_i64().unwrap(),
                )
            })
            .collect();
        let category = t["category"].as_str().unwrap();
        let key = match (category, list.iter().any(|(ty, _)| ty == "TicketReturned")) {
            ("city.exposed_garbage", true) => "T4",
            ("city.exposed_garbage", false) if list.len() == 1 => "T6",
            ("city.exposed_garbage", false) => "T1",
            ("city.road_spillage", _) => "T2",
            ("city.illegal_construction", _) => "T3",
            _ => "T5",
        };
        out.insert(key.to_string(), (id, list));
    }
    out
}

fn pos(p: &Positions, t: &str, ty: &str, nth: usize) -> Value {
    let (id, list) = &p[t];
    let position = list.iter().filter(|(x, _)| x == ty).nth(nth).unwrap().1;
    json!({"ticket": id, "position": position})
}

fn item<'a>(body: &'a Value, unit: &str, period: &str) -> &'a Value {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["unit"] == unit && i["period"] == period)
        .unwrap_or_else(|| panic!("no {unit} {period} in {body}"))
}

#[tokio::test]
async fn national_day_history_gives_the_hand_worked_figures() {
    for engine in engines().await {
        let app = TestApp::spawn_with_clock(engine, Clock::manual(bj("2026-11-01T12:00:00"))).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("history.ndjson");
        std::fs::write(&file, history()).unwrap();
        let out = import(&app.db.url, &file);
        assert!(
            out.status.success(),
            "import: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        app.catch_up().await;
        let admin = app.token(Role::Admin, "etdz").await;
        let p = positions(&app, &admin).await;
        assert_eq!(p.len(), 6);

        let r = app
            .get(
                "/api/v1/stats/units?unit=hg&granularity=month&from=2026-09-01&to=2026-10-31",
                &admin,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let sep = item(&r.body, "hg-zfzd", "2026-09");
        let expect_sep = json!({
            "received": 3, "due_to_sign": 2, "signed": 2, "signed_on_time": 1,
            "due_to_finish": 0, "handled": 0, "handled_on_time": 0, "on_time_rate": null,
            "overdue_open": 0, "returns": 0, "extensions_requested": 1, "extensions_approved": 1,
            "verification_failures": 0, "supervisions": 0, "repeated_supervisions": 0,
            "feedback": 0, "satisfaction_rate": null,
            "turnaround_hours": {"mean": null, "median": null, "p90": null},
        });
        for (k, v) in expect_sep.as_object().unwrap() {
            assert_eq!(&sep[k], v, "{engine:?} hg-zfzd 2026-09 {k}: {sep}");
        }
        let oct = item(&r.body, "hg-zfzd", "2026-10");
        let expect_oct = json!({
            "received": 1, "due_to_sign": 1, "signed": 1, "signed_on_time": 1,
            "due_to_finish": 3, "handled": 3, "handled_on_time": 2, "on_time_rate": 0.6667,
            "overdue_open": 0, "returns": 1, "extensions_requested": 0, "extensions_approved": 0,
            "verification_failures": 1, "supervisions": 2, "repeated_supervisions": 1,
            "feedback": 2, "satisfaction_rate": 0.5,
            "turnaround_hours": {"mean": 137.17, "median": 143.0, "p90": 192.5},
            "one_time": 1, "repeat_complaints": 1,
        });
        for (k, v) in expect_oct.as_object().unwrap() {
            assert_eq!(&oct[k], v, "{engine:?} hg-zfzd 2026-10 {k}: {oct}");
        }
        // The township rolls up both agencies: T5 is due to sign and finish in
        // October, signed on time, never handled, overdue at the end of the month.
        let hg = item(&r.body, "hg", "2026-10");
        let expect_hg = json!({
            "received": 1, "due_to_sign": 2, "signed_on_time": 2, "signed": 2,
            "due_to_finish": 4, "handled": 3, "handled_on_time": 2, "on_time_rate": 0.5,
            "overdue_open": 1,
        });
        for (k, v) in expect_hg.as_object().unwrap() {
            assert_eq!(&hg[k], v, "{engine:?} hg 2026-10 {k}: {hg}");
        }
        let sc = item(&r.body, "hg-scjgs", "2026-09");
        assert_eq!(sc["received"], 1);

        // The overdue list names T5 only.
        let r = app
            .get("/api/v1/tickets?overdue=true&unit=hg", &admin)
            .await;
        let ids: Vec<&str> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [p["T5"].0.as_str()], "{}", r.body);

        // Appraisal, October, default profile: the squad.
        let r = app
            .get("/api/v1/appraisal?period=2026-10&unit=hg-zfzd", &admin)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["period"], "2026-10");
        let u = r.body["units"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["unit"] == "hg-zfzd")
            .unwrap_or_else(|| panic!("{}", r.body));
        let d: HashMap<String, &Value> = u["deductions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["rule"].as_str().unwrap().to_string(), d))
            .collect();
        let rule = |name: &str| {
            *d.get(name)
                .unwrap_or_else(|| panic!("no rule {name} in {u}"))
        };
        // On-time completion 66.67%: 33.33 points below 100 = 6 full steps of 5,
        // capped at 5.
        assert_eq!(rule("regulation.on_time_rate")["points"], json!(-5.0));
        assert_eq!(rule("supervision.late_completion")["count"], 1);
        assert_eq!(rule("supervision.late_completion")["points"], json!(-1.0));
        assert_eq!(
            rule("supervision.late_completion")["evidence"],
            json!([pos(&p, "T3", "TicketHandled", 0)])
        );
        assert_eq!(rule("supervision.quality_failure")["points"], json!(-1.0));
        assert_eq!(
            rule("supervision.quality_failure")["evidence"],
            json!([pos(&p, "T2", "VerificationFailed", 0)])
        );
        assert_eq!(rule("supervision.repeated")["points"], json!(-2.0));
        assert_eq!(
            rule("supervision.repeated")["evidence"],
            json!([pos(&p, "T2", "TicketSupervised", 1)])
        );
        assert_eq!(rule("team.satisfaction")["points"], json!(-3.0));
        // Grid reports of the first appearance list in township hg in October: T4, T6.
        assert_eq!(rule("appearance.street")["count"], 2);
        assert_eq!(rule("appearance.street")["points"], json!(-1.0));
        let mut ev = vec![
            pos(&p, "T4", "TicketAccepted", 0),
            pos(&p, "T6", "TicketAccepted", 0),
        ];
        ev.sort_by_key(|e| e["position"].as_i64());
        assert_eq!(rule("appearance.street")["evidence"], json!(ev));
        assert!(
            d.get("regulation.late_registration")
                .is_none_or(|r| r["count"] == 0),
            "T1's late sign is September's"
        );
        assert_eq!(u["score"], json!(87.0), "100 − 5 − 1 − 1 − 2 − 3 − 1: {u}");

        // September: T1 signed late; reports T1 (garbage), T2 (spillage), T3 (违法建设).
        let r = app
            .get("/api/v1/appraisal?period=2026-09&unit=hg-zfzd", &admin)
            .await;
        let u = r.body["units"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["unit"] == "hg-zfzd")
            .unwrap();
        let d: HashMap<String, &Value> = u["deductions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["rule"].as_str().unwrap().to_string(), d))
            .collect();
        assert_eq!(
            d["regulation.late_registration"]["evidence"],
            json!([pos(&p, "T1", "TicketSigned", 0)])
        );
        assert_eq!(d["regulation.late_registration"]["points"], json!(-0.5));
        assert_eq!(d["appearance.street"]["points"], json!(-0.5));
        assert_eq!(d["appearance.road"]["points"], json!(-0.5));
        assert_eq!(
            d["appearance.road"]["evidence"],
            json!([pos(&p, "T2", "TicketAccepted", 0)])
        );
        // The 违法建设 report came from a grid worker, not the city's supervision
        // (加减分(2) counts only those): nothing.
        assert!(!d.contains_key("bonus.city_found"), "{u}");
        assert_eq!(u["score"], json!(98.5), "{u}");

        // A second import of the same file adds nothing, and the figures stand.
        let before = app.count_rows("events").await;
        let out = import(&app.db.url, &file);
        assert!(out.status.success());
        assert_eq!(app.count_rows("events").await, before);
        app.finish().await;
    }
}
