//! Two-level dispatch as the source documents run it (issue 3, item 7; DESIGN §2): the
//! district centre dispatches to a township centre, which dispatches on (转派) to its
//! own agency; a township passes a ticket up to the district (吹哨报到), which
//! dispatches it to a department. Each hop is an event naming both units, and the
//! deadlines run from the hop that reached the unit doing the work.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use serde_json::{Value, json};
use yiwang::auth::Role;
use yiwang::clock::Clock;

use crate::support::{TestApp, engines, ticket_body};

fn shanghai(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Shanghai
        .with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .expect("a valid local time")
        .with_timezone(&Utc)
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().map(|s| {
        DateTime::parse_from_rfc3339(s)
            .expect("RFC 3339")
            .with_timezone(&Utc)
    })
}

async fn act(app: &TestApp, token: &str, id: &str, action: &str, body: Value) -> Value {
    let r = app
        .post(&format!("/api/v1/tickets/{id}/{action}"), token, body)
        .await;
    assert_eq!(r.status, 200, "{action}: {}", r.body);
    r.body
}

async fn events(app: &TestApp, id: &str) -> Vec<Value> {
    let admin = app.token(Role::Admin, "etdz").await;
    let r = app
        .get(&format!("/api/v1/tickets/{id}/events"), &admin)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().expect("items").clone()
}

fn of_type<'a>(evs: &'a [Value], ty: &str) -> Vec<&'a Value> {
    evs.iter().filter(|e| e["type"] == ty).collect()
}

/// A grid worker's report from `grid`; returns its JSON.
async fn grid_report(app: &TestApp, grid: &str, category: &str) -> Value {
    let gw = app.token(Role::GridWorker, grid).await;
    let mut b = ticket_body();
    b["source"] = json!("grid");
    b["category"] = json!(category);
    b["location"]["grid"] = json!(grid);
    let r = app.post("/api/v1/tickets", &gw, b).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

#[tokio::test]
async fn the_district_dispatches_to_a_township_which_dispatches_on_to_its_agency() {
    for engine in engines().await {
        // The district dispatches on Tuesday 29 September 2026, the township on
        // Wednesday 30 September, the eve of the National Day holiday.
        let clock = Clock::manual(shanghai(2026, 9, 29, 10));
        let app = TestApp::spawn_with_clock(engine, clock.clone()).await;
        let district = app.token(Role::Dispatcher, "etdz").await;
        let hg = app.token(Role::Dispatcher, "hg").await;
        let squad = app.token(Role::Handler, "hg-zfzd").await;
        let t = app.new_ticket().await;
        assert_eq!(t["centre"], "etdz");
        assert_eq!(t["suggested_unit"], "hg-zfzd");
        let id = t["id"].as_str().expect("id").to_string();

        // Hop 1: district centre -> township centre. No deadline runs yet.
        let r = act(&app, &district, &id, "assign", json!({"unit": "hg"})).await;
        assert_eq!(r["state"], "assigned");
        assert_eq!((&r["centre"], &r["unit"]), (&json!("etdz"), &json!("hg")));
        assert_eq!(r["deadlines"]["sign_due_at"], Value::Null);
        assert_eq!(r["deadlines"]["handle_due_at"], Value::Null);
        assert_eq!(r["overdue"], false);

        // It sits with the township centre: the squad cannot sign for it yet, the
        // district cannot dispatch it again, even an admin cannot sign for a centre.
        let before = app.count_rows("events").await;
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/sign"),
                &squad,
                json!({"handler": "钱工"}),
            )
            .await;
        // Not dispatched to the squad yet: not the squad's to see (404).
        assert_eq!(r.status, 404, "{}", r.body);
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/assign"),
                &district,
                json!({"unit": "zhzf"}),
            )
            .await;
        assert_eq!(r.status, 403, "the township holds it now: {}", r.body);
        let admin = app.token(Role::Admin, "etdz").await;
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/sign"),
                &admin,
                json!({"handler": "钱工"}),
            )
            .await;
        assert_eq!(
            r.status, 409,
            "a centre dispatches on, it does not sign: {}",
            r.body
        );
        assert_eq!(
            app.count_rows("events").await,
            before,
            "refusals append nothing"
        );
        let r = app.get("/api/v1/tickets?unit=hg&state=assigned", &hg).await;
        assert!(
            r.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .any(|t| t["id"] == json!(id)),
            "in the township centre's queue: {}",
            r.body
        );

        // Hop 2 (转派), a day later: township centre -> its enforcement squad. The
        // deadlines run from here: sign by the end of the next working day (8 Oct),
        // handle within 5 working days (8, 9, the 调休 Saturday 10, 12, 13 Oct).
        clock.set(shanghai(2026, 9, 30, 10));
        let r = act(&app, &hg, &id, "assign", json!({"unit": "hg-zfzd"})).await;
        assert_eq!(
            (&r["centre"], &r["unit"]),
            (&json!("hg"), &json!("hg-zfzd"))
        );
        assert_eq!(
            time(&r["deadlines"]["sign_due_at"]),
            Some(shanghai(2026, 10, 9, 0))
        );
        assert_eq!(
            time(&r["deadlines"]["handle_due_at"]),
            Some(shanghai(2026, 10, 14, 0))
        );
        assert_eq!(r["deadlines"]["sign"], "running");

        // The squad signs and handles; the township verifies, the district closes.
        clock.set(shanghai(2026, 10, 8, 9));
        act(&app, &squad, &id, "sign", json!({"handler": "钱工"})).await;
        let r = act(&app, &squad, &id, "handle", json!({"result": "已清运"})).await;
        assert_eq!(r["deadlines"]["sign"], "met");
        assert_eq!(r["deadlines"]["handle"], "met");
        act(
            &app,
            &hg,
            &id,
            "verify",
            json!({"passed": true, "note": "现场核实"}),
        )
        .await;
        let r = act(&app, &district, &id, "close", json!({"code": "resolved"})).await;
        assert_eq!(r["state"], "closed");

        // Each hop names both units and keeps its centre's dispatch time.
        let evs = events(&app, &id).await;
        let hops = of_type(&evs, "TicketAssigned");
        assert_eq!(hops.len(), 2);
        assert_eq!(hops[0]["data"]["from_unit"], "etdz");
        assert_eq!(hops[0]["data"]["unit"], "hg");
        assert_eq!(hops[0]["data"]["to_centre"], true);
        assert_eq!(hops[0]["data"]["sign_due_at"], Value::Null);
        assert_eq!(hops[0]["metadata"]["unit"], "etdz");
        assert_eq!(
            time(&hops[0]["occurred_at"]),
            Some(shanghai(2026, 9, 29, 10))
        );
        assert_eq!(hops[1]["data"]["from_unit"], "hg");
        assert_eq!(hops[1]["data"]["unit"], "hg-zfzd");
        assert_eq!(hops[1]["data"]["to_centre"], false);
        assert_eq!(
            time(&hops[1]["data"]["sign_due_at"]),
            Some(shanghai(2026, 10, 9, 0))
        );
        assert_eq!(hops[1]["metadata"]["unit"], "hg");
        assert_eq!(hops[1]["metadata"]["role"], "dispatcher");
        assert_eq!(
            time(&hops[1]["occurred_at"]),
            Some(shanghai(2026, 9, 30, 10))
        );
        let signed = of_type(&evs, "TicketSigned");
        assert_eq!(signed[0]["data"]["unit"], "hg-zfzd");
        assert_eq!(signed[0]["metadata"]["unit"], "hg-zfzd");
        app.finish().await;
    }
}

#[tokio::test]
async fn a_township_passes_a_ticket_up_to_the_district_which_dispatches_it_to_a_department() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let district = app.token(Role::Dispatcher, "etdz").await;
        let hg = app.token(Role::Dispatcher, "hg").await;
        // Pollution from a factory: the catalogue routes it to 生态环境分局, a district
        // department, even from a township's grid.
        let t = grid_report(&app, "hg-01-g02", "env.pollution_source").await;
        assert_eq!(
            (&t["centre"], &t["suggested_unit"]),
            (&json!("hg"), &json!("sthj"))
        );
        let id = t["id"].as_str().expect("id").to_string();

        // The township cannot reach the department itself; the answer shows the way.
        let before = app.count_rows("events").await;
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/assign"),
                &hg,
                json!({"unit": "sthj"}),
            )
            .await;
        assert_eq!(r.status, 422, "{}", r.body);
        let detail = r.body["detail"].as_str().expect("detail");
        assert!(
            detail.contains("sthj") && detail.contains("dispatch to etdz"),
            "{detail}"
        );
        assert_eq!(app.count_rows("events").await, before);

        // 吹哨报到: the township dispatches it up to the district centre.
        let r = act(
            &app,
            &hg,
            &id,
            "assign",
            json!({"unit": "etdz", "note": "需区直部门处理"}),
        )
        .await;
        assert_eq!((&r["centre"], &r["unit"]), (&json!("hg"), &json!("etdz")));
        assert_eq!(
            r["deadlines"]["sign_due_at"],
            Value::Null,
            "no deadline at a centre"
        );
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/assign"),
                &hg,
                json!({"unit": "hg-zfzd"}),
            )
            .await;
        assert_eq!(r.status, 403, "the district holds it now: {}", r.body);

        // The district dispatches it to the department; the deadlines start here.
        let r = act(&app, &district, &id, "assign", json!({"unit": "sthj"})).await;
        assert_eq!((&r["centre"], &r["unit"]), (&json!("etdz"), &json!("sthj")));
        assert!(r["deadlines"]["sign_due_at"].is_string());
        assert!(r["deadlines"]["handle_due_at"].is_string());
        let dept = app.token(Role::Handler, "sthj").await;
        act(&app, &dept, &id, "sign", json!({"handler": "孙工"})).await;

        // The township still follows the ticket of its grid.
        let r = app.get(&format!("/api/v1/tickets/{id}"), &hg).await;
        assert_eq!((r.status, &r.body["unit"]), (200, &json!("sthj")));

        let evs = events(&app, &id).await;
        let hops: Vec<(&Value, &Value)> = of_type(&evs, "TicketAssigned")
            .iter()
            .map(|e| (&e["data"]["from_unit"], &e["data"]["unit"]))
            .collect();
        assert_eq!(
            hops,
            [
                (&json!("hg"), &json!("etdz")),
                (&json!("etdz"), &json!("sthj"))
            ]
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn a_hop_that_reached_the_wrong_centre_is_returned_to_the_centre_that_sent_it() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let district = app.token(Role::Dispatcher, "etdz").await;
        let hg = app.token(Role::Dispatcher, "hg").await;

        // District -> township; the township returns it (退回): it needs a department.
        let id = app.new_ticket().await["id"]
            .as_str()
            .expect("id")
            .to_string();
        act(&app, &district, &id, "assign", json!({"unit": "hg"})).await;
        let r = act(
            &app,
            &hg,
            &id,
            "return",
            json!({"reason": "需区直部门处理"}),
        )
        .await;
        assert_eq!(r["state"], "accepted");
        assert_eq!((&r["centre"], &r["unit"]), (&json!("etdz"), &Value::Null));
        assert_eq!(r["returned"], 1);
        let r = act(&app, &district, &id, "assign", json!({"unit": "zhzf"})).await;
        assert_eq!(r["unit"], "zhzf");
        let evs = events(&app, &id).await;
        let ret = of_type(&evs, "TicketReturned");
        assert_eq!(ret[0]["data"]["unit"], "hg");
        assert_eq!(ret[0]["data"]["to_unit"], "etdz");
        assert_eq!(ret[0]["metadata"]["unit"], "hg");

        // Township -> district; the district sends it back to the township (镇街自办).
        let t = grid_report(&app, "hg-01-g01", "city.exposed_garbage").await;
        let id = t["id"].as_str().expect("id").to_string();
        act(&app, &hg, &id, "assign", json!({"unit": "etdz"})).await;
        let r = act(
            &app,
            &district,
            &id,
            "return",
            json!({"reason": "属街道职责"}),
        )
        .await;
        assert_eq!(
            (&r["state"], &r["centre"]),
            (&json!("accepted"), &json!("hg"))
        );
        let r = act(&app, &hg, &id, "assign", json!({"unit": "hg-zfzd"})).await;
        assert_eq!(r["unit"], "hg-zfzd");
        app.finish().await;
    }
}

#[tokio::test]
async fn a_ticket_sent_back_is_not_suggested_to_the_unit_that_sent_it_back() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let district = app.token(Role::Dispatcher, "etdz").await;
        let hg = app.token(Role::Dispatcher, "hg").await;
        let created = app.new_ticket().await;
        let id = created["id"].as_str().expect("id").to_string();
        // The catalogue routes garbage in 皇冠 to its enforcement squad (hg-zfzd);
        // the district passes it to the township, which follows the suggestion.
        assert_eq!(created["suggested_unit"], "hg-zfzd");
        let suggested = "hg-zfzd";
        assert_eq!(created["returned_by"], json!([]));
        act(&app, &district, &id, "assign", json!({"unit": "hg"})).await;
        let r = act(&app, &hg, &id, "assign", json!({"unit": suggested})).await;
        assert_eq!(r["suggested_unit"], "hg-zfzd", "not returned yet");
        // That unit sends it back: not its duty.
        let handler = app.token(Role::Handler, suggested).await;
        let r = act(
            &app,
            &handler,
            &id,
            "return",
            json!({"reason": "不属于本单位职责"}),
        )
        .await;
        assert_eq!(r["state"], "accepted");
        assert_eq!(r["suggested_unit"], Value::Null, "{r}");
        assert_eq!(r["returned_by"], json!([suggested]));
        assert_eq!(r["return_reason"], "不属于本单位职责");
        // The same on the ticket and in the township dispatcher's queue.
        let got = app.get(&format!("/api/v1/tickets/{id}"), &hg).await;
        assert_eq!(got.body["suggested_unit"], Value::Null, "{}", got.body);
        assert_eq!(got.body["return_reason"], "不属于本单位职责");
        let queue = app.get("/api/v1/tickets?state=accepted", &hg).await;
        let item = queue.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|t| t["id"] == json!(id))
            .cloned()
            .expect("the returned ticket waits in the township's queue");
        assert_eq!(item["suggested_unit"], Value::Null, "{item}");
        assert_eq!(item["return_reason"], "不属于本单位职责");
        // Dispatched again (the dispatcher may still choose that unit by hand): the
        // reason is spent, who returned it is kept.
        let r = act(&app, &hg, &id, "assign", json!({"unit": suggested})).await;
        assert_eq!(r["return_reason"], Value::Null);
        assert_eq!(r["returned_by"], json!([suggested]));
        app.finish().await;
    }
}

#[tokio::test]
async fn a_township_dispatches_only_to_its_own_units() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hg = app.token(Role::Dispatcher, "hg").await;
        let district = app.token(Role::Dispatcher, "etdz").await;
        let id = grid_report(&app, "hg-01-g01", "city.exposed_garbage").await["id"]
            .as_str()
            .expect("id")
            .to_string();
        let before = app.count_rows("events").await;
        // Another township's agency, another township, and (from the district) a
        // township's agency without its township.
        for (token, unit, from) in [
            (&hg, "fl-zfzd", "hg"),
            (&hg, "fl", "hg"),
            (&hg, "zhzf", "hg"),
        ] {
            let r = app
                .post(
                    &format!("/api/v1/tickets/{id}/assign"),
                    token,
                    json!({"unit": unit}),
                )
                .await;
            assert_eq!(r.status, 422, "{from} -> {unit}: {}", r.body);
            assert_eq!(r.body["field"], "unit");
            let detail = r.body["detail"].as_str().expect("detail");
            assert!(
                detail.contains(&format!("{from} does not dispatch to {unit}")),
                "names the unit: {detail}"
            );
            let listed: Vec<&str> = detail
                .split_once("it dispatches to: ")
                .map(|(_, rest)| rest.split(" (").next().unwrap_or(rest))
                .expect("lists the valid targets")
                .split(", ")
                .collect();
            assert_eq!(
                listed,
                [
                    "hg-sfs", "hg-zfzd", "hg-scjgs", "hg-pcs", "hg-ajb", "hg-01", "hg-02", "hg-03",
                    "etdz"
                ],
                "{detail}"
            );
        }
        let hot = app.new_ticket().await["id"]
            .as_str()
            .expect("id")
            .to_string();
        let r = app
            .post(
                &format!("/api/v1/tickets/{hot}/assign"),
                &district,
                json!({"unit": "hg-zfzd"}),
            )
            .await;
        assert_eq!(r.status, 422, "{}", r.body);
        let detail = r.body["detail"].as_str().expect("detail");
        assert!(
            detail.contains("etdz does not dispatch to hg-zfzd")
                && detail.contains("dispatch to hg)"),
            "{detail}"
        );
        assert_eq!(
            app.count_rows("events").await,
            before + 1,
            "only the new ticket"
        );

        // A dispatcher of another township does not even see the ticket: to it the
        // ticket does not exist (issue 19: existence does not leak).
        let fl = app.token(Role::Dispatcher, "fl").await;
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/assign"),
                &fl,
                json!({"unit": "fl-zfzd"}),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.body);
        app.finish().await;
    }
}

#[tokio::test]
async fn a_grid_report_suggests_the_township_agency_the_catalogue_routes_to() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        for (grid, category, suggested) in [
            ("hg-01-g01", "city.exposed_garbage", "hg-zfzd"),
            ("fl-02-g01", "city.exposed_garbage", "fl-zfzd"),
            ("hg-02-g03", "food.unlicensed", "hg-scjgs"),
            ("by-01-g02", "dispute.neighbour", "by-sfs"),
            ("gs-02-g03", "order.public_security", "gs-pcs"),
            // No township route: the category's district department.
            ("hg-01-g01", "safety.gas", "jsj"),
        ] {
            let t = grid_report(&app, grid, category).await;
            assert_eq!(t["suggested_unit"], suggested, "{grid} {category}");
            let township = grid.split('-').next().expect("township");
            assert_eq!(t["centre"], township, "a grid report waits at its township");
        }
        // The township dispatcher takes the suggestion.
        let t = grid_report(&app, "fl-01-g01", "city.exposed_garbage").await;
        let fl = app.token(Role::Dispatcher, "fl").await;
        let id = t["id"].as_str().expect("id");
        let r = act(
            &app,
            &fl,
            id,
            "assign",
            json!({"unit": t["suggested_unit"]}),
        )
        .await;
        assert_eq!(r["unit"], "fl-zfzd");
        // A hotline call without an address gets the category's default unit.
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let mut b = ticket_body();
        b["location"] = json!({});
        let r = app.post("/api/v1/tickets", &hot, b).await;
        assert_eq!((r.status, &r.body["suggested_unit"]), (201, &json!("zhzf")));
        app.finish().await;
    }
}
