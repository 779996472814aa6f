//! The dashboard's figures and the appraisal over three months of history, in
//! Chinese and English (moved out of browser.rs, which keeps the harness and the
//! desk, ticket and grid walks).

use serde_json::json;
use yiwang::auth::Role;

use crate::browser::{ONE_AT_A_TIME, Screen, browser};
use crate::helpers::act;
use crate::support::{Engine, TestApp, ticket_body};

/// Three months of history for 综合行政执法局 (zhzf) and 市场监督管理局 (scjg), on a
/// manual clock: per month one ticket handled in a day, one supervised twice (重复督办),
/// one signed and handled late; in the last month also one left open past its
/// deadlines. Returns the appraisal period (quarter) of the last month.
async fn three_months_of_history(app: &TestApp, clock: &yiwang::clock::Clock) -> String {
    use chrono::{Datelike, Duration as Days, TimeZone, Weekday};
    use chrono_tz::Asia::Shanghai;
    let hot = app.token(Role::HotlineAgent, "etdz").await;
    let disp = app.token(Role::Dispatcher, "etdz").await;
    let handlers = [
        ("zhzf", app.token(Role::Handler, "zhzf").await),
        ("scjg", app.token(Role::Handler, "scjg").await),
    ];
    let today = chrono::Utc::now().with_timezone(&Shanghai).date_naive();
    let mut quarter = String::new();
    for (month, days_ago) in [70i64, 40, 10].into_iter().enumerate() {
        // The Monday of that week, 09:00 in Shanghai.
        let mut day0 = today - Days::days(days_ago);
        while day0.weekday() != Weekday::Mon {
            day0 -= Days::days(1);
        }
        quarter = format!("{}-Q{}", day0.year(), (day0.month() - 1) / 3 + 1);
        let at = |day: i64, hour: u32| {
            let d = day0 + Days::days(day);
            Shanghai
                .with_ymd_and_hms(d.year(), d.month(), d.day(), hour, 0, 0)
                .single()
                .expect("a Shanghai time")
                .with_timezone(&chrono::Utc)
        };
        let titles = ["路边垃圾堆积", "占道经营", "违章搭建", "噪音扰民"];
        let n = if month == 2 { 4 } else { 3 };
        let mut ids = Vec::new();
        clock.set(at(0, 9));
        for (i, title) in titles.iter().take(n).enumerate() {
            let (unit, hand) = &handlers[(i + month) % 2];
            let mut body = ticket_body();
            body["title"] = json!(format!("{title}（{}月）", day0.month()));
            let r = app.post("/api/v1/tickets", &hot, body).await;
            assert_eq!(r.status, 201, "{}", r.body);
            let id = r.body["id"].as_str().expect("id").to_string();
            act(app, &disp, &id, "assign", json!({"unit": unit})).await;
            ids.push((id, hand.clone()));
        }
        clock.set(at(0, 11));
        for (id, hand) in ids.iter().take(2) {
            act(app, hand, id, "sign", json!({"handler": "钱工"})).await;
        }
        clock.set(at(1, 15));
        act(
            app,
            &ids[0].1,
            &ids[0].0,
            "handle",
            json!({"result": "已清运"}),
        )
        .await;
        act(
            app,
            &disp,
            &ids[1].0,
            "supervise",
            json!({"note": "请加快办理"}),
        )
        .await;
        clock.set(at(2, 10));
        act(
            app,
            &disp,
            &ids[1].0,
            "supervise",
            json!({"note": "再次督办"}),
        )
        .await;
        clock.set(at(3, 16));
        act(
            app,
            &ids[1].1,
            &ids[1].0,
            "handle",
            json!({"result": "已劝离"}),
        )
        .await;
        act(
            app,
            &ids[2].1,
            &ids[2].0,
            "sign",
            json!({"handler": "孙工"}),
        )
        .await;
        clock.set(at(9, 17));
        act(
            app,
            &ids[2].1,
            &ids[2].0,
            "handle",
            json!({"result": "已拆除"}),
        )
        .await;
    }
    clock.set(chrono::Utc::now());
    quarter
}

#[tokio::test]
async fn the_dashboard_shows_the_figures_and_the_appraisal_in_chinese_and_english() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let clock = yiwang::clock::Clock::manual(chrono::Utc::now());
    let app = TestApp::spawn_with_clock(Engine::Sqlite, clock.clone()).await;
    let Some(mut b) = browser(&app, "dashboard", Screen::Desktop).await else {
        return;
    };
    let quarter = three_months_of_history(&app, &clock).await;
    app.catch_up().await;
    let analyst = app.token(Role::Analyst, "etdz").await;
    b.sign_in(&analyst, "/dashboard").await;
    b.until(
        "the figures",
        "return document.body.dataset.loaded === 'true'",
    )
    .await;
    assert_eq!(b.text(".tile[data-key=received] .tile-value").await, "10");
    let zhzf = b.text("#by-unit tr[data-unit=zhzf]").await;
    assert!(zhzf.contains("综合行政执法局"), "{zhzf}");
    let cell =
        |unit: &str, field: &str| format!("#by-unit tr[data-unit={unit}] td[data-field={field}]");
    let received: u32 = [
        b.text(&cell("zhzf", "received")).await,
        b.text(&cell("scjg", "received")).await,
    ]
    .iter()
    .map(|s| s.parse::<u32>().expect("a count"))
    .sum();
    assert_eq!(received, 10);
    b.until(
        "two charts",
        "return document.querySelectorAll('.chart canvas').length === 2",
    )
    .await;
    b.until(
        "the open ticket among the overdue",
        "return document.querySelectorAll('#overdue-bars .bar').length === 1",
    )
    .await;
    b.fill("#a-period", &quarter).await;
    b.click("#appraisal-form button[type=submit]").await;
    b.until(
        "the appraisal of the quarter",
        &format!(
            "return (document.querySelector('#appraisal p')?.textContent ?? '').startsWith('{quarter}')"
        ),
    )
    .await;
    let appraisal = b.text("#appraisal details[data-unit=zhzf]").await;
    assert!(appraisal.contains("综合行政执法局"), "{appraisal}");
    let evidence = b
        .css("#appraisal details[data-unit=zhzf] a.evidence-link")
        .await;
    let href = evidence.attr("href").await.expect("href").expect("a link");
    assert!(href.starts_with("/tickets/"), "{href}");
    b.keep_shot("zh").await;
    b.no_console_errors().await;

    b.use_english().await;
    b.until(
        "the figures in English",
        "return document.body.dataset.loaded === 'true'",
    )
    .await;
    assert_eq!(b.text("h1").await, "Department dashboard");
    assert!(
        b.text("#by-unit thead")
            .await
            .contains("On-time completion rate")
    );
    b.fill("#a-period", &quarter).await;
    b.click("#appraisal-form button[type=submit]").await;
    b.until(
        "the appraisal in English",
        &format!(
            "return (document.querySelector('#appraisal p')?.textContent ?? '').startsWith('{quarter}')"
        ),
    )
    .await;
    b.keep_shot("en").await;

    // Evidence links lead to the ticket behind the deduction.
    b.goto(&href).await;
    b.until(
        "the evidence ticket",
        "return document.querySelectorAll('#timeline li').length > 0",
    )
    .await;
    b.finish().await;
    app.finish().await;
}
