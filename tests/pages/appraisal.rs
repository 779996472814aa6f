//! The appraisal pages (issue 21, point 8) in headless Chromium, against the real
//! service (SQLite; the entry test on PostgreSQL too): a township appraiser enters an
//! item of a judicial office's sheet and sees the score move, withdraws it and sees
//! the score restore; the ranking shows a department's grade with its coefficient and
//! yellow card, and a district appraiser records one on the page; a department's
//! evaluation is given, a township closes its year and the district reopens it; a
//! bulletin is published, opened, and shows its drift; a computed item links its
//! ticket by number. Chinese at 1366 px, English on a 360 px phone; screenshots kept
//! under target/screenshots/, no console errors.

use serde_json::json;
use yiwang::auth::Role;

use crate::browser::{Browser, ONE_AT_A_TIME, Screen, browser};
use crate::support::{Engine, TestApp, engines};

/// Today's month, quarter and year in Asia/Shanghai: `2026-12`, `2026-Q4`, `2026`.
fn periods() -> (String, String, String) {
    use chrono::Datelike;
    let d = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    (
        format!("{}-{:02}", d.year(), d.month()),
        format!("{}-Q{}", d.year(), (d.month() - 1) / 3 + 1),
        d.year().to_string(),
    )
}

async fn loaded(b: &Browser, what: &str) {
    b.until(what, "return document.body.dataset.loaded === 'true'")
        .await;
}

async fn score_is(b: &Browser, what: &str, score: &str) {
    b.until(
        what,
        &format!(
            "return document.body.dataset.loaded === 'true' && \
             document.querySelector('#ap-score')?.textContent === '{score}'"
        ),
    )
    .await;
}

/// The element's right edge is on the screen (nothing hides the points column).
async fn on_screen(b: &Browser, selector: &str) {
    let inside = b
        .client
        .execute(
            &format!(
                "const e = document.querySelector(\"{selector}\"); \
                 const r = e.getBoundingClientRect(); \
                 return r.width > 0 && r.left >= 0 && r.right <= document.documentElement.clientWidth;"
            ),
            vec![],
        )
        .await
        .expect("a rectangle");
    assert_eq!(
        inside,
        json!(true),
        "{}: {selector} is off the screen",
        b.name
    );
}

async fn enter_and_withdraw(name: &'static str, screen: Screen, english: bool, engine: Engine) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(engine).await;
    let Some(mut b) = browser(&app, name, screen).await else {
        return;
    };
    let (month, _, _) = periods();
    let lang = if english { "en" } else { "zh" };
    let appraiser = app.token(Role::Appraiser, "hg").await;
    b.sign_in(&appraiser, "/appraisal").await;
    loaded(&b, "the overview").await;
    if english {
        b.use_english().await;
        loaded(&b, "the overview in English").await;
        assert_eq!(b.text("h1").await, "Appraisal");
    } else {
        assert_eq!(b.text("h1").await, "考核");
    }
    let row = b.text("#ap-scores tr[data-unit='hg-sfs']").await;
    assert!(
        row.contains(if english {
            "Huangguan Judicial Office"
        } else {
            "皇冠司法所"
        }) && row.contains("100.00"),
        "{row}"
    );
    b.keep_shot(&format!("overview-{lang}")).await;

    // The judicial office's sheet: every section, nothing deducted yet.
    b.click("#ap-scores a[data-open='hg-sfs']").await;
    score_is(&b, "the judicial office's sheet", "100.00").await;
    let sections = b
        .client
        .execute(
            "return document.querySelectorAll('.ap-section[data-section]').length",
            vec![],
        )
        .await
        .expect("sections");
    assert_eq!(sections, json!(6), "the six sections of 三(二)");

    // Two complaints about staff, −5 each.
    let item = "li.item[data-item='standards.staff_complaint']";
    b.css("#e-item")
        .await
        .select_by_value("standards.staff_complaint")
        .await
        .expect("pick the item");
    b.fill("#e-count", "2").await;
    b.fill(
        "#e-note",
        if english {
            "Two complaints about the front desk"
        } else {
            "窗口工作人员被投诉两次"
        },
    )
    .await;
    b.keep_shot(&format!("form-{lang}")).await;
    b.click("#e-submit").await;
    score_is(&b, "the score after the entry", "90.00").await;
    assert_eq!(
        b.text(&format!("{item} .item-points")).await,
        "−10.00",
        "the item's points"
    );
    let section = b
        .text(".ap-section[data-section='standards'] [data-field='section_total']")
        .await;
    assert_eq!(section, "−10.00");
    on_screen(&b, &format!("{item} .item-points")).await;
    let entries = app
        .get("/api/v1/appraisal/entries?unit=hg-sfs", &appraiser)
        .await;
    assert_eq!(entries.status, 200, "{}", entries.body);
    let items = entries.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{}", entries.body);
    assert_eq!(items[0]["count"], 2);
    assert_eq!(items[0]["period"], month.as_str());
    b.keep_shot(&format!("entered-{lang}")).await;

    // Withdrawn with a reason: the score is back, the entry stays, struck through.
    b.click(&format!("{item} button[data-ask='withdraw']"))
        .await;
    b.fill(
        &format!("{item} form.reason-form input[name='reason']"),
        if english {
            "Entered twice"
        } else {
            "重复录入"
        },
    )
    .await;
    b.click(&format!("{item} button[data-confirm='withdraw']"))
        .await;
    score_is(&b, "the score after the withdrawal", "100.00").await;
    b.until(
        "the withdrawn entry",
        &format!("return document.querySelector(\"{item} li.entry.withdrawn\") !== null"),
    )
    .await;
    let line = b.text(&format!("{item} li.entry.withdrawn")).await;
    assert!(
        line.contains(if english {
            "Entered twice"
        } else {
            "重复录入"
        }),
        "{line}"
    );
    let entries = app
        .get("/api/v1/appraisal/entries?unit=hg-sfs", &appraiser)
        .await;
    assert!(
        entries.body["items"][0]["withdrawn"].is_object(),
        "{}",
        entries.body
    );
    b.keep_shot(&format!("withdrawn-{lang}")).await;
    b.finish().await;
    app.finish().await;
}

#[tokio::test]
async fn an_appraiser_enters_an_item_sees_the_score_move_and_withdraws_it() {
    // On both engines: the entry and its withdrawal are events in either log.
    for engine in engines().await {
        let name = match engine {
            Engine::Sqlite => "appraisal-entry",
            Engine::Postgres => "appraisal-entry-pg",
        };
        enter_and_withdraw(name, Screen::Wide, false, engine).await;
    }
}

#[tokio::test]
async fn an_appraiser_enters_and_withdraws_an_item_on_a_phone_in_english() {
    enter_and_withdraw("appraisal-entry-phone", Screen::Phone, true, Engine::Sqlite).await;
}

/// A township's evaluation of a department for `year`, through the API.
async fn evaluate(app: &TestApp, township: &str, unit: &str, year: &str, points: f64) {
    let token = app.token(Role::Appraiser, township).await;
    let r = app
        .post(
            "/api/v1/appraisal/entries",
            &token,
            json!({"unit": unit, "period": year, "item": "township_evaluation",
                   "points": points, "grade_word": "较好", "note": "年度综合评价"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

async fn ranking_with_grades(name: &'static str, screen: Screen, english: bool) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(Engine::Sqlite).await;
    let Some(mut b) = browser(&app, name, screen).await else {
        return;
    };
    let (_, _, year) = periods();
    let lang = if english { "en" } else { "zh" };
    // 综合行政执法局: (24 + 26) / 2 = 25; 市场监督管理局: 28.
    evaluate(&app, "hg", "zhzf", &year, 24.0).await;
    evaluate(&app, "fl", "zhzf", &year, 26.0).await;
    evaluate(&app, "hg", "scjg", &year, 28.0).await;
    let district = app.token(Role::Appraiser, "etdz").await;
    let r = app
        .post(
            "/api/v1/appraisal/grades",
            &district,
            json!({"unit": "zhzf", "year": year.parse::<i32>().expect("a year"),
                   "grade": 3, "note": "年度考核三等"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    b.sign_in(&district, "/appraisal").await;
    if english {
        b.use_english().await;
    }
    b.goto(&format!("/appraisal/ranking?period={year}&kind=department"))
        .await;
    loaded(&b, "the ranking").await;
    let zhzf = "#ranking tr[data-unit='zhzf']";
    let scjg = "#ranking tr[data-unit='scjg']";
    assert_eq!(b.text(&format!("{scjg} td.rank")).await, "1");
    assert_eq!(b.text(&format!("{zhzf} td.rank")).await, "2");
    assert_eq!(
        b.text(&format!("{zhzf} [data-field='score']")).await,
        "25.00"
    );
    assert_eq!(
        b.text(&format!("{zhzf} [data-field='grade']")).await,
        if english { "Grade 3" } else { "三等" }
    );
    assert_eq!(
        b.text(&format!("{zhzf} [data-field='coefficient']")).await,
        "0.9"
    );
    let card = b.text(&format!("{zhzf} [data-field='yellow_card']")).await;
    assert_eq!(card, if english { "Yellow card" } else { "黄牌" });
    b.keep_shot(&format!("ranking-{lang}")).await;

    // The district appraiser grades the other department on the page.
    b.click(&format!("{scjg} button[data-grade='scjg']")).await;
    b.css(&format!("{scjg} form.reason-form select[name='grade']"))
        .await
        .select_by_value("1")
        .await
        .expect("grade 1");
    b.fill(
        &format!("{scjg} form.reason-form input[name='note']"),
        "工作突出",
    )
    .await;
    b.click(&format!("{scjg} form.reason-form button[type='submit']"))
        .await;
    b.until(
        "the grade on the page",
        &format!(
            "return document.querySelector(\"{scjg} [data-field='coefficient']\")?.textContent === '1.1'"
        ),
    )
    .await;
    let r = app
        .get(
            &format!("/api/v1/appraisal/ranking?period={year}&kind=department"),
            &district,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let first = &r.body["items"][0];
    assert_eq!(first["unit"], "scjg", "{}", r.body);
    assert_eq!(first["grade"], 1, "{}", r.body);
    let no_card = b
        .client
        .execute(
            &format!("return document.querySelector(\"{scjg} .yellow-card\") === null"),
            vec![],
        )
        .await
        .expect("a look");
    assert_eq!(no_card, json!(true), "grade 1 has no yellow card");
    b.keep_shot(&format!("graded-{lang}")).await;

    // The department's own page: the two townships' evaluations and their mean.
    b.goto(&format!("/appraisal?period={year}&unit=zhzf")).await;
    score_is(&b, "the department's evaluations", "25.00").await;
    let evals = b.text("#evaluations").await;
    assert!(
        if english {
            evals.contains("Huangguan Subdistrict") && evals.contains("Fenglin Subdistrict")
        } else {
            evals.contains("皇冠街道网格化治理中心") && evals.contains("凤林街道网格化治理中心")
        },
        "{evals}"
    );
    b.keep_shot(&format!("department-{lang}")).await;
    b.finish().await;
    app.finish().await;
}

#[tokio::test]
async fn the_ranking_shows_grades_coefficients_and_yellow_cards() {
    ranking_with_grades("appraisal-ranking", Screen::Wide, false).await;
}

#[tokio::test]
async fn the_ranking_shows_grades_on_a_phone_in_english() {
    ranking_with_grades("appraisal-ranking-phone", Screen::Phone, true).await;
}

#[tokio::test]
async fn a_bulletin_is_published_and_shows_its_drift() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(Engine::Sqlite).await;
    let Some(mut b) = browser(&app, "appraisal-bulletin", Screen::Wide).await else {
        return;
    };
    let (month, _, _) = periods();
    let appraiser = app.token(Role::Appraiser, "hg").await;
    b.sign_in(&appraiser, "/appraisal").await;
    b.goto(&format!("/appraisal/bulletins?period={month}"))
        .await;
    loaded(&b, "the bulletins").await;
    b.click("#b-publish").await;
    b.until(
        "the published bulletin, opened",
        "return document.body.dataset.loaded === 'true' && !document.getElementById('b-open').hidden \
         && document.querySelectorAll('#b-list li.bulletin').length === 1",
    )
    .await;
    assert_eq!(
        b.text("#frozen tr[data-unit='hg-sfs'] [data-field='frozen']")
            .await,
        "100.00"
    );
    // An entry after the bulletin: the bulletin keeps its figure and shows the drift.
    let r = app
        .post(
            "/api/v1/appraisal/entries",
            &appraiser,
            json!({"unit": "hg-sfs", "period": month, "item": "cooperation.refusal",
                   "count": 1, "note": "未配合人民调解工作"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    b.client.refresh().await.expect("reload");
    b.until(
        "the drift",
        "return document.querySelector(\"#drift li[data-unit='hg-sfs']\") !== null",
    )
    .await;
    assert_eq!(
        b.text("#frozen tr[data-unit='hg-sfs'] [data-field='frozen']")
            .await,
        "100.00"
    );
    assert_eq!(
        b.text("#frozen tr[data-unit='hg-sfs'] [data-field='now']")
            .await,
        "98.00"
    );
    b.keep_shot("drift-zh").await;
    b.use_english().await;
    b.until(
        "the drift in English",
        "return document.body.dataset.loaded === 'true' && \
         (document.querySelector('#drift h3')?.textContent ?? '') === 'Changed since'",
    )
    .await;
    b.keep_shot("drift-en").await;
    b.finish().await;
    app.finish().await;
}

/// A ticket of the township's enforcement squad, supervised twice this month: the
/// squad's sheet shows 被重复督查督办 −2 with the ticket linked by its number.
#[tokio::test]
async fn a_computed_item_links_its_ticket_by_number() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(Engine::Sqlite).await;
    let Some(mut b) = browser(&app, "appraisal-evidence", Screen::Wide).await else {
        return;
    };
    let (month, _, _) = periods();
    let hot = app.token(Role::HotlineAgent, "etdz").await;
    let district = app.token(Role::Dispatcher, "etdz").await;
    let township = app.token(Role::Dispatcher, "hg").await;
    let r = app
        .post("/api/v1/tickets", &hot, crate::support::ticket_body())
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_string();
    let number = r.body["number"].as_str().expect("number").to_string();
    for (token, action, body) in [
        (&district, "assign", json!({"unit": "hg"})),
        (&township, "assign", json!({"unit": "hg-zfzd"})),
        (&township, "supervise", json!({"note": "请加快办理"})),
        (&township, "supervise", json!({"note": "再次督办"})),
    ] {
        let r = app
            .post(&format!("/api/v1/tickets/{id}/{action}"), token, body)
            .await;
        assert_eq!(r.status, 200, "{action}: {}", r.body);
    }
    app.catch_up().await;
    let appraiser = app.token(Role::Appraiser, "hg").await;
    b.sign_in(&appraiser, "/appraisal").await;
    b.goto(&format!("/appraisal?period={month}&unit=hg-zfzd"))
        .await;
    let item = "li.item[data-item='supervision.repeated']";
    b.until(
        "the ticket's number as the evidence",
        &format!(
            "return document.querySelector(\"{item} a.evidence-link\")?.textContent === '{number}'"
        ),
    )
    .await;
    assert_eq!(b.text(&format!("{item} .item-points")).await, "−2.00");
    let href = b
        .css(&format!("{item} a.evidence-link"))
        .await
        .attr("href")
        .await
        .expect("href");
    assert_eq!(href, Some(format!("/tickets/{id}")));
    b.keep_shot("squad-zh").await;
    b.finish().await;
    app.finish().await;
}

/// A department's yearly evaluation given on the page (by the district appraiser,
/// for 皇冠街道), then 皇冠街道 closes its year (报送): its entry form gives way to a
/// notice (and the API refuses an entry, 409) until the district reopens the year.
#[tokio::test]
async fn a_department_is_evaluated_and_a_township_closes_its_year() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(Engine::Sqlite).await;
    let Some(mut b) = browser(&app, "appraisal-evaluation", Screen::Wide).await else {
        return;
    };
    let (_, _, year) = periods();
    let district = app.token(Role::Appraiser, "etdz").await;
    let appraiser = app.token(Role::Appraiser, "hg").await;
    b.sign_in(&district, "/appraisal").await;
    b.goto(&format!("/appraisal?period={year}&unit=sthj")).await;
    loaded(&b, "the department").await;
    assert_eq!(b.text("#ap-score").await, "—", "no evaluation yet");
    b.css("#v-township")
        .await
        .select_by_value("hg")
        .await
        .expect("the township");
    b.fill("#v-points", "27.5").await;
    b.css("#v-word")
        .await
        .select_by_value("较好")
        .await
        .expect("a level");
    b.fill("#v-note", "配合街道工作积极，响应及时").await;
    b.keep_shot("form-zh").await;
    b.click("#v-submit").await;
    score_is(&b, "the department's score", "27.50").await;
    let row = b.text("#evaluations tr[data-township='hg']").await;
    assert!(row.contains("27.5") && row.contains("较好"), "{row}");
    b.keep_shot("evaluated-zh").await;

    // The township closes its year; the page says so and its entries are refused.
    b.sign_in(&appraiser, "/appraisal").await;
    b.goto(&format!("/appraisal?period={year}")).await;
    loaded(&b, "the township's year").await;
    assert_eq!(
        b.text("#to-evaluate tr[data-unit='sthj'] [data-field='points']")
            .await,
        "27.5"
    );
    let other = b.text("#to-evaluate tr[data-unit='zhzf']").await;
    assert!(other.contains("未评价"), "{other}");
    b.keep_shot("year-zh").await;
    b.click("#ap-year button[data-submit='hg']").await;
    b.click("#ap-year li[data-township='hg'] button[data-confirm='submit']")
        .await;
    b.until(
        "the year submitted",
        "return document.querySelector(\"#ap-year li[data-township='hg']\")?.dataset.state === 'submitted'",
    )
    .await;
    let r = app
        .get(
            &format!("/api/v1/appraisal/submissions?year={year}"),
            &appraiser,
        )
        .await;
    assert_eq!(r.body["items"][0]["submitted"], true, "{}", r.body);
    b.goto(&format!("/appraisal?period={year}&unit=hg-scjgs"))
        .await;
    loaded(&b, "the market office").await;
    let closed = b.text("#entry-closed").await;
    assert!(closed.contains("已报送"), "{closed}");
    let r = app
        .post(
            "/api/v1/appraisal/entries",
            &appraiser,
            json!({"unit": "hg-scjgs", "period": year, "item": "standards.dress",
                   "count": 1, "note": "未按规定着装"}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    b.keep_shot("closed-zh").await;

    // Reopened by the district: the form is back.
    b.sign_in(&district, "/appraisal").await;
    b.goto(&format!("/appraisal?period={year}&unit=hg-scjgs"))
        .await;
    loaded(&b, "the district's view").await;
    b.click("#ap-year li[data-township='hg'] button[data-ask='reopen']")
        .await;
    b.fill(
        "#ap-year li[data-township='hg'] form.reason-form input[name='reason']",
        "补录年终检查结果",
    )
    .await;
    b.click("#ap-year li[data-township='hg'] button[data-confirm='reopen']")
        .await;
    b.until(
        "the form back",
        "return document.body.dataset.loaded === 'true' && document.querySelector('#entry-form') !== null \
         && document.querySelector(\"#ap-year li[data-township='hg']\")?.dataset.state === 'open'",
    )
    .await;
    b.keep_shot("reopened-zh").await;
    b.finish().await;
    app.finish().await;
}

/// A township appraiser opens a district department and gives its own evaluation
/// (design21: a township appraiser reads all departments). Ignored while
/// `GET /api/v1/appraisal?unit=<department>` answers a township's token 403 ("outside
/// hg"): get_appraisal checks `org.is_within` where `auth::appraisal::sees` lets a
/// township read departments.
#[tokio::test]
async fn a_township_appraiser_evaluates_a_department_on_its_page() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(Engine::Sqlite).await;
    let Some(mut b) = browser(&app, "appraisal-township-evaluation", Screen::Phone).await else {
        return;
    };
    let (_, _, year) = periods();
    let appraiser = app.token(Role::Appraiser, "hg").await;
    b.sign_in(&appraiser, "/appraisal").await;
    b.goto(&format!("/appraisal?period={year}")).await;
    loaded(&b, "the township's year").await;
    b.click("#to-evaluate a[data-open='sthj']").await;
    loaded(&b, "the department").await;
    b.fill("#v-points", "26").await;
    b.fill("#v-note", "支持街道工作有力").await;
    b.click("#v-submit").await;
    score_is(&b, "the department's score", "26.00").await;
    // One evaluation per township and year: no second form.
    b.css("#eval-given").await;
    b.keep_shot("evaluated-zh").await;
    b.finish().await;
    app.finish().await;
}
