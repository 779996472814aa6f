//! The facts the appraisal of issue 21 reads, over real HTTP on both engines: the
//! ticket sources `city_supervision` and `patrol` and who may record them; a report
//! closed as a duplicate, invalid or withdrawn leaving the area report lists; and
//! the per-person figures of GET /api/v1/stats/people, hand-worked.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use yiwang::auth::Role;
use yiwang::clock::Clock;
use yiwang::projections::periods::Period;
use yiwang::projections::stats;

use crate::support::{TestApp, engines, ticket_body};

fn bj(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{s}+08:00"))
        .expect("a time")
        .with_timezone(&Utc)
}

async fn ok(app: &TestApp, token: &str, id: &str, action: &str, body: Value) -> Value {
    let r = app
        .post(&format!("/api/v1/tickets/{id}/{action}"), token, body)
        .await;
    assert_eq!(r.status, 200, "{action} {id}: {}", r.body);
    r.body
}

/// A grid worker's report in their grid, `self_handled` when a result is given.
async fn grid_report(app: &TestApp, grid: &str, fixed: Option<&str>) -> String {
    let gw = app.token(Role::GridWorker, grid).await;
    let mut b = ticket_body();
    b["source"] = json!("grid");
    b["location"]["grid"] = json!(grid);
    if let Some(result) = fixed {
        b["self_handled"] = json!({ "result": result });
    }
    let r = app.post("/api/v1/tickets", &gw, b).await;
    assert_eq!(r.status, 201, "grid report: {}", r.body);
    r.body["id"].as_str().expect("id").to_string()
}

fn problem_field(r: &crate::support::Resp) -> &Value {
    &r.body["field"]
}

#[tokio::test]
async fn the_new_sources_follow_who_records_them() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let gw = app.token(Role::GridWorker, "hg-01-g01").await;
        let squad = app.token(Role::Handler, "hg-zfzd").await;
        let dept = app.token(Role::Handler, "zhzf").await;
        let disp = app.token(Role::Dispatcher, "hg").await;
        let analyst = app.token(Role::Analyst, "etdz").await;
        let post = |token: &str, source: &str, grid: Option<&str>| {
            let mut b = ticket_body();
            b["source"] = json!(source);
            match grid {
                Some(g) => b["location"]["grid"] = json!(g),
                None => {
                    b["location"].as_object_mut().unwrap().remove("grid");
                }
            }
            let token = token.to_string();
            let app = &app;
            async move { app.post("/api/v1/tickets", &token, b).await }
        };
        // Refused, naming the field, nothing appended.
        for (token, source, who) in [
            (&hot, "patrol", "a hotline agent posting a patrol"),
            (
                &gw,
                "city_supervision",
                "a grid worker posting a city finding",
            ),
            (&gw, "patrol", "a grid worker posting a patrol"),
            (&squad, "hotline", "a handler posting a hotline call"),
            (
                &squad,
                "city_supervision",
                "a handler posting a city finding",
            ),
            (&squad, "grid", "a handler posting a grid report"),
        ] {
            let before = app.count_rows("events").await;
            let r = post(token, source, Some("hg-01-g01")).await;
            assert_eq!(r.status, 422, "{engine:?}: {who}: {}", r.body);
            assert_eq!(problem_field(&r), &json!("source"), "{engine:?}: {who}");
            assert_eq!(app.count_rows("events").await, before, "{who}");
        }
        // A squad's patrol reports inside its own township only.
        let before = app.count_rows("events").await;
        let r = post(&squad, "patrol", Some("fl-01-g01")).await;
        assert_eq!(r.status, 403, "{engine:?}: another township: {}", r.body);
        assert_eq!(app.count_rows("events").await, before);
        // An analyst still records nothing.
        let r = post(&analyst, "patrol", None).await;
        assert_eq!(r.status, 403, "{engine:?}: {}", r.body);
        // Taken: (token, source, grid, the centre it waits at).
        for (token, source, grid, centre) in [
            (&hot, "city_supervision", Some("hg-01-g01"), "etdz"),
            (&squad, "patrol", Some("hg-01-g01"), "hg"),
            (&squad, "patrol", None, "hg"),
            (&dept, "patrol", Some("fl-01-g01"), "fl"),
            (&dept, "patrol", None, "etdz"),
            (&disp, "patrol", Some("hg-01-g01"), "hg"),
            (&disp, "city_supervision", None, "hg"),
        ] {
            let r = post(token, source, grid).await;
            assert_eq!(r.status, 201, "{engine:?}: {source} {grid:?}: {}", r.body);
            assert_eq!(r.body["source"], json!(source));
            assert_eq!(
                r.body["centre"],
                json!(centre),
                "{engine:?}: {source} {grid:?}"
            );
            // Read back as stored.
            let id = r.body["id"].as_str().unwrap();
            let back = app.get(&format!("/api/v1/tickets/{id}"), &analyst).await;
            assert_eq!(back.body["source"], json!(source));
        }
        // The feed shows the sources as written.
        let sources: Vec<String> = app
            .all_events()
            .await
            .iter()
            .filter(|e| e.event_type == "TicketAccepted")
            .map(|e| e.data["source"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(
            sources,
            [
                "city_supervision",
                "patrol",
                "patrol",
                "patrol",
                "patrol",
                "patrol",
                "city_supervision"
            ]
        );
        app.finish().await;
    }
}

/// Whether the squad's appraisal for the month lists `ticket` as evidence.
fn lists(answer: &Value, unit: &str, ticket: &str) -> bool {
    let u = answer["units"]
        .as_array()
        .expect("units")
        .iter()
        .find(|u| u["unit"] == unit)
        .unwrap_or_else(|| panic!("no {unit} in {answer}"));
    u.to_string().contains(ticket)
}

/// The tickets `stats::area_reports` lists for township hg in `period`.
async fn area_tickets(app: &TestApp, period: &str) -> Vec<String> {
    let p = Period::parse(period).expect("period");
    let hg = ["hg".to_string()];
    let mut out: Vec<String> = stats::area_reports(&app.app.store.pool(), Some(&hg), None, &p)
        .await
        .expect("area reports")
        .iter()
        .flat_map(|r| r.items.iter().map(|e| e.ticket.to_string()))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_report_closed_as_duplicate_invalid_or_withdrawn_stops_counting_as_a_place_found() {
    for engine in engines().await {
        let clock = Clock::manual(bj("2026-10-12T09:00:00"));
        let app = TestApp::spawn_with_clock(engine, clock.clone()).await;
        let analyst = app.token(Role::Analyst, "etdz").await;
        let disp = app.token(Role::Dispatcher, "hg").await;
        // Four reports of exposed garbage in hg: one place, then three that are not.
        let first = grid_report(&app, "hg-01-g01", None).await;
        let dup = grid_report(&app, "hg-01-g02", None).await;
        let bad = grid_report(&app, "hg-01-g01", None).await;
        let gone = grid_report(&app, "hg-01-g03", None).await;
        let mut all = vec![first.clone(), dup.clone(), bad.clone(), gone.clone()];
        all.sort();
        app.catch_up().await;
        let month = "/api/v1/appraisal?period=2026-10";
        let r = app.get(month, &analyst).await;
        assert_eq!(r.status, 200, "{}", r.body);
        for t in &all {
            assert!(lists(&r.body, "hg-zfzd", t), "{engine:?}: {t} counts first");
        }
        for p in ["2026-10", "2026-10-12", "2026-Q4"] {
            assert_eq!(area_tickets(&app, p).await, all, "{engine:?}: {p}");
        }

        clock.set(bj("2026-10-14T10:00:00"));
        ok(
            &app,
            &disp,
            &dup,
            "close",
            json!({"code": "duplicate", "duplicate_of": first}),
        )
        .await;
        ok(&app, &disp, &bad, "close", json!({"code": "invalid"})).await;
        ok(&app, &disp, &gone, "close", json!({"code": "withdrawn"})).await;
        app.catch_up().await;
        let r = app.get(month, &analyst).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            lists(&r.body, "hg-zfzd", &first),
            "{engine:?}: the place found still counts"
        );
        for t in [&dup, &bad, &gone] {
            assert!(
                !lists(&r.body, "hg-zfzd", t),
                "{engine:?}: {t} no longer counts"
            );
        }
        for p in ["2026-10", "2026-10-12", "2026-Q4", "2026"] {
            assert_eq!(
                area_tickets(&app, p).await,
                vec![first.clone()],
                "{engine:?}: {p}"
            );
        }
        // The same answer from a rebuild.
        let incremental = r.body.clone();
        for p in yiwang::projections::all(&app.app.projection_handles()) {
            p.rebuild(&app.app.store, &|_| {}).await.expect("rebuild");
        }
        let r = app.get(month, &analyst).await;
        assert_eq!(r.body, incremental, "{engine:?}: rebuilt");
        app.finish().await;
    }
}

/// The hand-worked month of township hg, all in October 2026:
///
/// - grid worker g01 (`grid_worker@hg-01-g01`), Monday the 12th: report R1, sent to
///   the squad; R2, closed as a duplicate of R1; R3, fixed on the spot, whose fix
///   fails verification.
/// - grid worker g02, Tuesday the 13th: R4 fixed on the spot (verified); R5 closed
///   as invalid.
/// - the squad's handler (`handler@hg-zfzd`): R1 handled on time, failed, handled
///   again on time; H1 (a hotline ticket of hg's centre) handled a day after its
///   deadline.
///
/// So g01: 3 reports, 2 valid, 1 fixed on the spot, 1 failed fix (and 1 handling,
/// on time, failed); g02: 2 reports, 1 valid, 1 fixed (1 handling on time); the
/// squad: 3 handlings, 2 on time (66.67%), 1 failed.
#[tokio::test]
async fn per_person_figures_of_grid_workers_and_handlers() {
    for engine in engines().await {
        let clock = Clock::manual(bj("2026-10-12T09:00:00"));
        let app = TestApp::spawn_with_clock(engine, clock.clone()).await;
        let disp = app.token(Role::Dispatcher, "hg").await;
        let squad = app.token(Role::Handler, "hg-zfzd").await;

        let r1 = grid_report(&app, "hg-01-g01", None).await;
        let r2 = grid_report(&app, "hg-01-g01", None).await;
        let r3 = grid_report(&app, "hg-01-g01", Some("已自行清理")).await;
        ok(
            &app,
            &disp,
            &r2,
            "close",
            json!({"code": "duplicate", "duplicate_of": r1}),
        )
        .await;
        ok(
            &app,
            &disp,
            &r3,
            "verify",
            json!({"passed": false, "note": "未清理干净"}),
        )
        .await;
        let mut h = ticket_body();
        h["location"].as_object_mut().unwrap().remove("grid");
        let r = app.post("/api/v1/tickets", &disp, h).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let h1 = r.body["id"].as_str().unwrap().to_string();
        for t in [&r1, &h1] {
            ok(&app, &disp, t, "assign", json!({"unit": "hg-zfzd"})).await;
            ok(&app, &squad, t, "sign", json!({"handler": "王工"})).await;
        }
        ok(&app, &squad, &r1, "handle", json!({"result": "已清运"})).await;
        ok(
            &app,
            &disp,
            &r1,
            "verify",
            json!({"passed": false, "note": "未清理干净"}),
        )
        .await;
        ok(&app, &squad, &r1, "handle", json!({"result": "已再次清运"})).await;
        ok(
            &app,
            &disp,
            &r1,
            "verify",
            json!({"passed": true, "note": "ok"}),
        )
        .await;

        clock.set(bj("2026-10-13T09:00:00"));
        let r4 = grid_report(&app, "hg-01-g02", Some("已自行清理")).await;
        let r5 = grid_report(&app, "hg-01-g02", None).await;
        ok(
            &app,
            &disp,
            &r4,
            "verify",
            json!({"passed": true, "note": "ok"}),
        )
        .await;
        ok(&app, &disp, &r5, "close", json!({"code": "invalid"})).await;

        let t = app.get(&format!("/api/v1/tickets/{h1}"), &disp).await.body;
        let due: DateTime<Utc> = t["deadlines"]["handle_due_at"]
            .as_str()
            .expect("a handle deadline")
            .parse()
            .expect("a time");
        clock.set(due + Duration::days(1));
        ok(&app, &squad, &h1, "handle", json!({"result": "已处理"})).await;
        app.catch_up().await;

        let month = "/api/v1/stats/people?unit=hg&from=2026-10-01&to=2026-10-31";
        let r = app.get(month, &disp).await;
        assert_eq!(r.status, 200, "{engine:?}: {}", r.body);
        assert_eq!(
            r.body,
            json!({
                "unit": "hg", "unit_name": "皇冠街道网格化治理中心",
                "from": "2026-10-01", "to": "2026-10-31",
                "grid_workers": [
                    {"person": "grid_worker@hg-01-g01", "unit": "hg-01-g01",
                     "unit_name": "皇冠第一社区第1网格", "reports": 3, "valid_reports": 2,
                     "self_handled": 1, "verification_failures": 1},
                    {"person": "grid_worker@hg-01-g02", "unit": "hg-01-g02",
                     "unit_name": "皇冠第一社区第2网格", "reports": 2, "valid_reports": 1,
                     "self_handled": 1, "verification_failures": 0},
                ],
                "handlers": [
                    {"person": "grid_worker@hg-01-g01", "unit": "hg-01-g01",
                     "unit_name": "皇冠第一社区第1网格", "handled": 1, "on_time": 1,
                     "on_time_rate": 100.0, "verification_failures": 1},
                    {"person": "grid_worker@hg-01-g02", "unit": "hg-01-g02",
                     "unit_name": "皇冠第一社区第2网格", "handled": 1, "on_time": 1,
                     "on_time_rate": 100.0, "verification_failures": 0},
                    {"person": "handler@hg-zfzd", "unit": "hg-zfzd",
                     "unit_name": "皇冠综合执法中队", "handled": 3, "on_time": 2,
                     "on_time_rate": 66.67, "verification_failures": 1},
                ],
            }),
            "{engine:?}"
        );
        // By day: the 12th holds g01's reports, not g02's.
        let r = app
            .get(
                "/api/v1/stats/people?unit=hg&from=2026-10-12&to=2026-10-12",
                &disp,
            )
            .await;
        let gws: Vec<&str> = r.body["grid_workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["person"].as_str().unwrap())
            .collect();
        assert_eq!(gws, ["grid_worker@hg-01-g01"], "{engine:?}: {}", r.body);
        // A grid's subtree: its own people only; another month: nobody.
        let r = app
            .get(
                "/api/v1/stats/people?unit=hg-01-g02&from=2026-10-01&to=2026-10-31",
                &disp,
            )
            .await;
        assert_eq!(
            r.body["grid_workers"].as_array().unwrap().len(),
            1,
            "{}",
            r.body
        );
        assert_eq!(
            r.body["handlers"].as_array().unwrap().len(),
            1,
            "{}",
            r.body
        );
        let r = app
            .get(
                "/api/v1/stats/people?unit=hg&from=2026-11-01&to=2026-11-30",
                &disp,
            )
            .await;
        assert_eq!(r.body["grid_workers"], json!([]), "{}", r.body);
        assert_eq!(r.body["handlers"], json!([]));
        // The district's analyst and admin read the same figures for hg.
        for role in [Role::Analyst, Role::Admin] {
            let tok = app.token(role, "etdz").await;
            let a = app.get(month, &tok).await.body;
            let b = app.get(month, &disp).await.body;
            assert_eq!(a, b, "{engine:?}: {role:?}");
        }
        // The same figures from a rebuild.
        let before = app.get(month, &disp).await.body;
        for p in yiwang::projections::all(&app.app.projection_handles()) {
            p.rebuild(&app.app.store, &|_| {}).await.expect("rebuild");
        }
        assert_eq!(
            app.get(month, &disp).await.body,
            before,
            "{engine:?}: rebuilt"
        );

        // Refusals: other roles, other subtrees, bad parameters.
        for (role, unit) in [
            (Role::Handler, "hg-zfzd"),
            (Role::GridWorker, "hg-01-g01"),
            (Role::HotlineAgent, "etdz"),
        ] {
            let tok = app.token(role, unit).await;
            let r = app.get("/api/v1/stats/people", &tok).await;
            assert_eq!(r.status, 403, "{engine:?}: {role:?}: {}", r.body);
        }
        let fl = app.token(Role::Dispatcher, "fl").await;
        let r = app.get("/api/v1/stats/people?unit=hg", &fl).await;
        assert_eq!(r.status, 403, "{engine:?}: another township: {}", r.body);
        for (q, field) in [
            ("unit=nope", "unit"),
            ("from=2026-10-31&to=2026-10-01", "from"),
            ("to=yesterday", "to"),
        ] {
            let r = app.get(&format!("/api/v1/stats/people?{q}"), &disp).await;
            assert_eq!(r.status, 422, "{engine:?}: {q}: {}", r.body);
            assert_eq!(r.body["field"], json!(field), "{q}");
        }
        app.finish().await;
    }
}
