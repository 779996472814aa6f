//! The dispatch desk as a dispatcher works it (issue 22, points 2, 3 and 5), in
//! headless Chromium against the real service (SQLite, and PostgreSQL when
//! `YIWANG_TEST_DATABASE_URL` is set): the overdue view sorted by
//! deadline with amber (warned) and red (late) chips and the filters kept in the URL;
//! search by number and by a word of the address among thousands of tickets; a
//! returned ticket that is not suggested back to the unit that returned it, dispatched
//! with a co-unit (协办); bulk dispatch of five tickets with a partial failure shown;
//! the table view sorted and remembered; the keyboard shortcuts; the urgent-ticket
//! notice. Each in Chinese at 1366 px and in English on a 360 px phone, screenshots
//! kept, no console errors, nothing wider than the screen.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;
use yiwang::auth::Role;
use yiwang::clock::Clock;
use yiwang::sla::watcher::run_once;

use crate::browser::{Browser, ONE_AT_A_TIME, Screen, browser};
use crate::helpers::{act, create};
use crate::support::{Engine, TestApp, engines, ticket_body};

mod tools;

fn screen(english: bool) -> Screen {
    if english { Screen::Phone } else { Screen::Wide }
}

/// Signs in, switches to English if asked, and opens `path` on the desk.
async fn open_desk(b: &Browser, token: &str, english: bool, path: &str) {
    b.sign_in(token, "/desk").await;
    if english {
        b.use_english().await;
    }
    b.goto(path).await;
    loaded(b, path).await;
}

/// Waits for the desk's list to have loaded (after a filter change too).
async fn loaded(b: &Browser, what: &str) {
    b.until(
        &format!("the desk's list ({what})"),
        "return document.body.classList.contains('ready') && document.body.dataset.loaded === 'true'",
    )
    .await;
}

async fn js(b: &Browser, script: &str) -> Value {
    b.client.execute(script, vec![]).await.expect("script")
}

/// The cards shown: (number, SLA level) in order.
async fn cards(b: &Browser) -> Vec<(String, String)> {
    let v = js(
        b,
        "return [...document.querySelectorAll('#queue li.ticket')].map((li) => \
           [li.dataset.number, (li.querySelector('.sla') || {dataset: {}}).dataset.sla || '']);",
    )
    .await;
    v.as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or_default().to_string(),
                r[1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn shown_total(b: &Browser) -> i64 {
    js(
        b,
        "return Number(document.getElementById('count').dataset.total)",
    )
    .await
    .as_i64()
    .expect("a total")
}

fn items(v: &Value) -> &Vec<Value> {
    v["items"].as_array().expect("items")
}

/// The SLA level the desk should show for a ticket (as desk-sla.js decides it).
fn level(t: &Value) -> &'static str {
    if t["state"] == "accepted" {
        return "wait";
    }
    let d = &t["deadlines"];
    let (due, warned) = if t["handler"].is_null() {
        (&d["sign_due_at"], &d["sign_warned"])
    } else {
        (&d["handle_due_at"], &d["handle_warned"])
    };
    let due: chrono::DateTime<Utc> = due
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("a deadline");
    if due <= Utc::now() {
        "late"
    } else if warned == &json!(true) {
        "warn"
    } else {
        "ok"
    }
}

fn id_of(t: &Value) -> String {
    t["id"].as_str().expect("id").to_string()
}

// ---------------------------------------------------------------------------------
// Point 3 and the overdue view of point 2.

/// Thirty tickets dispatched to 综合行政执法局 eight hours apart over the last ten
/// days, each signed within the hour, and one waiting undispatched for three hours;
/// the SLA watcher has run at the present moment.
async fn deadlines_spread(engine: Engine) -> TestApp {
    let now = Utc::now();
    let clock = Clock::manual(now - Duration::days(10));
    let app = TestApp::spawn_with_clock(engine, clock.clone()).await;
    let disp = app.token(Role::Dispatcher, "etdz").await;
    let hand = app.token(Role::Handler, "zhzf").await;
    for i in 0..30 {
        let at = now - Duration::hours(8 * (30 - i));
        clock.set(at);
        let mut b = ticket_body();
        b["title"] = json!(format!("时限测试 {i}"));
        let id = id_of(&create(&app, b).await);
        act(&app, &disp, &id, "assign", json!({"unit": "zhzf"})).await;
        clock.set(at + Duration::minutes(30));
        act(&app, &hand, &id, "sign", json!({"handler": "钱工"})).await;
    }
    clock.set(now - Duration::hours(3));
    let mut b = ticket_body();
    b["title"] = json!("等待派单的工单");
    create(&app, b).await;
    clock.set(Utc::now());
    while run_once(&app.app).await.expect("a watcher round") > 0 {}
    app
}

async fn sla_and_overdue_view(name: &'static str, english: bool) {
    let _turn = ONE_AT_A_TIME.lock().await;
    for engine in engines().await {
        sla_and_overdue_on(name, english, engine).await;
    }
}

async fn sla_and_overdue_on(name: &'static str, english: bool, engine: Engine) {
    let app = deadlines_spread(engine).await;
    let Some(mut b) = browser(&app, name, screen(english)).await else {
        return;
    };
    let disp = app.token(Role::Dispatcher, "etdz").await;

    // Every dispatched ticket, nearest deadline first: red, then amber, then the rest.
    let api = app
        .get(
            "/api/v1/tickets?state=assigned&sort=deadline&limit=50",
            &disp,
        )
        .await;
    assert_eq!(api.status, 200, "{}", api.body);
    let expected: Vec<(String, String)> = items(&api.body)
        .iter()
        .map(|t| {
            (
                t["number"].as_str().expect("n").to_string(),
                level(t).to_string(),
            )
        })
        .collect();
    let count = |l: &str| expected.iter().filter(|(_, x)| x == l).count();
    assert!(
        count("late") > 0 && count("warn") > 0 && count("ok") > 0,
        "{expected:?}"
    );
    open_desk(&b, &disp, english, "/desk?state=assigned&sort=deadline").await;
    assert_eq!(
        cards(&b).await,
        expected,
        "{name}: the desk shows the API's order and levels"
    );
    assert_eq!(
        js(&b, "return document.getElementById('f-sort').value").await,
        "deadline"
    );
    let colours = js(
        &b,
        "const c = (s) => getComputedStyle(document.querySelector(s)).backgroundColor; \
         return [c('.sla-late'), c('.sla-warn'), document.querySelector('.sla-late').textContent, \
                 document.querySelector('.sla-warn').textContent];",
    )
    .await;
    assert_eq!(colours[0], "rgb(198, 40, 40)", "red once late");
    assert_eq!(colours[1], "rgb(255, 179, 0)", "amber once warned");
    let (over, left) = if english {
        ("overdue", "left")
    } else {
        ("超期", "剩")
    };
    assert!(
        colours[2].as_str().unwrap_or_default().contains(over),
        "{colours}"
    );
    assert!(
        colours[3].as_str().unwrap_or_default().contains(left),
        "{colours}"
    );
    b.keep_shot(if english { "sla-en" } else { "sla-zh" }).await;

    // The default view (待我派单) shows the waiting age of the undispatched ticket.
    b.goto("/desk").await;
    loaded(&b, "the default view").await;
    let wait = b.text("#queue li.ticket .sla-wait").await;
    let age = if english {
        "Waiting 3 h"
    } else {
        "已等待 3 小时"
    };
    assert!(wait.contains(age), "{name}: {wait}");

    // 仅看超期 from the default view: every overdue ticket, nearest deadline first.
    b.click("#f-overdue").await;
    b.until(
        "the overdue view in the URL",
        "return location.search.includes('overdue=1') && document.body.dataset.loaded === 'true'",
    )
    .await;
    let api = app
        .get("/api/v1/tickets?overdue=true&sort=deadline&limit=50", &disp)
        .await;
    let overdue: Vec<(String, String)> = items(&api.body)
        .iter()
        .map(|t| {
            (
                t["number"].as_str().expect("n").to_string(),
                "late".to_string(),
            )
        })
        .collect();
    assert_eq!(overdue.len(), count("late"), "{}", api.body);
    let dues: Vec<&str> = items(&api.body)
        .iter()
        .map(|t| t["deadlines"]["handle_due_at"].as_str().unwrap_or_default())
        .collect();
    let mut sorted = dues.clone();
    sorted.sort();
    assert_eq!(dues, sorted, "the API sorts by deadline");
    assert_eq!(cards(&b).await, overdue, "{name}: the overdue view");
    assert_eq!(shown_total(&b).await, overdue.len() as i64);
    b.keep_shot(if english { "overdue-en" } else { "overdue-zh" })
        .await;

    // A reload keeps the filters; back and forward walk them.
    b.client.refresh().await.expect("reload");
    loaded(&b, "the reloaded overdue view").await;
    assert_eq!(
        js(&b, "return document.getElementById('f-overdue').checked").await,
        true
    );
    assert_eq!(cards(&b).await, overdue, "{name}: after a reload");
    b.client.back().await.expect("back");
    b.until(
        "the default view again",
        "return !location.search.includes('overdue') && document.body.dataset.loaded === 'true' \
           && !document.getElementById('f-overdue').checked",
    )
    .await;
    b.client.forward().await.expect("forward");
    b.until(
        "the overdue view again",
        "return location.search.includes('overdue=1') && document.body.dataset.loaded === 'true' \
           && document.getElementById('f-overdue').checked",
    )
    .await;
    assert_eq!(cards(&b).await, overdue, "{name}: after back and forward");
    b.finish().await;
    app.finish().await;
}

#[tokio::test]
async fn the_overdue_view_is_sorted_by_deadline_with_amber_and_red_in_chinese() {
    sla_and_overdue_view("desk-sla-zh", false).await;
}

#[tokio::test]
async fn the_overdue_view_is_sorted_by_deadline_with_amber_and_red_in_english_on_a_phone() {
    sla_and_overdue_view("desk-sla-en", true).await;
}

// ---------------------------------------------------------------------------------
// Search (point 2) among thousands of tickets.

const ROADS: [&str; 8] = [
    "海滨北路",
    "青岛路",
    "文化西路",
    "世昌大道",
    "新威路",
    "统一路",
    "昆明路",
    "齐鲁大道",
];

/// `n` tickets through the API, eight at a time (plain requests, without the suite's
/// OpenAPI check of each answer, to be quick); three more on 金沙滩路.
async fn seed(app: &TestApp, n: usize) -> Vec<Value> {
    let hot = app.token(Role::HotlineAgent, "etdz").await;
    let mut out = Vec::new();
    let mut bodies: Vec<Value> = (0..n)
        .map(|i| {
            let mut b = ticket_body();
            b["title"] = json!(format!("市民反映问题 {i}"));
            b["location"]["address"] = json!(format!("{}{}号", ROADS[i % ROADS.len()], i));
            b
        })
        .collect();
    for i in 0..3 {
        let mut b = ticket_body();
        b["title"] = json!(format!("沙滩垃圾 {i}"));
        b["location"]["address"] = json!(format!("金沙滩路{}号", 80 + i));
        bodies.push(b);
    }
    for chunk in bodies.chunks(8) {
        let mut set = tokio::task::JoinSet::new();
        for body in chunk {
            let rq = app
                .client
                .post(format!("{}/api/v1/tickets", app.base))
                .bearer_auth(&hot)
                .header("Idempotency-Key", Uuid::new_v4().to_string())
                .json(body);
            set.spawn(async move {
                let r = rq.send().await.expect("create");
                assert_eq!(r.status(), 201);
                r.json::<Value>().await.expect("json")
            });
        }
        while let Some(t) = set.join_next().await {
            out.push(t.expect("task"));
        }
    }
    out
}

#[tokio::test]
async fn search_by_number_and_by_a_word_of_the_address_among_thousands_of_tickets() {
    let _turn = ONE_AT_A_TIME.lock().await;
    for engine in engines().await {
        search_on(engine).await;
    }
}

async fn search_on(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let started = std::time::Instant::now();
    let seeded = seed(&app, 2000).await;
    eprintln!(
        "{engine:?}: seeded {} tickets in {:?}",
        seeded.len(),
        started.elapsed()
    );
    let disp = app.token(Role::Dispatcher, "etdz").await;
    let all = app.get("/api/v1/tickets?limit=1", &disp).await;
    assert_eq!(all.body["total"], json!(seeded.len()), "{}", all.body);
    let number = seeded[1234]["number"].as_str().expect("number").to_string();
    let beach = app.get("/api/v1/tickets?q=金沙滩&limit=50", &disp).await;
    assert_eq!(beach.body["total"], 3, "{}", beach.body);

    for (name, english) in [("desk-search-zh", false), ("desk-search-en", true)] {
        let Some(mut b) = browser(&app, name, screen(english)).await else {
            return;
        };
        open_desk(&b, &disp, english, "/desk").await;
        // 共 N 件 counts every ticket of the view, not the page loaded.
        assert_eq!(shown_total(&b).await, seeded.len() as i64, "{name}");
        assert_eq!(cards(&b).await.len(), 50, "one page loaded");
        b.click("#more").await;
        b.until(
            "the second page",
            "return document.querySelectorAll('#queue li.ticket').length === 100",
        )
        .await;

        b.fill("#f-text", &number).await;
        b.until(
            "the ticket found by its number",
            &format!(
                "return document.body.dataset.loaded === 'true' && \
                 document.querySelectorAll('#queue li.ticket').length === 1 && \
                 document.querySelector('#queue li.ticket').dataset.number === '{number}'"
            ),
        )
        .await;
        assert_eq!(shown_total(&b).await, 1);
        b.keep_shot(if english { "number-en" } else { "number-zh" })
            .await;

        b.fill("#f-text", "金沙滩").await;
        b.until(
            "the three tickets on 金沙滩路",
            "return document.body.dataset.loaded === 'true' && \
             document.querySelectorAll('#queue li.ticket').length === 3",
        )
        .await;
        assert_eq!(shown_total(&b).await, 3);
        let texts = js(
            &b,
            "return [...document.querySelectorAll('#queue li.ticket')].map((li) => li.textContent)",
        )
        .await;
        for t in texts.as_array().expect("texts") {
            assert!(t.as_str().unwrap_or_default().contains("金沙滩路"), "{t}");
        }
        b.keep_shot(if english { "address-en" } else { "address-zh" })
            .await;
        // The search is in the URL: a reload finds the same three.
        b.client.refresh().await.expect("reload");
        loaded(&b, "the reloaded search").await;
        assert_eq!(
            js(&b, "return document.getElementById('f-text').value").await,
            "金沙滩"
        );
        assert_eq!(cards(&b).await.len(), 3);
        b.finish().await;
    }
    app.finish().await;
}
