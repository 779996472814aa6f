//! The hotline's intake (受理) and the tickets' map in headless Chromium (issue 22,
//! points 4 and 6): a call about a place where an open ticket of the same category
//! already is finds it before saving, and is linked to it (zh, 1366 px) or recorded
//! and closed as its duplicate (en, 360 px); a call with nothing similar is created
//! as new. The map draws the tickets and the demo organisation's boundaries on a
//! plain background (no tile server, no internet) on the desk and the grid page,
//! without a console or CSP error; on the desk it shows the list's tickets and
//! follows its filters, re-fitting its bounds only for a new filter set.

use chrono::{Duration, TimeZone, Utc};
use serde_json::{Value, json};
use yiwang::auth::Role;
use yiwang::clock::Clock;

use crate::browser::{Browser, ONE_AT_A_TIME, Screen, browser};
use crate::helpers::create;
use crate::support::{Engine, TestApp, ticket_body};

/// Where a click in the middle of the intake's map lands: the map opens on the demo
/// organisation's boundaries (皇冠 communities 1 and 2: 37.49–37.53 N,
/// 122.095–122.125 E), whose centre this is, give or take a pixel (~10 m).
const CENTRE: (f64, f64) = (37.5101, 122.1101);

/// An open hotline ticket of `category` at `point`; returns its JSON.
async fn open_ticket(app: &TestApp, category: &str, point: (f64, f64), title: &str) -> Value {
    let mut b = ticket_body();
    b["category"] = json!(category);
    b["title"] = json!(title);
    b["location"] = json!({"address": "皇冠街道文化路 8 号", "lat": point.0, "lon": point.1, "grid": "hg-01-g02"});
    create(app, b).await
}

/// Fills the intake form and clicks the middle of the map.
async fn fill_call(b: &Browser, category: &str, description: &str) {
    b.until(
        "the intake page",
        "return document.body.dataset.intakeReady === 'true'",
    )
    .await;
    b.css("#i-category")
        .await
        .select_by_value(category)
        .await
        .expect("category");
    b.css("#i-urgency")
        .await
        .select_by_value("urgent")
        .await
        .expect("urgency");
    b.fill("#i-name", "钱女士").await;
    b.fill("#i-phone", "13900000001").await;
    b.fill("#i-address", "皇冠街道文化路 10 号").await;
    b.fill("#i-description", description).await;
    // A click lands in the middle of the part in view: the whole map in view first.
    b.client
        .execute(
            "document.getElementById('i-map').scrollIntoView({block: 'center'})",
            vec![],
        )
        .await
        .expect("scroll");
    b.click("#i-map").await;
    b.until(
        "the point picked on the map",
        "return /^37\\.5\\d+, 122\\.1\\d+$/.test(document.getElementById('i-point').textContent)",
    )
    .await;
}

/// The ticket the done card names, read back from the API.
async fn created(b: &Browser, app: &TestApp) -> Value {
    b.until(
        "the ticket to be created",
        "return !document.getElementById('done-card').hidden",
    )
    .await;
    let number: String = b
        .client
        .execute(
            "return document.getElementById('done-card').dataset.number",
            vec![],
        )
        .await
        .expect("number")
        .as_str()
        .expect("a number")
        .to_string();
    let admin = app.token(Role::Admin, "etdz").await;
    let list = app.get("/api/v1/tickets?limit=50", &admin).await;
    list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|t| t["number"] == number.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("ticket {number} not in {}", list.body))
}

#[tokio::test]
async fn a_hotline_intake_finds_the_similar_ticket_and_links_it_or_creates_a_new_one() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(Engine::Sqlite).await;
    let Some(mut b) = browser(&app, "intake-hotline", Screen::Wide).await else {
        return;
    };
    let earlier = open_ticket(&app, "city.exposed_garbage", CENTRE, "文化路垃圾堆积").await;
    let hot = app.token(Role::HotlineAgent, "etdz").await;
    b.sign_in(&hot, "/desk").await;
    // The desk's header leads to the intake.
    b.click("#topbar a[href='/intake']").await;
    fill_call(
        &b,
        "city.exposed_garbage",
        "文化路路口垃圾三天没人清运，气味很大",
    )
    .await;
    b.keep_shot("form-zh").await;
    b.click("#i-check").await;
    b.until(
        "the similar ticket",
        &format!(
            "return !document.getElementById('similar-card').hidden && \
             document.querySelector('#similar li[data-number=\"{}\"]') !== null",
            earlier["number"].as_str().expect("number")
        ),
    )
    .await;
    let listed = b.text("#similar li").await;
    assert!(listed.contains("文化路垃圾堆积"), "{listed}");
    assert!(listed.contains("米"), "the distance is shown: {listed}");
    // A hotline agent may not close tickets: only the link is offered.
    assert!(
        b.client
            .find_all(fantoccini::Locator::Css("#similar [data-act='duplicate']"))
            .await
            .expect("find")
            .is_empty()
    );
    b.keep_shot("similar-zh").await;
    b.click("#similar [data-act='link']").await;
    let linked = created(&b, &app).await;
    assert_eq!(linked["related_to"], earlier["id"], "{linked}");
    assert_eq!(linked["category"], "city.exposed_garbage");
    assert_eq!(linked["urgency"], "urgent");
    assert_eq!(linked["source"], "hotline");
    assert_eq!(linked["state"], "accepted");
    assert!(
        linked["location"]["lat"]
            .as_f64()
            .is_some_and(|v| (v - CENTRE.0).abs() < 0.001)
    );
    let done = b.text("#done-text").await;
    assert!(
        done.contains(earlier["number"].as_str().expect("number")),
        "{done}"
    );
    b.keep_shot("linked-zh").await;

    // The next call, another category: nothing similar, created as new at once.
    b.click("#i-next").await;
    fill_call(&b, "city.street_vendor", "文化路有流动摊贩占道经营").await;
    b.click("#i-check").await;
    let new = created(&b, &app).await;
    assert!(new["related_to"].is_null(), "{new}");
    assert_eq!(new["category"], "city.street_vendor");
    let hot_list = app.get("/api/v1/tickets?limit=50", &hot).await;
    assert_eq!(
        hot_list.body["items"].as_array().map(Vec::len),
        Some(3),
        "one ticket per call: {}",
        hot_list.body
    );
    b.keep_shot("created-zh").await;
    b.finish().await;
    app.finish().await;
}

#[tokio::test]
async fn a_dispatcher_on_a_phone_records_a_call_as_a_duplicate_in_english() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(Engine::Sqlite).await;
    let Some(mut b) = browser(&app, "intake-duplicate", Screen::Phone).await else {
        return;
    };
    let earlier = open_ticket(&app, "city.exposed_garbage", CENTRE, "Rubbish piling up").await;
    let disp = app.token(Role::Dispatcher, "etdz").await;
    b.sign_in(&disp, "/desk").await;
    b.use_english().await;
    b.goto("/intake").await;
    fill_call(&b, "city.exposed_garbage", "Rubbish at the crossing again").await;
    b.keep_shot("form-en").await;
    b.click("#i-check").await;
    b.until(
        "the similar ticket",
        "return document.querySelector('#similar [data-act=\"duplicate\"]') !== null",
    )
    .await;
    let listed = b.text("#similar li").await;
    assert!(listed.contains(" m"), "the distance in metres: {listed}");
    let page = b
        .client
        .execute("return document.body.innerText", vec![])
        .await
        .expect("text");
    let page = page.as_str().unwrap_or_default();
    for en in [
        "Similar tickets",
        "Link as a repeat complaint",
        "Record and close as its duplicate",
        "about ",
    ] {
        assert!(page.contains(en), "{en:?} in {page}");
    }
    for zh in [
        "相似工单",
        "关联为重复投诉",
        "重复件",
        "请选择类别",
        "约 ",
        "受理",
    ] {
        assert!(!page.contains(zh), "{zh:?} untranslated in {page}");
    }
    b.keep_shot("similar-en").await;
    b.click("#similar [data-act='duplicate']").await;
    let dup = created(&b, &app).await;
    assert_eq!(dup["state"], "closed", "{dup}");
    assert_eq!(dup["close_code"], "duplicate");
    assert_eq!(dup["duplicate_of"], earlier["id"]);
    assert_eq!(dup["related_to"], earlier["id"]);
    b.keep_shot("duplicate-en").await;
    b.finish().await;
    app.finish().await;
}

/// A ticket dispatched to 综合行政执法局 whose sign deadline then passes.
async fn overdue_ticket(app: &TestApp, clock: &Clock) -> Value {
    let t = open_ticket(app, "city.exposed_garbage", (37.502, 122.099), "超期工单").await;
    let disp = app.token(Role::Dispatcher, "etdz").await;
    let id = t["id"].as_str().expect("id");
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/assign"),
            &disp,
            json!({"unit": "zhzf"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    clock.set(clock.now() + Duration::days(30));
    t
}

/// The numbers of the points on the map, sorted, and how many of them are red.
const POINTS: &str = "const p = [...document.querySelectorAll('#ticket-map path.yw-pt')]; \
    return [p.map((x) => x.dataset.number || '').sort(), \
            p.filter((x) => x.classList.contains('pt-overdue')).length]";

/// Waits until the map shows `n` points after `fits` fittings of its bounds, and
/// returns the points' numbers (sorted) and how many are red.
async fn map_shows(b: &Browser, what: &str, n: usize, fits: u32) -> (Vec<String>, u64) {
    b.until(
        what,
        &format!(
            "return document.body.dataset.loaded === 'true' && \
             document.body.dataset.mapReady === '{n}' && document.body.dataset.mapFits === '{fits}'"
        ),
    )
    .await;
    let v = b.client.execute(POINTS, vec![]).await.expect("points");
    let numbers = v[0]
        .as_array()
        .expect("numbers")
        .iter()
        .map(|x| x.as_str().unwrap_or_default().to_string())
        .collect();
    (numbers, v[1].as_u64().expect("red"))
}

fn numbers(tickets: &[&Value]) -> Vec<String> {
    let mut v: Vec<String> = tickets
        .iter()
        .map(|t| t["number"].as_str().expect("number").to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn the_map_draws_tickets_and_boundaries_without_tiles_on_the_desk_and_the_grid_page() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let clock = Clock::manual(
        Utc.with_ymd_and_hms(2026, 11, 2, 2, 0, 0)
            .single()
            .expect("time"),
    );
    let app = TestApp::spawn_with_clock(Engine::Sqlite, clock.clone()).await;
    let late = overdue_ticket(&app, &clock).await;
    let one = open_ticket(&app, "city.exposed_garbage", (37.5, 122.1), "一").await;
    let two = open_ticket(&app, "city.street_vendor", (37.515, 122.115), "二").await;
    let disp = app.token(Role::Dispatcher, "etdz").await;

    // The phone, in English, opened on a filtered desk (the filters live in the
    // URL): the map shows the list, not the newest tickets.
    let Some(mut b) = browser(&app, "map-desk-en", Screen::Phone).await else {
        return;
    };
    b.sign_in(&disp, "/desk").await;
    b.use_english().await;
    b.goto("/desk?state=&overdue=1&sort=deadline").await;
    let shown = map_shows(&b, "the overdue ticket on the map", 1, 1).await;
    assert_eq!(shown, (numbers(&[&late]), 1), "one red point");
    let drawn = b
        .client
        .execute(
            "return [document.querySelectorAll('#ticket-map path.yw-boundary').length, \
                     document.querySelectorAll('#ticket-map img').length]",
            vec![],
        )
        .await
        .expect("count");
    // Eight boundaries of the demo organisation; no tile.
    assert_eq!(drawn, json!([8, 0]));
    b.keep_shot("desk").await;
    b.finish().await;

    // The laptop, in Chinese: enough undispatched tickets for a second page.
    let mut more = Vec::new();
    for i in 0..50 {
        let point = (
            37.495 + f64::from(i) * 0.0005,
            122.098 + f64::from(i % 10) * 0.002,
        );
        more.push(open_ticket(&app, "city.exposed_garbage", point, &format!("批量 {i}")).await);
    }
    let Some(mut b) = browser(&app, "map-desk-zh", Screen::Wide).await else {
        return;
    };
    b.sign_in(&disp, "/desk").await;
    // 待我派单: the first page of 50 of the 52 undispatched tickets, fitted once.
    let (first, red) = map_shows(&b, "the first page on the map", 50, 1).await;
    assert_eq!(red, 0);
    let listed: Vec<String> = {
        let v = b
            .client
            .execute(
                "return [...document.querySelectorAll('#queue li.ticket')].map((li) => li.dataset.number).sort()",
                vec![],
            )
            .await
            .expect("list");
        serde_json::from_value(v).expect("numbers")
    };
    assert_eq!(first, listed, "the map shows the list");
    assert!(!first.contains(&late["number"].as_str().expect("n").to_string()));
    // Picking a ticket for bulk dispatch is no new list: nothing is sent or fitted.
    b.client
        .execute(
            "window.ywSent = 0; document.addEventListener('yw:tickets', () => { window.ywSent += 1; })",
            vec![],
        )
        .await
        .expect("count events");
    b.click("#queue li.ticket input.pick").await;
    // The second page: the map grows to the whole list, the bounds stay.
    b.click("#more").await;
    let (all, _) = map_shows(&b, "both pages on the map", 52, 1).await;
    let mut want: Vec<&Value> = more.iter().collect();
    want.push(&one);
    want.push(&two);
    assert_eq!(all, numbers(&want));
    assert_eq!(
        b.client
            .execute("return window.ywSent", vec![])
            .await
            .expect("sent"),
        json!(1),
        "one list sent: by load more, none by the pick"
    );
    // A filter is a new set: the map shows the filtered tickets and fits them.
    b.css("#f-category")
        .await
        .select_by_value("city.street_vendor")
        .await
        .expect("category");
    let shown = map_shows(&b, "the filtered ticket on the map", 1, 2).await;
    assert_eq!(shown, (numbers(&[&two]), 0));
    b.keep_shot("desk-filtered").await;
    // Someone dispatches it: the list and the map follow live, the bounds stay.
    b.until(
        "the live feed",
        "return document.querySelector('#live.on') !== null",
    )
    .await;
    let id = two["id"].as_str().expect("id");
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/assign"),
            &disp,
            json!({"unit": "zhzf"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    map_shows(&b, "the dispatched ticket gone from the map", 0, 2).await;
    // Searching is a filter too.
    b.css("#f-category")
        .await
        .select_by_value("")
        .await
        .expect("category");
    map_shows(&b, "the unfiltered list", 50, 3).await;
    // The words at once (typed, each pause in typing would be a search of its own).
    b.client
        .execute(
            "const f = document.getElementById('f-text'); f.value = '批量 7'; \
             f.dispatchEvent(new Event('input'))",
            vec![],
        )
        .await
        .expect("search");
    let shown = map_shows(&b, "the searched ticket on the map", 1, 4).await;
    assert_eq!(shown, (numbers(&[&more[7]]), 0));
    b.finish().await;

    // The grid worker's map: the tickets of their grid only.
    let gw = app.token(Role::GridWorker, "hg-01-g01").await;
    let mine = app
        .post("/api/v1/tickets", &gw, {
            let mut r = ticket_body();
            r["source"] = json!("grid");
            r
        })
        .await;
    assert_eq!(mine.status, 201, "{}", mine.body);
    for (screen, name, english) in [
        (Screen::Phone, "map-grid-zh", false),
        (Screen::Phone, "map-grid-en", true),
    ] {
        let Some(mut b) = browser(&app, name, screen).await else {
            return;
        };
        b.sign_in(&gw, "/grid").await;
        if english {
            b.use_english().await;
        }
        b.until("the map", "return document.body.dataset.mapReady === '1'")
            .await;
        b.keep_shot("grid").await;
        b.finish().await;
    }
    app.finish().await;
}
