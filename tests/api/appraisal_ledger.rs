//! The appraisal's ledger over real HTTP (issue 21): entries people make move the
//! scores and withdrawals restore them; refusals (403, 422, 409) append nothing; a
//! submitted year closes its entries until the district reopens it; an idempotent
//! retry gets the first answer; grades show in the ranking with their coefficient
//! and yellow cards; a bulletin stays frozen and reports its drift; the log's
//! partial indexes serve the reads; the ticket consumers skip these events.

use serde_json::{Value, json};
use uuid::Uuid;
use yiwang::auth::Role;

use crate::support::{TestApp, engines};

const ENTRIES: &str = "/api/v1/appraisal/entries";

async fn events(app: &TestApp) -> i64 {
    app.count_rows("events").await
}

/// The score of `code` in the appraisal of `root`'s subtree for `period`.
async fn score(app: &TestApp, token: &str, period: &str, root: &str, code: &str) -> Value {
    let r = app
        .get(
            &format!("/api/v1/appraisal?period={period}&unit={root}"),
            token,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["units"]
        .as_array()
        .expect("units")
        .iter()
        .find(|u| u["unit"] == code)
        .unwrap_or_else(|| panic!("no {code}: {}", r.body))["score"]
        .clone()
}

fn finding(count: i64) -> Value {
    json!({"unit": "hg-zfzd", "period": "2026-03", "item": "archives.finding",
           "count": count, "note": "3月档案检查: 卷宗不全"})
}

#[tokio::test]
async fn an_entry_moves_the_score_and_its_withdrawal_restores_it() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hg = app.token(Role::Appraiser, "hg").await;
        assert_eq!(
            score(&app, &hg, "2026-03", "hg", "hg-zfzd").await,
            json!(100.0)
        );
        let r = app.post(ENTRIES, &hg, finding(2)).await;
        assert_eq!(r.status, 201, "{engine:?}: {}", r.body);
        let id = r.body["id"].as_str().expect("id").to_string();
        assert_eq!(r.body["township"], "hg");
        assert_eq!(r.body["count"], 2);
        assert_eq!(r.body["actor"], "appraiser@hg");
        // March, its quarter and its year all count it.
        assert_eq!(
            score(&app, &hg, "2026-03", "hg", "hg-zfzd").await,
            json!(98.0)
        );
        assert_eq!(
            score(&app, &hg, "2026-Q1", "hg", "hg-zfzd").await,
            json!(98.0)
        );
        assert_eq!(
            score(&app, &hg, "2026-04", "hg", "hg-zfzd").await,
            json!(100.0)
        );
        let a = app
            .get("/api/v1/appraisal?period=2026-03&unit=hg", &hg)
            .await;
        assert!(
            a.body
                .to_string()
                .contains(&format!("{{\"entry\":\"{id}\"}}")),
            "the entry is the evidence: {}",
            a.body
        );
        // The event is in the log, with its actor.
        let all = app.all_events().await;
        let e = all.last().expect("an event");
        assert_eq!(e.event_type, "AppraisalEntryRecorded");
        assert_eq!(e.stream_id.to_string(), id);
        assert_eq!(e.metadata["actor"], "appraiser@hg");
        assert_eq!(e.metadata["role"], "appraiser");

        let w = app
            .post(
                &format!("{ENTRIES}/{id}/withdraw"),
                &hg,
                json!({"reason": "录错单位"}),
            )
            .await;
        assert_eq!(w.status, 200, "{}", w.body);
        assert_eq!(w.body["withdrawn"]["reason"], "录错单位");
        assert_eq!(
            score(&app, &hg, "2026-03", "hg", "hg-zfzd").await,
            json!(100.0)
        );
        // Again: 409, nothing appended.
        let n = events(&app).await;
        let again = app
            .post(
                &format!("{ENTRIES}/{id}/withdraw"),
                &hg,
                json!({"reason": "再撤"}),
            )
            .await;
        assert_eq!(again.status, 409, "{}", again.body);
        assert_eq!(events(&app).await, n);
        // Listed, marked withdrawn, with its position.
        let list = app
            .get(&format!("{ENTRIES}?unit=hg-zfzd&period=2026"), &hg)
            .await;
        assert_eq!(list.status, 200, "{}", list.body);
        let items = list.body["items"].as_array().expect("items");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["withdrawn"]["actor"], "appraiser@hg");
        assert!(items[0]["position"].as_i64().is_some());
        // Another township's appraiser does not see it.
        let fl = app.token(Role::Appraiser, "fl").await;
        let list = app.get(&format!("{ENTRIES}?unit=hg-zfzd"), &fl).await;
        assert_eq!(list.body["items"], json!([]));
        // An appraisal entry's id is no ticket.
        let admin = app.token(Role::Admin, "etdz").await;
        let t = app.get(&format!("/api/v1/tickets/{id}"), &admin).await;
        assert_eq!(t.status, 404, "{}", t.body);
        let t = app
            .get(&format!("/api/v1/tickets/{id}/events"), &admin)
            .await;
        assert_eq!(t.status, 404, "{}", t.body);
        // The statistics projection reads past them without a hitch.
        app.catch_up().await;
        app.finish().await;
    }
}

#[tokio::test]
async fn refusals_append_nothing() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hg = app.token(Role::Appraiser, "hg").await;
        let district = app.token(Role::Appraiser, "etdz").await;
        let handler = app.token(Role::Handler, "hg-zfzd").await;
        let with = |f: &dyn Fn(&mut Value)| {
            let mut b = finding(1);
            f(&mut b);
            b
        };
        let eval = json!({"unit": "zhzf", "period": "2026", "item": "township_evaluation",
                          "points": 24.5, "note": "配合较好", "grade_word": "较好"});
        let first = app.post(ENTRIES, &hg, eval.clone()).await;
        assert_eq!(first.status, 201, "{}", first.body);
        let cases: Vec<(&str, &str, Value, u16, &str)> = vec![
            ("a handler", &handler, finding(1), 403, ""),
            (
                "another township's agency",
                &hg,
                with(&|b| b["unit"] = json!("fl-zfzd")),
                403,
                "",
            ),
            (
                "an unknown unit",
                &hg,
                with(&|b| b["unit"] = json!("nowhere")),
                422,
                "unit",
            ),
            (
                "a unit with no sheet",
                &hg,
                with(&|b| b["unit"] = json!("hg-pcs")),
                422,
                "unit",
            ),
            (
                "an unknown item",
                &hg,
                with(&|b| b["item"] = json!("no.such_item")),
                422,
                "item",
            ),
            (
                "an item computed from tickets",
                &hg,
                with(&|b| b["item"] = json!("supervision.late_completion")),
                422,
                "item",
            ),
            ("a count of 0", &hg, finding(0), 422, "count"),
            (
                "a fractional count",
                &hg,
                with(&|b| b["count"] = json!(1.5)),
                422,
                "count",
            ),
            (
                "points on a counted item",
                &hg,
                with(&|b| b["points"] = json!(-1)),
                422,
                "points",
            ),
            (
                "points out of the range",
                &hg,
                json!({"unit": "hg-zfzd", "period": "2026-Q1", "item": "bonus.stock_area",
                       "points": 2.5, "note": "n"}),
                422,
                "points",
            ),
            (
                "a count on a free item",
                &hg,
                json!({"unit": "hg-zfzd", "period": "2026-Q1", "item": "bonus.stock_area",
                       "count": 1, "note": "n"}),
                422,
                "count",
            ),
            (
                "a bad period",
                &hg,
                with(&|b| b["period"] = json!("2026-13")),
                422,
                "period",
            ),
            (
                "a day",
                &hg,
                with(&|b| b["period"] = json!("2026-03-01")),
                422,
                "period",
            ),
            (
                "an evaluation for a month",
                &hg,
                json!({"unit": "sthj", "period": "2026-03", "item": "township_evaluation",
                       "points": 20, "note": "n"}),
                422,
                "period",
            ),
            (
                "a second evaluation of the year",
                &hg,
                eval.clone(),
                409,
                "",
            ),
            (
                "a district evaluation naming no township",
                &district,
                json!({"unit": "sthj", "period": "2026", "item": "township_evaluation",
                       "points": 20, "note": "n"}),
                422,
                "township",
            ),
            (
                "another township's evaluation",
                &hg,
                json!({"unit": "sthj", "period": "2026", "item": "township_evaluation",
                       "points": 20, "note": "n", "township": "fl"}),
                403,
                "",
            ),
            (
                "an unknown ticket",
                &hg,
                with(&|b| b["tickets"] = json!([Uuid::now_v7()])),
                422,
                "tickets[0]",
            ),
            (
                "a photo never uploaded",
                &hg,
                with(&|b| b["photos"] = json!(["ab".repeat(32)])),
                422,
                "photos[0]",
            ),
            (
                "no note",
                &hg,
                with(&|b| b["note"] = json!("  ")),
                422,
                "note",
            ),
            (
                "an unknown field",
                &hg,
                with(&|b| b["score"] = json!(1)),
                422,
                "",
            ),
        ];
        for (what, token, body, status, field) in cases {
            let before = events(&app).await;
            let r = app.post(ENTRIES, token, body).await;
            assert_eq!(r.status, status, "{engine:?} {what}: {}", r.body);
            assert_eq!(
                r.header("content-type"),
                Some("application/problem+json"),
                "{what}"
            );
            if !field.is_empty() {
                assert_eq!(r.body["field"], field, "{what}: {}", r.body);
            }
            assert_eq!(events(&app).await, before, "{what} appended");
        }
        // The district names the township whose evaluation it records.
        let d = app
            .post(
                ENTRIES,
                &district,
                json!({"unit": "zhzf", "period": "2026", "item": "township_evaluation",
                       "points": 26, "note": "凤林评价", "township": "fl"}),
            )
            .await;
        assert_eq!(d.status, 201, "{}", d.body);
        assert_eq!(d.body["township"], "fl");
        // Withdrawals: another township's appraiser, a handler; 404 for nothing.
        let id = first.body["id"].as_str().expect("id");
        let fl = app.token(Role::Appraiser, "fl").await;
        for (token, status) in [(&fl, 403), (&handler, 403)] {
            let before = events(&app).await;
            let r = app
                .post(
                    &format!("{ENTRIES}/{id}/withdraw"),
                    token,
                    json!({"reason": "x"}),
                )
                .await;
            assert_eq!(r.status, status, "{}", r.body);
            assert_eq!(events(&app).await, before);
        }
        let r = app
            .post(
                &format!("{ENTRIES}/{}/withdraw", Uuid::now_v7()),
                &hg,
                json!({"reason": "x"}),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.body);
        app.finish().await;
    }
}

#[tokio::test]
async fn a_submitted_year_closes_its_entries_until_the_district_reopens_it() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hg = app.token(Role::Appraiser, "hg").await;
        let district = app.token(Role::Appraiser, "etdz").await;
        let sub = json!({"township": "hg", "year": 2026});
        let r = app
            .post("/api/v1/appraisal/submissions", &hg, sub.clone())
            .await;
        assert_eq!(r.status, 201, "{engine:?}: {}", r.body);
        assert_eq!(r.body["submitted"], true);
        let before = events(&app).await;
        for (path, body) in [
            ("/api/v1/appraisal/submissions", sub.clone()),
            (ENTRIES, finding(1)),
        ] {
            let r = app.post(path, &hg, body).await;
            assert_eq!(r.status, 409, "{path}: {}", r.body);
        }
        // Another township's year is not closed by it; a township closes its own only.
        let fl = app.token(Role::Appraiser, "fl").await;
        let r = app
            .post("/api/v1/appraisal/submissions", &fl, sub.clone())
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        // Only the district reopens.
        let reopen = json!({"township": "hg", "year": 2026, "reason": "补录督查结果"});
        let r = app
            .post("/api/v1/appraisal/submissions/reopen", &hg, reopen.clone())
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(events(&app).await, before);
        let r = app
            .post(
                "/api/v1/appraisal/submissions/reopen",
                &district,
                reopen.clone(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["submitted"], false);
        assert_eq!(r.body["reopened_reason"], "补录督查结果");
        assert_eq!(r.body["version"], 2);
        let r = app
            .post("/api/v1/appraisal/submissions/reopen", &district, reopen)
            .await;
        assert_eq!(r.status, 409, "{}", r.body);
        let r = app.post(ENTRIES, &hg, finding(1)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        // Closed again: version 3.
        let r = app.post("/api/v1/appraisal/submissions", &hg, sub).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["version"], 3);
        let list = app
            .get("/api/v1/appraisal/submissions?year=2026", &hg)
            .await;
        assert_eq!(list.status, 200, "{}", list.body);
        assert_eq!(list.body["items"][0]["township"], "hg");
        assert_eq!(list.body["items"][0]["submitted"], true);
        let none = app
            .get("/api/v1/appraisal/submissions?year=2025", &hg)
            .await;
        assert_eq!(none.body["items"], json!([]));
        app.finish().await;
    }
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_first_answer() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hg = app.token(Role::Appraiser, "hg").await;
        let key = Uuid::new_v4().to_string();
        let send = |body: Value| {
            let key = key.clone();
            let hg = hg.clone();
            let app = &app;
            async move {
                app.send(
                    reqwest::Method::POST,
                    ENTRIES,
                    Some(&hg),
                    Some(&body),
                    &[("Idempotency-Key", key)],
                )
                .await
            }
        };
        let first = send(finding(1)).await;
        assert_eq!(first.status, 201, "{}", first.body);
        let n = events(&app).await;
        let again = send(finding(1)).await;
        assert_eq!(again.status, 201, "{}", again.body);
        assert_eq!(again.body, first.body);
        assert_eq!(again.header("Idempotent-Replayed"), Some("true"));
        let other = send(finding(3)).await;
        assert_eq!(other.status, 422, "{}", other.body);
        assert_eq!(other.body["field"], "Idempotency-Key");
        assert_eq!(events(&app).await, n);
        // A submission retried after it succeeded: the first answer, not the 409.
        let key = Uuid::new_v4().to_string();
        let sub = json!({"township": "hg", "year": 2027});
        let mut answers = Vec::new();
        for _ in 0..2 {
            answers.push(
                app.send(
                    reqwest::Method::POST,
                    "/api/v1/appraisal/submissions",
                    Some(&hg),
                    Some(&sub),
                    &[("Idempotency-Key", key.clone())],
                )
                .await,
            );
        }
        assert_eq!(answers[1].status, 201, "{}", answers[1].body);
        assert_eq!(answers[1].body, answers[0].body);
        app.finish().await;
    }
}

fn row<'a>(ranking: &'a Value, unit: &str) -> &'a Value {
    ranking["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["unit"] == unit)
        .unwrap_or_else(|| panic!("no {unit} in {ranking}"))
}

#[tokio::test]
async fn grades_show_in_the_ranking_with_coefficients_and_yellow_cards() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hg = app.token(Role::Appraiser, "hg").await;
        let fl = app.token(Role::Appraiser, "fl").await;
        let district = app.token(Role::Appraiser, "etdz").await;
        let eval = |unit: &str, points: f64| {
            json!({"unit": unit, "period": "2026", "item": "township_evaluation",
                   "points": points, "note": "年度评价"})
        };
        // zhzf: (20 + 25) / 2 = 22.5; sthj: 22.5 from one township; scjg: 28.
        for (token, unit, points) in [
            (&hg, "zhzf", 20.0),
            (&fl, "zhzf", 25.0),
            (&hg, "sthj", 22.5),
            (&fl, "scjg", 28.0),
        ] {
            let r = app.post(ENTRIES, token, eval(unit, points)).await;
            assert_eq!(r.status, 201, "{engine:?} {unit}: {}", r.body);
        }
        let grade = |unit: &str, year: i32, grade: i64| json!({"unit": unit, "year": year, "grade": grade, "note": "区考核办评定"});
        // Only the district grades, departments only, 1 to 4.
        let before = events(&app).await;
        for (token, body, status) in [
            (&hg, grade("zhzf", 2026, 4), 403),
            (&district, grade("hg-zfzd", 2026, 4), 422),
            (&district, grade("zhzf", 2026, 5), 422),
        ] {
            let r = app.post("/api/v1/appraisal/grades", token, body).await;
            assert_eq!(r.status, status, "{}", r.body);
        }
        assert_eq!(events(&app).await, before);
        for (unit, year, g) in [("zhzf", 2025, 3), ("zhzf", 2026, 4), ("scjg", 2026, 1)] {
            let r = app
                .post("/api/v1/appraisal/grades", &district, grade(unit, year, g))
                .await;
            assert_eq!(r.status, 201, "{}", r.body);
        }
        let r = app
            .get("/api/v1/appraisal/ranking?period=2026&kind=department", &hg)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["kind"], "department");
        let items = r.body["items"].as_array().expect("items");
        assert_eq!(
            items.len(),
            3,
            "departments without a score are left out: {}",
            r.body
        );
        let scjg = row(&r.body, "scjg");
        assert_eq!(
            (scjg["rank"].clone(), scjg["score"].clone()),
            (json!(1), json!(28.0))
        );
        assert_eq!(scjg["grade"], 1);
        assert_eq!(scjg["coefficient"], 1.1);
        assert_eq!(scjg["yellow_card"], false);
        assert!(scjg.get("yellow_cards_in_a_row").is_none());
        let zhzf = row(&r.body, "zhzf");
        assert_eq!(zhzf["rank"], 2);
        assert_eq!(zhzf["score"], 22.5);
        assert_eq!(zhzf["grade"], 4);
        assert_eq!(zhzf["coefficient"], 0.8);
        assert_eq!(zhzf["yellow_card"], true);
        assert_eq!(zhzf["yellow_cards_in_a_row"], 2);
        // A tie shares the rank.
        let sthj = row(&r.body, "sthj");
        assert_eq!(sthj["rank"], 2);
        assert!(sthj.get("grade").is_none());
        // A later grade replaces the year's.
        let r = app
            .post(
                "/api/v1/appraisal/grades",
                &district,
                grade("zhzf", 2026, 2),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["version"], 2);
        let r = app
            .get("/api/v1/appraisal/ranking?period=2026&kind=department", &hg)
            .await;
        assert_eq!(row(&r.body, "zhzf")["coefficient"], 1.0);
        assert_eq!(row(&r.body, "zhzf")["yellow_card"], false);
        // The agencies' ranking: a township reader sees its own, ranked district-wide.
        let r = app
            .get(
                "/api/v1/appraisal/ranking?period=2026-03&kind=enforcement",
                &hg,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let units: Vec<&str> = r.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["unit"].as_str().expect("unit"))
            .collect();
        assert_eq!(units, vec!["hg-zfzd"]);
        let r = app
            .get("/api/v1/appraisal/ranking?period=2026-03&kind=police", &hg)
            .await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert_eq!(r.body["field"], "kind");
        let grid = app.token(Role::GridWorker, "hg-01-g01").await;
        let r = app
            .get(
                "/api/v1/appraisal/ranking?period=2026&kind=department",
                &grid,
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        app.finish().await;
    }
}

#[tokio::test]
async fn a_bulletin_stays_frozen_and_reports_its_drift() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hg = app.token(Role::Appraiser, "hg").await;
        let r = app.post(ENTRIES, &hg, finding(2)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let entry = r.body["id"].as_str().expect("id").to_string();
        let b = app
            .post(
                "/api/v1/appraisal/bulletins",
                &hg,
                json!({"period": "2026-03"}),
            )
            .await;
        assert_eq!(b.status, 201, "{engine:?}: {}", b.body);
        assert_eq!(b.body["unit"], "hg");
        let id = b.body["id"].as_str().expect("id").to_string();
        // Pinned to the entry's event (the last one at the horizon), with its hash.
        let all = app.all_events().await;
        let pinned = all
            .iter()
            .find(|e| e.position == b.body["position"].as_i64().expect("position"))
            .expect("the pinned event");
        assert_eq!(pinned.stream_id.to_string(), entry);
        assert_eq!(b.body["position_hash"], pinned.hash.as_str());
        let get = app
            .get(&format!("/api/v1/appraisal/bulletins/{id}"), &hg)
            .await;
        assert_eq!(get.status, 200, "{}", get.body);
        assert_eq!(get.body["drift"], json!([]));
        let frozen = get.body["answer"]["units"]
            .as_array()
            .expect("units")
            .iter()
            .find(|u| u["unit"] == "hg-zfzd")
            .expect("hg-zfzd")["score"]
            .clone();
        assert_eq!(frozen, json!(98.0));
        // A withdrawal later: the bulletin keeps 98 and shows the drift to 100.
        let w = app
            .post(
                &format!("{ENTRIES}/{entry}/withdraw"),
                &hg,
                json!({"reason": "复核不成立"}),
            )
            .await;
        assert_eq!(w.status, 200, "{}", w.body);
        let get2 = app
            .get(&format!("/api/v1/appraisal/bulletins/{id}"), &hg)
            .await;
        assert_eq!(get2.body["answer"], get.body["answer"]);
        assert_eq!(
            get2.body["drift"],
            json!([{"unit": "hg-zfzd", "frozen": 98.0, "now": 100.0}])
        );
        // Listed by period, without the answer; read by the district too, not by
        // another township.
        let list = app
            .get("/api/v1/appraisal/bulletins?period=2026-03", &hg)
            .await;
        assert_eq!(list.status, 200, "{}", list.body);
        assert_eq!(list.body["items"][0]["id"], id.as_str());
        assert!(list.body["items"][0].get("answer").is_none());
        let none = app
            .get("/api/v1/appraisal/bulletins?period=2026-04", &hg)
            .await;
        assert_eq!(none.body["items"], json!([]));
        let analyst = app.token(Role::Analyst, "etdz").await;
        let r = app
            .get(&format!("/api/v1/appraisal/bulletins/{id}"), &analyst)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let fl = app.token(Role::Appraiser, "fl").await;
        let r = app
            .get(&format!("/api/v1/appraisal/bulletins/{id}"), &fl)
            .await;
        assert_eq!(r.status, 404, "{}", r.body);
        // A township publishes its own only.
        let before = events(&app).await;
        let r = app
            .post(
                "/api/v1/appraisal/bulletins",
                &hg,
                json!({"period": "2026-03", "unit": "fl"}),
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(events(&app).await, before);
        app.finish().await;
    }
}

#[tokio::test]
async fn the_feed_shows_appraisal_events_to_their_appraisers_only() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hg = app.token(Role::Appraiser, "hg").await;
        let r = app.post(ENTRIES, &hg, finding(1)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["id"].as_str().expect("id").to_string();
        let w = app
            .post(
                &format!("{ENTRIES}/{id}/withdraw"),
                &hg,
                json!({"reason": "r"}),
            )
            .await;
        assert_eq!(w.status, 200, "{}", w.body);
        app.new_ticket().await;
        app.settle().await;
        let types = |r: &crate::support::Resp| -> Vec<String> {
            r.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|e| e["type"].as_str().expect("type").to_string())
                .collect()
        };
        let appraisal = |t: &[String]| t.iter().filter(|t| t.starts_with("Appraisal")).count();
        for (role, unit, seen) in [
            (Role::Appraiser, "hg", 2),
            (Role::Admin, "etdz", 2),
            (Role::Analyst, "hg", 2),
            (Role::Appraiser, "fl", 0),
            (Role::Handler, "hg-zfzd", 0),
            (Role::Dispatcher, "etdz", 0),
        ] {
            let token = app.token(role, unit).await;
            let r = app.get("/api/v1/events?after=0&limit=100", &token).await;
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(appraisal(&types(&r)), seen, "{role:?} {unit}: {}", r.body);
        }
        app.finish().await;
    }
}

#[tokio::test]
async fn the_reads_use_the_partial_indexes() {
    use yiwang::repo::appraisal::{bulletins_sql, explain, ledger_sql};
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let pool = app.app.store.pool();
        for (sql, index) in [
            (ledger_sql(&pool, false), "events_appraisal"),
            (bulletins_sql(&pool, false), "events_bulletins"),
        ] {
            let plan = explain(&pool, &sql).await.expect("explain").join("\n");
            eprintln!("{engine:?} {index}: {plan}");
            assert!(plan.contains(index), "{engine:?}: {sql}\n{plan}");
        }
        app.finish().await;
    }
}

#[tokio::test]
async fn two_evaluations_at_once_leave_one() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hg = app.token(Role::Appraiser, "hg").await;
        let district = app.token(Role::Appraiser, "etdz").await;
        let eval = |points: f64, township: Option<&str>| {
            let mut b = json!({"unit": "jsj", "period": "2026", "item": "township_evaluation",
                               "points": points, "note": "年度评价"});
            if let Some(t) = township {
                b["township"] = json!(t);
            }
            b
        };
        let (a, b) = tokio::join!(
            app.post(ENTRIES, &hg, eval(20.0, None)),
            app.post(ENTRIES, &district, eval(21.0, Some("hg"))),
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "{engine:?}: {} / {}", a.body, b.body);
        let list = app
            .get(&format!("{ENTRIES}?unit=jsj&township=hg"), &hg)
            .await;
        assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1));
        // Withdrawn, the next one takes its place.
        let first = if a.status == 201 { &a } else { &b };
        let id = first.body["id"].as_str().expect("id");
        let w = app
            .post(
                &format!("{ENTRIES}/{id}/withdraw"),
                &hg,
                json!({"reason": "重评"}),
            )
            .await;
        assert_eq!(w.status, 200, "{}", w.body);
        let again = app.post(ENTRIES, &hg, eval(23.0, None)).await;
        assert_eq!(again.status, 201, "{}", again.body);
        assert_eq!(
            score(&app, &district, "2026", "etdz", "jsj").await,
            json!(23.0)
        );
        app.finish().await;
    }
}
