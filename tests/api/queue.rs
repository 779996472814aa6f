//! The queue on the server (issue 22, point 2): `q` over the number, title,
//! description and address (Chinese substrings, two characters and one), `category`,
//! `overdue=true` with any state, `sort`, `total`; one ticket by number; a close as
//! duplicate naming the ticket by number; bad parameters named.

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use serde_json::{Value, json};
use yiwang::auth::Role;
use yiwang::clock::Clock;

use crate::support::{Resp, TestApp, engines, ticket_body};

fn monday_10h() -> DateTime<Utc> {
    Shanghai
        .with_ymd_and_hms(2026, 10, 12, 10, 0, 0)
        .single()
        .expect("a valid local time")
        .with_timezone(&Utc)
}

/// A hotline ticket with this text; returns (id, number).
async fn ticket(
    app: &TestApp,
    title: &str,
    description: &str,
    address: &str,
    category: &str,
    grid: &str,
) -> (String, String) {
    let hot = app.token(Role::HotlineAgent, "etdz").await;
    let mut b = ticket_body();
    b["title"] = json!(title);
    b["description"] = json!(description);
    b["category"] = json!(category);
    b["location"]["address"] = json!(address);
    b["location"]["grid"] = json!(grid);
    let r = app.post("/api/v1/tickets", &hot, b).await;
    assert_eq!(r.status, 201, "create: {}", r.body);
    (
        r.body["id"].as_str().expect("id").to_string(),
        r.body["number"].as_str().expect("number").to_string(),
    )
}

/// The ids of a queue page, in order, and its total.
async fn page(app: &TestApp, token: &str, query: &str) -> (Vec<String>, i64, Value) {
    let r = app.get(&format!("/api/v1/tickets?{query}"), token).await;
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    let ids = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_string())
        .collect();
    let total = r.body["total"].as_i64().expect("total");
    (ids, total, r.body)
}

fn assert_problem(r: &Resp, status: u16, field: Option<&str>, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{what}"
    );
    assert!(
        r.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{what}: a refusal says why: {}",
        r.body
    );
    if let Some(f) = field {
        assert_eq!(r.body["field"], json!(f), "{what}: names the parameter");
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn queue_search_filters_sorts_and_counts_on_the_server() {
    for engine in engines().await {
        let clock = Clock::manual(monday_10h());
        let app = TestApp::spawn_with_clock(engine, clock.clone()).await;
        let admin = app.token(Role::Admin, "etdz").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;

        let (a, a_no) = ticket(
            &app,
            "路边垃圾堆积",
            "小区门口垃圾三天未清运",
            "皇冠街道幸福小区3号楼",
            "city.exposed_garbage",
            "hg-01-g01",
        )
        .await;
        clock.set(monday_10h() + Duration::minutes(1));
        let (b, b_no) = ticket(
            &app,
            "夜间噪音扰民",
            "工地夜间施工噪音很大",
            "凤林街道中山路88号",
            "order.social_noise",
            "fl-01-g01",
        )
        .await;
        clock.set(monday_10h() + Duration::minutes(2));
        let (c, _) = ticket(
            &app,
            "占道经营",
            "流动摊贩占用人行道 Street Vendor",
            "皇冠街道中山路12号",
            "city.street_vendor",
            "hg-01-g02",
        )
        .await;
        clock.set(monday_10h() + Duration::minutes(3));
        // Both bigrams of 垃圾桶, but not the word: the index's candidate, not a match.
        let (d, _) = ticket(
            &app,
            "圾桶旁有垃圾",
            "无",
            "皇冠街道",
            "city.exposed_garbage",
            "hg-01-g01",
        )
        .await;

        // By number: the ticket, and only it.
        let (ids, total, _) = page(&app, &admin, &format!("q={}", enc(&b_no))).await;
        assert_eq!(
            (ids, total),
            (vec![b.clone()], 1),
            "{engine:?}: q by number"
        );
        // By a two-character word of the address, in two tickets.
        let (ids, total, _) = page(&app, &admin, &format!("q={}", enc("中山"))).await;
        assert_eq!(
            ids,
            [c.clone(), b.clone()],
            "{engine:?}: q=中山, newest first"
        );
        assert_eq!(total, 2);
        let (ids, _, _) = page(&app, &admin, &format!("q={}", enc("幸福小区"))).await;
        assert_eq!(ids, vec![a.clone()], "{engine:?}: q=幸福小区");
        // By a word of the title, of the description, by one character, any case.
        let (ids, _, _) = page(&app, &admin, &format!("q={}", enc("噪音"))).await;
        assert_eq!(ids, vec![b.clone()], "{engine:?}: q=噪音");
        let (ids, _, _) = page(&app, &admin, &format!("q={}", enc("摊贩"))).await;
        assert_eq!(ids, vec![c.clone()], "{engine:?}: q=摊贩");
        let (ids, _, _) = page(&app, &admin, &format!("q={}", enc("噪"))).await;
        assert_eq!(ids, vec![b.clone()], "{engine:?}: q=噪");
        let (ids, _, _) = page(&app, &admin, "q=street%20VENDOR").await;
        assert_eq!(ids, vec![c.clone()], "{engine:?}: q in either case");
        let (ids, total, _) = page(&app, &admin, &format!("q={}", enc("垃圾"))).await;
        assert_eq!(
            (ids, total),
            (vec![d.clone(), a.clone()], 2),
            "{engine:?}: q=垃圾"
        );
        let (ids, total, _) = page(&app, &admin, &format!("q={}", enc("垃圾桶"))).await;
        assert_eq!(
            (ids, total),
            (vec![], 0),
            "{engine:?}: 垃圾桶 is in no ticket"
        );
        let (ids, _, _) = page(&app, &admin, &format!("q={}", enc("不存在的词"))).await;
        assert!(ids.is_empty());
        // Within the caller's scope only: 凤林's ticket is not 皇冠's.
        let hg = app.token(Role::Dispatcher, "hg").await;
        let (ids, total, _) = page(&app, &hg, &format!("q={}", enc("中山"))).await;
        assert_eq!((ids, total), (vec![c.clone()], 1), "{engine:?}: hg's scope");

        // Category, alone and with q.
        let (ids, total, _) = page(&app, &admin, "category=city.exposed_garbage").await;
        assert_eq!((ids, total), (vec![d.clone(), a.clone()], 2), "{engine:?}");
        let (ids, _, _) = page(
            &app,
            &admin,
            &format!("q={}&category=city.street_vendor", enc("中山")),
        )
        .await;
        assert_eq!(ids, vec![c.clone()], "{engine:?}: q and category");

        // Sort orders and total with paging.
        let (ids, total, body) = page(&app, &admin, "limit=3").await;
        assert_eq!(total, 4);
        assert_eq!(
            ids,
            [d.clone(), c.clone(), b.clone()],
            "{engine:?}: newest first"
        );
        let cursor = body["next_cursor"]
            .as_str()
            .expect("a next page")
            .to_string();
        let (ids, total, body) = page(&app, &admin, &format!("limit=3&cursor={cursor}")).await;
        assert_eq!((ids, total), (vec![a.clone()], 4), "{engine:?}: page 2");
        assert!(body["next_cursor"].is_null());
        let (ids, _, _) = page(&app, &admin, "sort=-created").await;
        assert_eq!(ids, [d.clone(), c.clone(), b.clone(), a.clone()]);
        let (ids, _, body) = page(&app, &admin, "sort=created&limit=3").await;
        assert_eq!(
            ids,
            [a.clone(), b.clone(), c.clone()],
            "{engine:?}: oldest first"
        );
        let cursor = body["next_cursor"]
            .as_str()
            .expect("a next page")
            .to_string();
        let (ids, _, _) = page(
            &app,
            &admin,
            &format!("sort=created&limit=3&cursor={cursor}"),
        )
        .await;
        assert_eq!(ids, vec![d.clone()], "{engine:?}: oldest first, page 2");

        // A search's pages: `total` counts every page, not those after the cursor,
        // in either order (a search's page is chosen among the index's matches).
        let hg_text = enc("皇冠街道");
        let (ids, total, body) = page(&app, &admin, &format!("q={hg_text}&limit=2")).await;
        assert_eq!(
            (ids, total),
            (vec![d.clone(), c.clone()], 3),
            "{engine:?}: search page 1"
        );
        let cursor = body["next_cursor"]
            .as_str()
            .expect("a next page")
            .to_string();
        let (ids, total, body) = page(
            &app,
            &admin,
            &format!("q={hg_text}&limit=2&cursor={cursor}"),
        )
        .await;
        assert_eq!(
            (ids, total),
            (vec![a.clone()], 3),
            "{engine:?}: search page 2"
        );
        assert!(body["next_cursor"].is_null(), "{engine:?}: the last page");
        let (ids, total, body) =
            page(&app, &admin, &format!("q={hg_text}&sort=created&limit=2")).await;
        assert_eq!((ids, total), (vec![a.clone(), c.clone()], 3), "{engine:?}");
        let cursor = body["next_cursor"]
            .as_str()
            .expect("a next page")
            .to_string();
        let (ids, total, _) = page(
            &app,
            &admin,
            &format!("q={hg_text}&sort=created&limit=2&cursor={cursor}"),
        )
        .await;
        assert_eq!(
            (ids, total),
            (vec![d.clone()], 3),
            "{engine:?}: oldest first, page 2"
        );
        // With a filter on the view: the same search within a category.
        let (ids, total, _) = page(
            &app,
            &admin,
            &format!("q={hg_text}&category=city.exposed_garbage&limit=1"),
        )
        .await;
        assert_eq!(
            (ids, total),
            (vec![d.clone()], 2),
            "{engine:?}: search and category"
        );

        // Overdue: a and c dispatched (a first, so its deadlines fall first), then
        // the clock passes both sign deadlines.
        for (id, unit, mins) in [(&a, "zhzf", 10), (&c, "scjg", 20)] {
            clock.set(monday_10h() + Duration::minutes(mins));
            let r = app
                .post(
                    &format!("/api/v1/tickets/{id}/assign"),
                    &disp,
                    json!({"unit": unit}),
                )
                .await;
            assert_eq!(r.status, 200, "{engine:?} assign: {}", r.body);
        }
        let (ids, total, _) = page(&app, &admin, "overdue=true").await;
        assert_eq!((ids, total), (vec![], 0), "{engine:?}: nothing late yet");
        let (ids, _, _) = page(&app, &admin, "sort=deadline").await;
        assert_eq!(
            ids,
            [a.clone(), c.clone(), b.clone(), d.clone()],
            "{engine:?}: by deadline, those without after, oldest first"
        );
        clock.set(monday_10h() + Duration::days(30));
        let (ids, total, _) = page(&app, &admin, "overdue=true").await;
        assert_eq!(
            (ids, total),
            (vec![a.clone(), c.clone()], 2),
            "{engine:?}: most overdue first"
        );
        let (ids, _, _) = page(&app, &admin, "overdue=true&sort=-created").await;
        assert_eq!(
            ids,
            [c.clone(), a.clone()],
            "{engine:?}: overdue, newest first"
        );
        for (state, want) in [
            ("accepted", vec![]),
            ("assigned", vec![a.clone(), c.clone()]),
            ("handled", vec![]),
            ("verified", vec![]),
            ("closed", vec![]),
        ] {
            let (ids, total, _) = page(&app, &admin, &format!("overdue=true&state={state}")).await;
            assert_eq!(total, want.len() as i64, "{engine:?}: overdue, {state}");
            assert_eq!(ids, want, "{engine:?}: overdue, {state}");
        }
        let (ids, _, _) = page(&app, &admin, &format!("overdue=true&q={}", enc("占道"))).await;
        assert_eq!(ids, vec![c.clone()], "{engine:?}: overdue and q");
        // A dispatcher's scope with a search: 中山路 is in both townships.
        let (ids, total, _) = page(&app, &admin, &format!("q={}", enc("中山路"))).await;
        assert_eq!(
            (ids, total),
            (vec![c.clone(), b.clone()], 2),
            "{engine:?}: admin"
        );
        for (township, want) in [("hg", &c), ("fl", &b)] {
            let t = app.token(Role::Dispatcher, township).await;
            let (ids, total, _) = page(&app, &t, &format!("q={}", enc("中山路"))).await;
            assert_eq!(
                (ids, total),
                (vec![want.clone()], 1),
                "{engine:?}: {township}"
            );
        }
        crate::support::assert_search_filters_follow_view(
            &app.app.store.pool(),
            &format!("{engine:?} after assign"),
        )
        .await;
        let (ids, _, _) = page(&app, &admin, "overdue=true&category=city.exposed_garbage").await;
        assert_eq!(ids, vec![a.clone()], "{engine:?}: overdue and category");
        // `unit` with overdue is the unit's subtree.
        let (ids, _, _) = page(&app, &admin, "overdue=true&unit=zhzf").await;
        assert_eq!(ids, vec![a.clone()], "{engine:?}: overdue within zhzf");
        let (ids, _, _) = page(&app, &admin, "overdue=true&unit=etdz").await;
        assert_eq!(
            ids,
            [a.clone(), c.clone()],
            "{engine:?}: overdue within etdz"
        );
        let (ids, _, _) = page(&app, &admin, "overdue=true&unit=fl").await;
        assert!(ids.is_empty(), "{engine:?}: overdue within fl");
        // Each ticket on the overdue page says it is overdue.
        let (_, _, body) = page(&app, &admin, "overdue=true&limit=1").await;
        assert_eq!(body["items"][0]["overdue"], json!(true));
        assert_eq!(body["next_cursor"], json!("o1"));
        let (ids, _, _) = page(&app, &admin, "overdue=true&limit=1&cursor=o1").await;
        assert_eq!(ids, vec![c.clone()], "{engine:?}: overdue page 2");

        // One ticket by number, as by id; out of scope or absent: 404 alike.
        let r = app
            .get(&format!("/api/v1/tickets/by-number/{a_no}"), &admin)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["id"], json!(a));
        let by_id = app.get(&format!("/api/v1/tickets/{a}"), &admin).await;
        assert_eq!(r.body, by_id.body, "{engine:?}: the same JSON as by id");
        let fl = app.token(Role::Dispatcher, "fl").await;
        let r = app
            .get(&format!("/api/v1/tickets/by-number/{a_no}"), &fl)
            .await;
        assert_problem(&r, 404, None, "out of scope");
        let hidden = r.body["detail"].clone();
        let r = app
            .get("/api/v1/tickets/by-number/20000101-999999", &fl)
            .await;
        assert_problem(&r, 404, None, "absent");
        assert_eq!(
            r.body["detail"]
                .as_str()
                .map(|s| s.replace("20000101-999999", "N")),
            hidden.as_str().map(|s| s.replace(&a_no, "N")),
            "{engine:?}: the same words whether it exists or not"
        );
        let r = app.get("/api/v1/tickets/by-number/garbage", &admin).await;
        assert_problem(&r, 404, None, "not a number");

        // Close as duplicate, naming the earlier ticket by its number.
        let r = app
            .post(
                &format!("/api/v1/tickets/{d}/close"),
                &disp,
                json!({"code": "duplicate", "duplicate_of": a_no}),
            )
            .await;
        assert_eq!(r.status, 200, "{engine:?} close by number: {}", r.body);
        assert_eq!(r.body["duplicate_of"], json!(a));
        let before = app.count_rows("events").await;
        let r = app
            .post(
                &format!("/api/v1/tickets/{b}/close"),
                &disp,
                json!({"code": "duplicate", "duplicate_of": "20000101-999999"}),
            )
            .await;
        assert_problem(&r, 404, None, "duplicate_of: no such number");
        assert_eq!(app.count_rows("events").await, before, "nothing appended");

        // Bad parameters: named, nothing answered.
        for (query, field) in [
            ("sort=newest", "sort"),
            ("category=no.such", "category"),
            ("state=open", "state"),
            ("limit=0", "limit"),
            ("sort=deadline&cursor=garbage", "cursor"),
            ("sort=created&cursor=o-5", "cursor"),
            ("cursor=o5", "cursor"),
            ("overdue=true&unit=nowhere", "unit"),
            ("q=%01x", "q"),
        ] {
            let r = app.get(&format!("/api/v1/tickets?{query}"), &admin).await;
            assert_problem(&r, 422, Some(field), &format!("{engine:?} {query}"));
        }
        let long = "长".repeat(101);
        let r = app
            .get(&format!("/api/v1/tickets?q={}", enc(&long)), &admin)
            .await;
        assert_problem(&r, 422, Some("q"), "q too long");
        let r = app.get("/api/v1/tickets?overdue=perhaps", &admin).await;
        assert_problem(&r, 422, Some("query"), "overdue=perhaps");
        app.finish().await;
    }
}

/// Tickets written without a search entry (a database from before migration 0012,
/// a restore) are indexed by the start-up backfill.
#[tokio::test]
async fn the_backfill_indexes_tickets_that_have_no_search_entry() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let admin = app.token(Role::Admin, "etdz").await;
        let (a, _) = ticket(
            &app,
            "井盖缺失",
            "人行道井盖丢失",
            "皇冠街道长江路",
            "city.exposed_garbage",
            "hg-01-g01",
        )
        .await;
        let pool = app.app.store.pool();
        let wipe = [
            "DELETE FROM ticket_search",
            "UPDATE ticket_view SET due_at = NULL",
        ];
        for sql in wipe {
            match &pool {
                yiwang::store::Pool::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
                yiwang::store::Pool::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
            }
            .expect("wipe");
        }
        if let yiwang::store::Pool::Sqlite(p) = &pool {
            sqlx::query("INSERT INTO ticket_grams (ticket_grams) VALUES ('delete-all')")
                .execute(p)
                .await
                .expect("wipe grams");
        }
        let (ids, _, _) = page(&app, &admin, &format!("q={}", enc("井盖"))).await;
        assert!(ids.is_empty(), "{engine:?}: wiped");
        let n = yiwang::repo::tickets::search::backfill(&pool)
            .await
            .expect("backfill");
        assert_eq!(n, 1, "{engine:?}");
        let (ids, _, _) = page(&app, &admin, &format!("q={}", enc("长江路"))).await;
        assert_eq!(ids, [a], "{engine:?}: indexed again");
        crate::support::assert_search_filters_follow_view(
            &app.app.store.pool(),
            &format!("{engine:?} after the backfill"),
        )
        .await;
        app.finish().await;
    }
}
