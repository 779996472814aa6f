//! The grid worker's page in Chromium (issue 22, point 8): it opens with the network
//! off after a first visit (the service worker serves it from its copy: the service
//! is not asked), a report queued offline is sent exactly once when the network
//! returns, "请选择类别" blocks a report, the worker follows their own reports and
//! gets a notice when one is sent back or verified. zh and en, 360 and 1366 px.

use serde_json::json;
use yiwang::auth::Role;

use crate::browser::{Browser, Network, ONE_AT_A_TIME, Screen, browser};
use crate::helpers::{
    CUT, Link, act, attach_photo, attachments_api, create, pick_category as pick, tickets,
};
use crate::support::{Engine, TestApp};

/// How many times the service answered `GET {route}` (any status).
fn served(app: &TestApp, route: &str) -> u64 {
    ["200", "304", "401", "404", "500"]
        .iter()
        .map(|code| {
            app.app
                .metrics
                .http_requests
                .with_label_values(&["GET", route, code])
                .get_sample_count()
        })
        .sum()
}

/// No signal (false) or signal back (true): the page offline (navigator.onLine, the
/// `online` event) and the link to the service cut, for the service worker too.
async fn signal(b: &Browser, link: &Link, on: bool) {
    link.set(on);
    b.client
        .issue_cmd(Network { offline: !on })
        .await
        .expect("network conditions");
}

/// Waits for the page to have started, and for the service worker to control it
/// with its copy made.
async fn ready(b: &Browser) {
    b.until(
        "the grid page",
        "return document.body.dataset.loaded === 'true'",
    )
    .await;
    b.until(
        "the service worker's copy",
        "return document.body.dataset.offlineReady === 'true' && !!navigator.serviceWorker.controller",
    )
    .await;
}

#[tokio::test]
async fn the_grid_page_opens_offline_after_a_first_visit_and_a_queued_report_goes_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(Engine::Sqlite).await;
    let Some(mut b) = browser(&app, "grid-offline", Screen::Phone).await else {
        return;
    };
    let link = Link::to(&app.base).await;
    b.base = link.base.clone();
    // The manifest, for "add to home screen".
    let m = app
        .client
        .get(format!("{}/web/manifest.webmanifest", app.base))
        .send()
        .await
        .expect("manifest");
    assert!(
        m.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("application/manifest+json")
    );
    let m: serde_json::Value = m.json().await.expect("manifest JSON");
    assert_eq!(m["name"], "一网·网格");
    assert_eq!(m["start_url"], "/grid");
    assert_eq!(m["display"], "standalone");
    assert!(m["icons"].as_array().is_some_and(|i| !i.is_empty()));
    // The worker, named after the build, under a policy that allows it.
    let sw = app
        .client
        .get(format!("{}/sw.js", app.base))
        .send()
        .await
        .expect("sw.js");
    let csp = sw.headers()["content-security-policy"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        csp.contains("worker-src 'self'") && csp.contains("manifest-src 'self'"),
        "{csp}"
    );
    let text = sw.text().await.expect("sw.js text");
    let build = format!("yiwang-grid-{}-", env!("CARGO_PKG_VERSION"));
    assert!(
        text.contains(&format!("const BUILD = '{}-", env!("CARGO_PKG_VERSION"))),
        "the cache is named after the build"
    );

    let gw = app.token(Role::GridWorker, "hg-01-g01").await;
    b.sign_in(&gw, "/grid").await;
    ready(&b).await;
    b.until(
        "the manifest link",
        "return document.querySelector('link[rel=manifest]').href.endsWith('/web/manifest.webmanifest')",
    )
    .await;
    b.client
        .execute(
            "caches.keys().then((k) => { window.cacheNames = k; })",
            vec![],
        )
        .await
        .expect("cache names");
    b.until(
        "the build's cache",
        &format!("return (window.cacheNames || []).some((n) => n.startsWith('{build}'))"),
    )
    .await;
    b.keep_shot("first-visit-zh").await;

    // Without network, the page opens again: from the worker, not the service.
    signal(&b, &link, false).await;
    let (pages, me) = (served(&app, "/grid"), served(&app, "/api/v1/me"));
    b.goto("/grid").await;
    b.until(
        "the grid page offline",
        "return document.body.dataset.loaded === 'true' && !document.getElementById('offline-banner').hidden",
    )
    .await;
    assert_eq!(
        (served(&app, "/grid"), served(&app, "/api/v1/me")),
        (pages, me),
        "offline, the service was not asked for the page nor who the worker is"
    );
    let grid = b.text("#grid-name").await;
    assert!(
        grid.contains("网格"),
        "the organisation from the copy: {grid}"
    );

    // 请选择类别 blocks a report, with a message saying what to do.
    let first = b
        .client
        .execute(
            "const s = document.getElementById('g-category'); return [s.value, s.options[s.selectedIndex].text]",
            vec![],
        )
        .await
        .expect("the select");
    assert_eq!(first, json!(["", "请选择类别"]));
    b.fill("#g-description", "路口垃圾桶满溢").await;
    b.click("#g-submit").await;
    b.until(
        "the choose-a-category message",
        "return document.getElementById('g-status').textContent === '请先选择问题类别。' \
         && document.getElementById('g-category').getAttribute('aria-invalid') === 'true'",
    )
    .await;
    b.keep_shot("choose-category-zh").await;
    assert!(
        b.client
            .execute(
                "return document.getElementById('queue-card').hidden",
                vec![]
            )
            .await
            .expect("outbox")
            == json!(true),
        "nothing queued without a category"
    );

    pick(&b, "city.exposed_garbage").await;
    b.click("#g-submit").await;
    b.until(
        "the report in the outbox",
        "return document.querySelectorAll('#outbox li.waiting').length === 1",
    )
    .await;
    b.keep_shot("offline-queued-zh").await;
    assert!(tickets(&app, &gw).await.is_empty(), "nothing sent offline");

    signal(&b, &link, true).await;
    b.until(
        "the queued report to be sent",
        "return document.getElementById('queue-card').hidden && document.querySelectorAll('#mine li.card').length === 1",
    )
    .await;
    // The network comes back once more: nothing goes twice.
    b.client
        .execute("window.dispatchEvent(new Event('online'))", vec![])
        .await
        .expect("online again");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let items = tickets(&app, &gw).await;
    assert_eq!(items.len(), 1, "sent exactly once: {items:?}");
    assert_eq!(items[0]["category"], "city.exposed_garbage");
    b.keep_shot("back-online-zh").await;
    b.no_console_errors_except_any(CUT).await;

    // English: the choice, the groups and the names in English, no word cut short,
    // "1 photo".
    b.use_english().await;
    ready(&b).await;
    let labels = b
        .client
        .execute(
            "const s = document.getElementById('g-category'); \
             return [s.options[s.selectedIndex].text, [...s.querySelectorAll('optgroup')].map((g) => g.label)]",
            vec![],
        )
        .await
        .expect("labels");
    assert_eq!(labels[0], "Choose a category");
    let groups: Vec<&str> = labels[1]
        .as_array()
        .map(|a| a.iter().filter_map(|g| g.as_str()).collect())
        .unwrap_or_default();
    assert!(groups.contains(&"City management"), "{groups:?}");
    assert!(
        groups.iter().all(|g| g.is_ascii() && !g.contains('.')),
        "group labels in English: {groups:?}"
    );
    b.until(
        "the steps whole, not cut",
        "const li = [...document.querySelectorAll('#mine .steps li')]; \
         return li.length === 6 && li.every((x) => x.scrollWidth <= x.clientWidth + 1 && !x.textContent.includes('…'))",
    )
    .await;
    let photos = attachments_api(&app, &gw).await;
    signal(&b, &link, false).await;
    b.until(
        "the offline banner",
        "return !document.getElementById('offline-banner').hidden",
    )
    .await;
    pick(&b, "city.exposed_garbage").await;
    b.fill("#g-description", "Overflowing bin at the crossing")
        .await;
    if photos {
        attach_photo(&b, "#g-photos").await;
    }
    b.click("#g-submit").await;
    b.until(
        "the report in the outbox",
        "return document.querySelectorAll('#outbox li.waiting').length === 1",
    )
    .await;
    let queued = b.text("#outbox li.waiting").await;
    if photos {
        assert!(
            queued.contains("1 photo") && !queued.contains("1 photos"),
            "{queued}"
        );
    }
    b.keep_shot("offline-queued-en").await;
    signal(&b, &link, true).await;
    b.until(
        "the second report to be sent",
        "return document.getElementById('queue-card').hidden && document.querySelectorAll('#mine li.card').length === 2",
    )
    .await;
    assert_eq!(tickets(&app, &gw).await.len(), 2, "each report once");
    b.keep_shot("back-online-en").await;
    b.no_console_errors_except_any(CUT).await;
    b.finish().await;
    app.finish().await;
}

#[tokio::test]
async fn a_grid_worker_follows_their_reports_and_hears_when_one_is_sent_back_or_verified() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(Engine::Sqlite).await;
    let Some(mut b) = browser(&app, "grid-progress", Screen::Wide).await else {
        return;
    };
    let gw = app.token(Role::GridWorker, "hg-01-g01").await;
    // A grid's report goes to its township's centre (皇冠街道), which dispatches it
    // to its enforcement squad.
    let disp = app.token(Role::Dispatcher, "hg").await;
    let hand = app.token(Role::Handler, "hg-zfzd").await;
    // A ticket in the same grid that someone else reported is not "mine".
    create(&app, crate::support::ticket_body()).await;

    b.sign_in(&gw, "/grid").await;
    ready(&b).await;
    pick(&b, "city.exposed_garbage").await;
    b.fill("#g-description", "井盖缺失").await;
    b.fill("#g-address", "文化路 12 号").await;
    b.click("#g-submit").await;
    b.until(
        "my report",
        "return document.querySelectorAll('#mine li.card').length === 1",
    )
    .await;
    let id = b
        .client
        .execute(
            "return document.querySelector('#mine li.card').dataset.id",
            vec![],
        )
        .await
        .expect("id");
    let id = id.as_str().expect("an id").to_string();

    act(&app, &disp, &id, "assign", json!({"unit": "hg-zfzd"})).await;
    b.until(
        "the unit and the deadline",
        "const c = document.querySelector('#mine li.card'); \
         return c.textContent.includes('皇冠综合执法中队') && c.querySelector('.report-deadline .deadline') !== null",
    )
    .await;
    act(&app, &hand, &id, "sign", json!({"handler": "钱工"})).await;
    act(&app, &hand, &id, "handle", json!({"result": "已补装井盖"})).await;
    act(
        &app,
        &disp,
        &id,
        "verify",
        json!({"passed": false, "note": "井盖未固定"}),
    )
    .await;
    b.until(
        "the sent-back notice",
        "const n = document.querySelector('#mine li.card .report-notice.error'); \
         return !!n && n.textContent.includes('核查未通过')",
    )
    .await;
    b.keep_shot("sent-back-zh").await;
    act(&app, &hand, &id, "handle", json!({"result": "已固定井盖"})).await;
    act(&app, &disp, &id, "verify", json!({"passed": true})).await;
    b.until(
        "the verified notice",
        "const n = document.querySelector('#mine li.card .report-notice.ok'); \
         return !!n && n.textContent.includes('已核查通过') && document.querySelector('#mine li.card').dataset.state === 'verified'",
    )
    .await;
    b.keep_shot("verified-zh").await;
    b.no_console_errors().await;

    b.use_english().await;
    ready(&b).await;
    b.until(
        "the English card",
        "const c = document.querySelector('#mine li.card'); \
         return !!c && c.querySelector('.report-notice').textContent.includes('passed verification')",
    )
    .await;
    b.keep_shot("verified-en").await;
    b.finish().await;
    app.finish().await;
}
