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
use crate::support::{Engine, TestApp, engines, ticket_body};

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

async fn create(app: &TestApp, body: Value) -> Value {
    let hot = app.token(Role::HotlineAgent, "etdz").await;
    let r = app.post("/api/v1/tickets", &hot, body).await;
    assert_eq!(r.status, 201, "create: {}", r.body);
    r.body
}

async fn act(app: &TestApp, token: &str, id: &str, action: &str, body: Value) -> Value {
    let r = app
        .post(&format!("/api/v1/tickets/{id}/{action}"), token, body)
        .await;
    assert_eq!(r.status, 200, "{action}: {}", r.body);
    r.body
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

// ---------------------------------------------------------------------------------
// A returned ticket, 协办, bulk dispatch, the table, the keys, the notice (points 3, 5).

async fn dispatch_tools(name: &'static str, english: bool) {
    let _turn = ONE_AT_A_TIME.lock().await;
    for engine in engines().await {
        dispatch_tools_on(name, english, engine).await;
    }
}

async fn dispatch_tools_on(name: &'static str, english: bool, engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let Some(mut b) = browser(&app, name, screen(english)).await else {
        return;
    };
    let disp = app.token(Role::Dispatcher, "etdz").await;
    let zhzf = app.token(Role::Handler, "zhzf").await;

    // Garbage with no grid: the catalogue suggests 综合行政执法局, which sends it back.
    let mut body = ticket_body();
    body["title"] = json!("退回的工单");
    body["location"] = json!({"address": "开发区某路口"});
    let returned = create(&app, body).await;
    assert_eq!(returned["suggested_unit"], "zhzf");
    let rid = id_of(&returned);
    act(&app, &disp, &rid, "assign", json!({"unit": "zhzf"})).await;
    act(
        &app,
        &zhzf,
        &rid,
        "return",
        json!({"reason": "不属于本单位职责"}),
    )
    .await;
    // Six tickets to dispatch in one go.
    let mut batch = Vec::new();
    for i in 0..6 {
        let mut body = ticket_body();
        body["title"] = json!(format!("批量派单 {i}"));
        batch.push(id_of(&create(&app, body).await));
    }

    open_desk(&b, &disp, english, "/desk").await;
    assert_eq!(
        js(&b, "return document.getElementById('alert-toggle').checked").await,
        false,
        "the urgent notice is off by default"
    );
    let card = format!("#queue li.ticket[data-id='{rid}']");
    let text = b.text(&card).await;
    assert!(
        text.contains("不属于本单位职责"),
        "the reason is on the card: {text}"
    );
    let suggested = js(
        &b,
        &format!("return document.querySelector(\"{card} .suggested\") === null"),
    )
    .await;
    assert_eq!(
        suggested, true,
        "not suggested back to the unit that returned it"
    );
    b.click(&format!("{card} button[data-action='assign']"))
        .await;
    let form = format!("{card} form[data-form='assign']");
    let picker = js(
        &b,
        &format!(
            "const s = document.querySelector(\"{form} select[name=unit]\"); \
             return [s.value, s.querySelector('option[value=zhzf]').textContent];"
        ),
    )
    .await;
    assert_eq!(picker[0], "", "nothing preselected: {picker}");
    let mark = if english {
        "(sent it back)"
    } else {
        "（曾退回）"
    };
    assert!(
        picker[1].as_str().unwrap_or_default().contains(mark),
        "{picker}"
    );
    b.css(&format!("{form} select[name=unit]"))
        .await
        .select_by_value("hg")
        .await
        .expect("pick 皇冠街道");
    js(
        &b,
        &format!("document.querySelector(\"{form} details.co-units\").open = true"),
    )
    .await;
    b.click(&format!("{form} input[name=co_unit][value=scjg]"))
        .await;
    b.keep_shot(if english {
        "returned-en"
    } else {
        "returned-zh"
    })
    .await;
    b.click(&format!("{form} button[data-submit='assign']"))
        .await;
    b.until(
        "the returned ticket to leave the queue",
        &format!("return document.querySelector(\"{card}\") === null"),
    )
    .await;
    let got = app.get(&format!("/api/v1/tickets/{rid}"), &disp).await;
    assert_eq!(got.body["unit"], "hg", "{}", got.body);
    assert_eq!(got.body["co_units"], json!(["scjg"]), "{}", got.body);

    // Bulk: six picked; a colleague dispatches one meanwhile; five go, one is refused.
    for id in &batch {
        b.click(&format!("#queue li.ticket[data-id='{id}'] input.pick"))
            .await;
    }
    b.until(
        "the bulk bar for six",
        "return document.querySelector('#bulk-form') !== null && \
         document.querySelectorAll('#queue input.pick:checked').length === 6",
    )
    .await;
    act(&app, &disp, &batch[5], "assign", json!({"unit": "zhzf"})).await;
    b.until(
        "the colleague's dispatch to arrive live",
        &format!(
            "return document.querySelector(\"#queue li.ticket[data-id='{}']\") === null",
            batch[5]
        ),
    )
    .await;
    b.css("#bulk-unit")
        .await
        .select_by_value("scjg")
        .await
        .expect("scjg");
    b.keep_shot(if english { "bulk-en" } else { "bulk-zh" })
        .await;
    b.click("#bulk-go").await;
    b.until(
        "the results of each ticket",
        "return document.querySelectorAll('.bulk-list li').length === 6",
    )
    .await;
    let results = js(
        &b,
        "return [...document.querySelectorAll('.bulk-list li')].map((li) => [li.dataset.number, li.dataset.ok])",
    )
    .await;
    let failed: Vec<&Value> = results
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r[1] == "false")
        .collect();
    assert_eq!(failed.len(), 1, "{results}");
    // The refused command is the one failed request the console may show.
    b.no_console_errors_except(
        "/assign - Failed to load resource: the server responded with a status of 409",
    )
    .await;
    let stale = app
        .get(&format!("/api/v1/tickets/{}", batch[5]), &disp)
        .await;
    assert_eq!(failed[0][0], stale.body["number"], "{results}");
    assert_eq!(
        stale.body["unit"], "zhzf",
        "the refused one stays where it was"
    );
    let mut keys = std::collections::HashSet::new();
    for id in &batch[..5] {
        let t = app.get(&format!("/api/v1/tickets/{id}"), &disp).await;
        assert_eq!(
            (&t.body["state"], &t.body["unit"]),
            (&json!("assigned"), &json!("scjg")),
            "{}",
            t.body
        );
    }
    for e in app.all_events().await {
        if e.event_type == "TicketAssigned" && e.data["unit"] == "scjg" {
            keys.insert(e.metadata["idempotency_key"].to_string());
        }
    }
    assert_eq!(keys.len(), 5, "five commands, each with its own key");
    b.keep_shot(if english {
        "bulk-done-en"
    } else {
        "bulk-done-zh"
    })
    .await;

    // The table view, sorted by number both ways, remembered over a reload.
    for i in 0..4 {
        let mut body = ticket_body();
        body["title"] = json!(format!("表格 {i}"));
        create(&app, body).await;
    }
    b.client.refresh().await.expect("reload");
    loaded(&b, "the desk again").await;
    b.click("#view-table").await;
    let numbers = "return [...document.querySelectorAll('#queue-table tbody tr[data-id]')].map((r) => r.dataset.number)";
    b.until(
        "the table",
        "return document.querySelectorAll('#queue-table tbody tr[data-id]').length === 4",
    )
    .await;
    b.click("#queue-table button[data-sort=number]").await;
    let up = js(&b, numbers).await;
    let mut sorted: Vec<String> = up
        .as_array()
        .expect("rows")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    sorted.sort();
    assert_eq!(up, json!(sorted), "ascending");
    b.click("#queue-table button[data-sort=number]").await;
    sorted.reverse();
    assert_eq!(js(&b, numbers).await, json!(sorted), "descending");
    b.client.refresh().await.expect("reload");
    loaded(&b, "the table after a reload").await;
    b.until(
        "the table remembered",
        "return !document.getElementById('queue-table').hidden",
    )
    .await;
    assert_eq!(
        js(&b, numbers).await,
        json!(sorted),
        "the sort is remembered"
    );

    // Keys: j moves to the first row, a opens its dispatch form, ? the help, / the search.
    let key =
        |k: &str| format!("document.dispatchEvent(new KeyboardEvent('keydown', {{key: '{k}'}}))");
    js(&b, &key("j")).await;
    b.until(
        "the first row current",
        &format!(
            "return document.querySelector('#queue-table tr.current')?.dataset.number === '{}'",
            sorted[0]
        ),
    )
    .await;
    js(&b, &key("j")).await;
    b.until(
        "the second row current",
        &format!(
            "return document.querySelector('#queue-table tr.current')?.dataset.number === '{}'",
            sorted[1]
        ),
    )
    .await;
    js(&b, &key("a")).await;
    b.css("#table-detail form[data-form='assign']").await;
    b.keep_shot(if english { "table-en" } else { "table-zh" })
        .await;
    js(&b, "document.activeElement.blur()").await;
    js(&b, &key("?")).await;
    b.until(
        "the help",
        "return !document.getElementById('keys-help').hidden",
    )
    .await;
    b.keep_shot(if english { "keys-en" } else { "keys-zh" })
        .await;
    js(&b, &key("Escape")).await;
    js(&b, &key("/")).await;
    b.until(
        "the search box focused",
        "return document.activeElement.id === 'f-text'",
    )
    .await;

    // The urgent notice, once turned on, for a new urgent ticket arriving live.
    b.click("#view-cards").await;
    b.click("#alert-toggle").await;
    b.until(
        "the live feed",
        "return document.querySelector('#live.on') !== null",
    )
    .await;
    let mut body = ticket_body();
    body["title"] = json!("燃气泄漏");
    body["category"] = json!("safety.gas");
    body["urgency"] = json!("emergency");
    create(&app, body).await;
    b.until("one notice", "return document.body.dataset.alerts === '1'")
        .await;
    let mut body = ticket_body();
    body["title"] = json!("一般问题");
    create(&app, body).await;
    b.until(
        "the ordinary ticket to arrive",
        "return [...document.querySelectorAll('#queue li.ticket')].some((li) => li.textContent.includes('一般问题'))",
    )
    .await;
    assert_eq!(
        js(&b, "return document.body.dataset.alerts").await,
        "1",
        "no notice for an ordinary one"
    );
    b.finish().await;
    app.finish().await;
}

#[tokio::test]
async fn a_dispatcher_uses_the_desk_tools_in_chinese() {
    dispatch_tools("desk-tools-zh", false).await;
}

#[tokio::test]
async fn a_dispatcher_uses_the_desk_tools_in_english_on_a_phone() {
    dispatch_tools("desk-tools-en", true).await;
}
