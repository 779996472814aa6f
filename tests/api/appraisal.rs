//! Appraisal scores (issue 4 item 3): tickets driven through the API on a manual
//! clock, the unit_stats projection caught up by hand, and GET /api/v1/appraisal
//! checked deduction by deduction against the ticket events behind it.
//!
//! The story, all in township 皇冠 (hg) and its enforcement squad hg-zfzd, in July
//! 2026 (2026-Q3): three hotline tickets dispatched by hg to hg-zfzd; A is signed
//! late, B is completed late (and its citizen is unsatisfied), C fails verification
//! once and is supervised twice; a grid worker reports exposed garbage in hg.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use yiwang::auth::Role;
use yiwang::clock::Clock;

use crate::support::{TestApp, engines, ticket_body};

fn bj(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("a time")
        .with_timezone(&Utc)
}

fn time_of(v: &Value) -> DateTime<Utc> {
    bj(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
}

/// The position of the `nth` (0-based) event of `event_type` in a ticket's stream.
async fn position(app: &TestApp, token: &str, id: &str, event_type: &str, nth: usize) -> i64 {
    let r = app
        .get(&format!("/api/v1/tickets/{id}/events"), token)
        .await;
    assert_eq!(r.status, 200, "events: {}", r.body);
    r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["type"] == event_type)
        .nth(nth)
        .unwrap_or_else(|| panic!("no {event_type} #{nth} on {id}: {}", r.body))["position"]
        .as_i64()
        .expect("position")
}

async fn ok(app: &TestApp, token: &str, id: &str, action: &str, body: Value) -> Value {
    let r = app
        .post(&format!("/api/v1/tickets/{id}/{action}"), token, body)
        .await;
    assert_eq!(r.status, 200, "{action} {id}: {}", r.body);
    r.body
}

/// Brings the projections up to the end of the log (the test app runs no runners).
async fn catch_up(app: &TestApp) {
    app.all_events().await;
    for p in yiwang::projections::all(&app.app.projection_handles()) {
        while yiwang::projections::step(&app.app.store, p.as_ref(), 5000)
            .await
            .expect("projection step")
            .is_some()
        {}
    }
}

fn unit<'a>(body: &'a Value, code: &str) -> &'a Value {
    body["units"]
        .as_array()
        .expect("units")
        .iter()
        .find(|u| u["unit"] == code)
        .unwrap_or_else(|| panic!("no unit {code} in {body}"))
}

/// (rule, count, points, evidence as ticket@position) of a unit's deductions.
fn deductions(u: &Value) -> Vec<(String, i64, f64, Vec<String>)> {
    u["deductions"]
        .as_array()
        .expect("deductions")
        .iter()
        .map(|d| {
            (
                d["rule"].as_str().expect("rule").to_string(),
                d["count"].as_i64().expect("count"),
                d["points"].as_f64().expect("points"),
                d["evidence"]
                    .as_array()
                    .expect("evidence")
                    .iter()
                    .map(|e| {
                        format!(
                            "{}@{}",
                            e["ticket"].as_str().expect("ticket"),
                            e["position"]
                        )
                    })
                    .collect(),
            )
        })
        .collect()
}

fn d(rule: &str, count: i64, points: f64, evidence: &[String]) -> (String, i64, f64, Vec<String>) {
    (rule.to_string(), count, points, evidence.to_vec())
}

#[tokio::test]
async fn the_appraisal_deducts_rule_by_rule_with_the_events_behind_each_point() {
    for engine in engines().await {
        let t0 = bj("2026-07-06T09:00:00+08:00");
        let clock = Clock::manual(t0);
        let app = TestApp::spawn_with_clock(engine, clock.clone()).await;
        let hot = app.token(Role::HotlineAgent, "hg").await;
        let disp = app.token(Role::Dispatcher, "hg").await;
        let hand = app.token(Role::Handler, "hg-zfzd").await;
        let gw = app.token(Role::GridWorker, "hg-01-g01").await;
        let analyst = app.token(Role::Analyst, "etdz").await;

        // Three hotline tickets in hg, dispatched to the squad at t0.
        let mut ids = Vec::new();
        let mut dues = Vec::new();
        for _ in 0..3 {
            let r = app.post("/api/v1/tickets", &hot, ticket_body()).await;
            assert_eq!(r.status, 201, "create: {}", r.body);
            let id = r.body["id"].as_str().expect("id").to_string();
            let t = ok(&app, &disp, &id, "assign", json!({"unit": "hg-zfzd"})).await;
            dues.push((
                time_of(&t["deadlines"]["sign_due_at"]),
                time_of(&t["deadlines"]["handle_due_at"]),
            ));
            ids.push(id);
        }
        let (a, b, c) = (&ids[0], &ids[1], &ids[2]);

        // B and C signed on time; C supervised twice, fails verification once.
        clock.set(t0 + Duration::hours(1));
        ok(&app, &hand, b, "sign", json!({"handler": "钱工"})).await;
        ok(&app, &hand, c, "sign", json!({"handler": "钱工"})).await;
        ok(&app, &disp, c, "supervise", json!({"note": "请尽快处置"})).await;
        ok(&app, &disp, c, "supervise", json!({"note": "再次督办"})).await;
        ok(&app, &hand, c, "handle", json!({"result": "已清运"})).await;
        ok(
            &app,
            &disp,
            c,
            "verify",
            json!({"passed": false, "note": "仍有残留"}),
        )
        .await;
        ok(&app, &hand, c, "handle", json!({"result": "已彻底清运"})).await;
        ok(
            &app,
            &disp,
            c,
            "verify",
            json!({"passed": true, "note": "现场核实"}),
        )
        .await;

        // A signed an hour after its sign deadline, then handled on time.
        clock.set(dues[0].0 + Duration::hours(1));
        assert!(clock.now() < dues[0].1);
        ok(&app, &hand, a, "sign", json!({"handler": "钱工"})).await;
        ok(&app, &hand, a, "handle", json!({"result": "已清运"})).await;
        ok(
            &app,
            &disp,
            a,
            "verify",
            json!({"passed": true, "note": "现场核实"}),
        )
        .await;
        ok(
            &app,
            &hot,
            a,
            "feedback",
            json!({"satisfaction": "satisfied"}),
        )
        .await;

        // A grid worker's report of exposed garbage in hg (容貌管理).
        let mut g = ticket_body();
        g["source"] = json!("grid");
        let r = app.post("/api/v1/tickets", &gw, g).await;
        assert_eq!(r.status, 201, "grid report: {}", r.body);
        let grid = r.body["id"].as_str().expect("id").to_string();

        // B completed an hour after its handle deadline; its citizen is unsatisfied.
        clock.set(dues[1].1 + Duration::hours(1));
        ok(&app, &hand, b, "handle", json!({"result": "已清运"})).await;
        ok(
            &app,
            &disp,
            b,
            "verify",
            json!({"passed": true, "note": "现场核实"}),
        )
        .await;
        ok(
            &app,
            &hot,
            b,
            "feedback",
            json!({"satisfaction": "unsatisfied"}),
        )
        .await;
        assert!(clock.now() < bj("2026-10-01T00:00:00+08:00"), "still in Q3");

        catch_up(&app).await;

        let late_sign = format!("{a}@{}", position(&app, &disp, a, "TicketSigned", 0).await);
        let late_done = format!("{b}@{}", position(&app, &disp, b, "TicketHandled", 0).await);
        let failed = format!(
            "{c}@{}",
            position(&app, &disp, c, "VerificationFailed", 0).await
        );
        let repeat = format!(
            "{c}@{}",
            position(&app, &disp, c, "TicketSupervised", 1).await
        );
        let unhappy = format!(
            "{b}@{}",
            position(&app, &disp, b, "CitizenFeedbackRecorded", 0).await
        );
        let report = format!(
            "{grid}@{}",
            position(&app, &disp, &grid, "TicketAccepted", 0).await
        );

        // The quarter, as the district's analyst sees it: every department and agency.
        let r = app.get("/api/v1/appraisal?period=2026-Q3", &analyst).await;
        assert_eq!(r.status, 200, "appraisal: {}", r.body);
        assert_eq!(r.body["period"], "2026-Q3");
        assert_eq!(r.body["profile"], "weihai-etdz-2020");
        let units = r.body["units"].as_array().expect("units");
        assert_eq!(units.len(), 13 + 30, "every department and agency");
        assert_eq!(units[0]["unit"], "zhzf", "in organisation order");
        let squad = unit(&r.body, "hg-zfzd");
        // The enforcement squad's sheet (49号 三(三)), its items from tickets in
        // sheet order; 督查督办 and late registration per case.
        assert_eq!(
            deductions(squad),
            vec![
                d("team.satisfaction", 1, -3.0, std::slice::from_ref(&unhappy)),
                d(
                    "supervision.late_completion",
                    1,
                    -1.0,
                    std::slice::from_ref(&late_done)
                ),
                d(
                    "supervision.quality_failure",
                    1,
                    -1.0,
                    std::slice::from_ref(&failed)
                ),
                d(
                    "supervision.repeated",
                    1,
                    -2.0,
                    std::slice::from_ref(&repeat)
                ),
                d(
                    "regulation.late_registration",
                    1,
                    -0.5,
                    std::slice::from_ref(&late_sign)
                ),
                // 2 of 3 on time: 66.67%, six full 5-point steps, capped at 5.
                d(
                    "regulation.on_time_rate",
                    1,
                    -5.0,
                    std::slice::from_ref(&late_done)
                ),
                d("appearance.street", 1, -0.5, std::slice::from_ref(&report)),
            ]
        );
        assert_eq!(squad["sheet"], "enforcement");
        assert_eq!(squad["base"], json!(100.0));
        assert_eq!(squad["score"], json!(87.0));
        assert_eq!(squad["bonus"], json!(0.0));
        assert_eq!(squad["weight"], json!(0.6));
        assert_eq!(squad["unit_name"], "皇冠综合执法中队");
        let rate = &squad["deductions"][5];
        assert_eq!(rate["capped"], json!(true));
        assert_eq!(rate["manual"], json!(false));
        assert_eq!(rate["section"], "regulation");
        assert_eq!(rate["uncapped_points"], json!(-6.0));
        assert_eq!(rate["rate"], json!(0.6667));
        assert!(
            rate["title"]
                .as_str()
                .is_some_and(|t| t.contains("按期办结率")),
            "the document's wording: {rate}"
        );
        for quiet in ["hg-scjgs", "hg-sfs", "fl-zfzd"] {
            let u = unit(&r.body, quiet);
            assert_eq!(u["score"], json!(100.0), "{quiet}: {u}");
            assert_eq!(u["deductions"], json!([]), "{quiet}");
        }
        // A department: scored by the townships' evaluations for a year only.
        let dept = unit(&r.body, "zhzf");
        assert_eq!(
            (
                &dept["sheet"],
                &dept["score"],
                &dept["base"],
                &dept["weight"]
            ),
            (
                &json!("department"),
                &json!(null),
                &json!(30.0),
                &json!(0.3)
            )
        );
        assert_eq!(dept["evaluations"], json!([]));
        assert_eq!(dept["reference"], json!([]));
        // A police station has no sheet under 49号.
        let police = unit(&r.body, "hg-pcs");
        assert_eq!(
            (&police["sheet"], &police["score"], &police["base"]),
            (&json!(null), &json!(null), &json!(null))
        );
        assert!(police.get("weight").is_none(), "{police}");

        // The month gives the same, and the squad's handler sees only his unit.
        let r = app.get("/api/v1/appraisal?period=2026-07", &hand).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["units"].as_array().expect("units").len(), 1);
        assert_eq!(r.body["units"][0]["score"], json!(87.0));

        // The year: quarters Q1-Q3 have started; (100 + 100 + 87) / 3 × 40% + 87 × 60%.
        let r = app
            .get("/api/v1/appraisal?period=2026&unit=hg-zfzd", &disp)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let y = &r.body["units"][0];
        assert_eq!(
            y["quarters"],
            json!([
                {"period": "2026-Q1", "score": 100.0},
                {"period": "2026-Q2", "score": 100.0},
                {"period": "2026-Q3", "score": 87.0},
            ])
        );
        assert_eq!(y["year_end_score"], json!(87.0));
        assert_eq!(y["score"], json!(90.47));
        assert_eq!(y["bonus"], json!(0.0));
        assert_eq!(deductions(y).len(), 7, "the year-end deductions");

        // A township dispatcher sees the township's agencies.
        let r = app.get("/api/v1/appraisal?period=2026-Q3", &disp).await;
        let codes: Vec<&str> = r.body["units"]
            .as_array()
            .expect("units")
            .iter()
            .map(|u| u["unit"].as_str().expect("unit"))
            .collect();
        assert_eq!(
            codes,
            vec!["hg-sfs", "hg-zfzd", "hg-scjgs", "hg-pcs", "hg-ajb"]
        );

        // The second profile: Beijing 三率 over the same figures.
        let r = app
            .get(
                "/api/v1/appraisal?period=2026-Q3&unit=hg-zfzd&profile=beijing-three-rates",
                &analyst,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["profile"], "beijing-three-rates");
        let u = &r.body["units"][0];
        assert_eq!(
            deductions(u),
            vec![
                d(
                    "three_rates_response",
                    1,
                    -10.0,
                    std::slice::from_ref(&late_sign)
                ),
                d(
                    "three_rates_resolution",
                    1,
                    -11.67,
                    std::slice::from_ref(&late_done)
                ),
                d(
                    "three_rates_satisfaction",
                    1,
                    -17.5,
                    std::slice::from_ref(&unhappy)
                ),
            ]
        );
        assert_eq!(u["score"], json!(60.83));

        // CSV: one row per unit and deduction.
        let r = app
            .send(
                reqwest::Method::GET,
                "/api/v1/appraisal?period=2026-Q3&unit=hg",
                Some(&analyst),
                None,
                &[("Accept", "text/csv".to_string())],
            )
            .await;
        assert_eq!(r.status, 200);
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("text/csv")),
            "{:?}",
            r.headers
        );
        let text = r.body.as_str().expect("CSV text");
        let lines: Vec<&str> = text.lines().collect();
        let head = "2026-Q3,weihai-etdz-2020,hg-zfzd,皇冠综合执法中队,enforcement,100,87,0";
        let none = ",,,,,,,";
        assert_eq!(
            lines,
            vec![
                "period,profile,unit,unit_name,sheet,base,score,bonus,section,rule,manual,reference,count,points,evidence",
                &format!("2026-Q3,weihai-etdz-2020,hg-sfs,皇冠司法所,judicial,100,100,0{none}"),
                &format!("{head},team,team.satisfaction,false,false,1,-3,{unhappy}"),
                &format!(
                    "{head},supervision,supervision.late_completion,false,false,1,-1,{late_done}"
                ),
                &format!(
                    "{head},supervision,supervision.quality_failure,false,false,1,-1,{failed}"
                ),
                &format!("{head},supervision,supervision.repeated,false,false,1,-2,{repeat}"),
                &format!(
                    "{head},regulation,regulation.late_registration,false,false,1,-0.5,{late_sign}"
                ),
                &format!("{head},regulation,regulation.on_time_rate,false,false,1,-5,{late_done}"),
                &format!("{head},appearance,appearance.street,false,false,1,-0.5,{report}"),
                &format!("2026-Q3,weihai-etdz-2020,hg-scjgs,皇冠市场监管所,market,100,100,0{none}"),
                &format!("2026-Q3,weihai-etdz-2020,hg-pcs,皇冠派出所,,,,{none}"),
                &format!(
                    "2026-Q3,weihai-etdz-2020,hg-ajb,皇冠街道安全生产监督管理办公室,,,,{none}"
                ),
            ]
        );

        // Out of scope: 403.
        for (token, path) in [
            (&hand, "/api/v1/appraisal?period=2026-Q3&unit=hg"),
            (&hand, "/api/v1/appraisal?period=2026-Q3&unit=hg-scjgs"),
            (&disp, "/api/v1/appraisal?period=2026-Q3&unit=fl-zfzd"),
            (&disp, "/api/v1/appraisal?period=2026-Q3&unit=zhzf"),
            (&gw, "/api/v1/appraisal?period=2026-Q3"),
            (&hot, "/api/v1/appraisal?period=2026-Q3"),
        ] {
            let r = app.get(path, token).await;
            assert_eq!(r.status, 403, "{path}: {}", r.body);
            assert_eq!(r.header("content-type"), Some("application/problem+json"));
        }

        // Bad requests: 422 naming the field.
        for (path, field, hint) in [
            ("/api/v1/appraisal", "period", "2026-Q3"),
            ("/api/v1/appraisal?period=2026-Q5", "period", "2026-09"),
            ("/api/v1/appraisal?period=2026-09-30", "period", "2026-Q3"),
            ("/api/v1/appraisal?period=soon", "period", "2026"),
            (
                "/api/v1/appraisal?period=2026-Q3&profile=nope",
                "profile",
                "beijing-three-rates",
            ),
            ("/api/v1/appraisal?period=2026-Q3&unit=nope", "unit", "nope"),
        ] {
            let r = app.get(path, &analyst).await;
            assert_eq!(r.status, 422, "{path}: {}", r.body);
            assert_eq!(r.body["field"], field, "{path}: {}", r.body);
            let detail = r.body["detail"].as_str().expect("detail");
            assert!(detail.contains(hint), "{path}: {detail}");
        }

        // The profiles.
        let r = app.get("/api/v1/appraisal/profiles", &gw).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let names: Vec<(&str, bool)> = r.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| {
                assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()));
                assert!(p["description"].as_str().is_some_and(|t| !t.is_empty()));
                (p["name"].as_str().expect("name"), p["default"] == true)
            })
            .collect();
        assert_eq!(
            names,
            vec![("weihai-etdz-2020", true), ("beijing-three-rates", false)]
        );
        // Each profile lists its sheets, sections and items: what is computed and
        // what people enter.
        let sheets: Vec<&str> = r.body["items"][0]["sheets"]
            .as_array()
            .expect("sheets")
            .iter()
            .map(|s| s["name"].as_str().expect("name"))
            .collect();
        assert_eq!(sheets, ["department", "judicial", "enforcement", "market"]);
        let market = &r.body["items"][0]["sheets"][3];
        assert_eq!(market["weight"], json!(0.6));
        let business = &market["sections"][3];
        assert_eq!(
            (&business["name"], &business["points"]),
            (&json!("business"), &json!(30.0))
        );
        assert_eq!(business["items"][0]["rule"], "tickets");
        assert_eq!(business["items"][0]["manual"], json!(false));
        let dress = &market["sections"][2]["items"][1];
        assert_eq!(
            (&dress["code"], &dress["manual"], &dress["points_each"]),
            (&json!("standards.dress"), &json!(true), &json!(-2.0))
        );

        app.finish().await;
    }
}
