//! The dashboard shows what the API answers, cell by cell: for a range spanning
//! three months (the National Day history of the statistics tests and two tickets
//! crossing the end of October), every tile equals the `granularity=total` row of
//! the unit, every row of the table by unit an item of that answer (subtotals
//! marked 小计/Subtotal), every row of the table by period an item of the months'
//! answer; the overdue bars leave the subtotal out and agree with the tile. In
//! Chinese and English, at 1366 and 360 px, with screenshots kept.

#[path = "../service/stats_history.rs"]
mod stats_history;

use serde_json::{Value, json};
use yiwang::auth::Role;
use yiwang::clock::Clock;

use crate::browser::{Browser, ONE_AT_A_TIME, Screen, browser};
use crate::support::{Engine, TestApp};
use stats_history::{bj, crossing, history, import};

const FROM: &str = "2026-09-01";
const TO: &str = "2026-11-30";

/// A rate as the page shows it: a percent to one decimal, rounded half up.
fn pct(v: &Value) -> String {
    match v.as_f64() {
        Some(r) => format!("{:.1}%", (r * 1000.0).round() / 10.0),
        None => "—".into(),
    }
}

/// Hours as the page shows them: one decimal, rounded half up.
fn hours(v: &Value) -> String {
    match v.as_f64() {
        Some(h) => format!("{:.1}", (h * 10.0).round() / 10.0),
        None => "—".into(),
    }
}

fn count(v: &Value) -> String {
    v.as_u64().expect("a count").to_string()
}

/// The text the page must show for `field` of an API item.
fn shown(item: &Value, field: &str) -> String {
    match field {
        "signed_on_time_rate" | "on_time_rate" | "satisfaction_rate" => pct(&item[field]),
        "turnaround_median" => hours(&item["turnaround_hours"]["median"]),
        _ => count(&item[field]),
    }
}

const TILES: [&str; 8] = [
    "received",
    "due_to_finish",
    "handled",
    "signed_on_time_rate",
    "on_time_rate",
    "overdue_open",
    "turnaround_median",
    "satisfaction_rate",
];

const COLUMNS: [&str; 11] = [
    "received",
    "due_to_finish",
    "handled",
    "signed_on_time_rate",
    "on_time_rate",
    "overdue_open",
    "turnaround_median",
    "returns",
    "supervisions",
    "verification_failures",
    "satisfaction_rate",
];

/// Every row of a figures table: its unit, period, first cell and cells by field.
const READ_TABLE: &str = "return [...document.querySelectorAll(arguments[0] + ' tbody tr')].map((tr) => ({ \
    unit: tr.dataset.unit, period: tr.dataset.period, head: tr.querySelector('th').textContent, \
    cells: Object.fromEntries([...tr.querySelectorAll('td')].map((td) => [td.dataset.field, td.textContent])) }));";

async fn stats(app: &TestApp, token: &str, unit: &str, granularity: &str) -> Value {
    let r = app
        .get(
            &format!(
                "/api/v1/stats/units?unit={unit}&from={FROM}&to={TO}&granularity={granularity}"
            ),
            token,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// Asks the page for `unit` over the range, by month, and waits for its answer.
async fn show(b: &Browser, unit: &str) {
    b.until(
        "the first figures",
        "return document.body.dataset.loaded === 'true'",
    )
    .await;
    b.client
        .execute(
            "document.getElementById('d-unit').value = arguments[0]; \
             document.getElementById('d-granularity').value = 'month'; \
             document.getElementById('d-from').value = arguments[1]; \
             document.getElementById('d-to').value = arguments[2];",
            vec![json!(unit), json!(FROM), json!(TO)],
        )
        .await
        .expect("set the form");
    b.click("#period button[type=submit]").await;
    let q = format!("unit={unit}&granularity=month&from={FROM}&to={TO}");
    b.until(
        "the figures of the range",
        &format!("return document.body.dataset.stats === '{q}'"),
    )
    .await;
}

/// A unit's name as the page shows it: in English, the organisation file's
/// `name_en` (the API's `unit_name` is the Chinese name).
fn shown_name(item: &Value, english: bool) -> String {
    let name = item["unit_name"].as_str().expect("a name").to_string();
    if !english {
        return name;
    }
    let org: Value = serde_json::from_str(include_str!("../../schema/reference/demo-org.json"))
        .expect("the demo organisation");
    org["units"]
        .as_array()
        .expect("units")
        .iter()
        .find(|u| u["code"] == item["unit"])
        .and_then(|u| u["name_en"].as_str())
        .map_or(name, str::to_string)
}

/// Compares every tile, table cell and bar with the API's answers.
async fn same_as_api(b: &Browser, total: &Value, months: &Value, unit: &str, subtotal: &str) {
    let items = total["items"].as_array().expect("items");
    let own = items.iter().find(|i| i["unit"] == unit).expect("own row");
    for key in TILES {
        let got = b.text(&format!(".tile[data-key={key}] .tile-value")).await;
        assert_eq!(got, shown(own, key), "{}: tile {key}", b.name);
    }
    let rows = b
        .client
        .execute(READ_TABLE, vec![json!("#by-unit")])
        .await
        .expect("the table by unit");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), items.len(), "{}: rows by unit {rows:?}", b.name);
    for (row, item) in rows.iter().zip(items) {
        assert_eq!(row["unit"], item["unit"], "{}: the API's order", b.name);
        let name = shown_name(item, subtotal == "Subtotal");
        let head = if item["subtotal"] == true {
            format!("{name}{subtotal}")
        } else {
            name.to_string()
        };
        assert_eq!(row["head"], json!(head), "{}", b.name);
        for f in COLUMNS {
            assert_eq!(
                row["cells"][f],
                json!(shown(item, f)),
                "{}: {} {f}",
                b.name,
                item["unit"]
            );
        }
    }
    let periods: Vec<&Value> = months["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["unit"] == unit)
        .collect();
    let rows = b
        .client
        .execute(READ_TABLE, vec![json!("#by-period")])
        .await
        .expect("the table by period");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), periods.len(), "{}: rows by period", b.name);
    for (row, item) in rows.iter().zip(&periods) {
        assert_eq!(row["head"], item["period"], "{}", b.name);
        for f in COLUMNS {
            assert_eq!(
                row["cells"][f],
                json!(shown(item, f)),
                "{}: {} {f}",
                b.name,
                item["period"]
            );
        }
    }
    // The bars: each unit's own row with tickets overdue, never a subtotal.
    let bars = b
        .client
        .execute(
            "return [...document.querySelectorAll('#overdue-bars .bar')].map((x) => \
             [x.dataset.unit, x.querySelector('.bar-value').textContent]);",
            vec![],
        )
        .await
        .expect("the bars");
    let want: Vec<Value> = items
        .iter()
        .filter(|i| i["subtotal"] == false && i["overdue_open"].as_u64() > Some(0))
        .map(|i| json!([i["unit"], count(&i["overdue_open"])]))
        .collect();
    assert_eq!(bars, json!(want), "{}: overdue bars", b.name);
    // "No overdue tickets" only under a tile that says 0, and then no bar.
    let card = b.text("#overdue-bars").await;
    if own["overdue_open"] == 0 {
        assert!(want.is_empty() && !card.is_empty(), "{}: {card:?}", b.name);
    } else {
        assert!(!want.is_empty(), "{}: overdue {own} without a bar", b.name);
    }
}

async fn import_history(app: &TestApp) {
    let dir = tempfile::tempdir().expect("a directory");
    let file = dir.path().join("history.ndjson");
    std::fs::write(&file, history() + &crossing()).expect("write");
    let out = import(&app.db.url, &file);
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.catch_up().await;
}

#[tokio::test]
async fn the_dashboard_shows_the_api_figures_of_a_range_cell_by_cell() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app =
        TestApp::spawn_with_clock(Engine::Sqlite, Clock::manual(bj("2026-12-01T12:00:00"))).await;
    import_history(&app).await;
    let analyst = app.token(Role::Analyst, "etdz").await;
    let total = stats(&app, &analyst, "hg", "total").await;
    let months = stats(&app, &analyst, "hg", "month").await;
    // The township's row is a subtotal of its two agencies; T7 and T8 count once.
    assert_eq!(total["items"][0]["subtotal"], true);
    assert_eq!(total["items"][1]["due_to_finish"], 5, "{total}");

    for (name, screen) in [
        ("dashboard-range-1366", Screen::Wide),
        ("dashboard-range-360", Screen::Phone),
    ] {
        let Some(mut b) = browser(&app, name, screen).await else {
            return;
        };
        b.sign_in(&analyst, "/dashboard").await;
        show(&b, "hg").await;
        same_as_api(&b, &total, &months, "hg", "小计").await;
        b.keep_shot("zh").await;

        // Sorting by a column orders the rows by it, largest first, then back.
        b.click("#by-unit th[data-field=received]").await;
        let order = |b: &Browser| {
            let c = b.client.clone();
            async move {
                c.execute(
                    "return [...document.querySelectorAll('#by-unit tbody tr')].map((tr) => tr.dataset.unit)",
                    vec![],
                )
                .await
                .expect("order")
            }
        };
        assert_eq!(order(&b).await, json!(["hg", "hg-zfzd", "hg-scjgs"]));
        b.click("#by-unit th[data-field=received]").await;
        assert_eq!(order(&b).await, json!(["hg-scjgs", "hg-zfzd", "hg"]));
        b.click("#by-unit th[data-field=overdue_open]").await;
        assert_eq!(
            order(&b).await[2],
            json!("hg-zfzd"),
            "{name}: no overdue last"
        );
        b.no_console_errors().await;

        b.use_english().await;
        show(&b, "hg").await;
        same_as_api(&b, &total, &months, "hg", "Subtotal").await;
        b.keep_shot("en").await;
        b.finish().await;
    }

    // A handler of the market office: the tile and the card agree (T5 is overdue).
    let handler = app.token(Role::Handler, "hg-scjgs").await;
    let total = stats(&app, &handler, "hg-scjgs", "total").await;
    let months = stats(&app, &handler, "hg-scjgs", "month").await;
    assert_eq!(total["items"][0]["overdue_open"], 1, "{total}");
    let Some(mut b) = browser(&app, "dashboard-range-handler-360", Screen::Phone).await else {
        return;
    };
    b.sign_in(&handler, "/desk").await;
    b.goto("/dashboard").await;
    show(&b, "hg-scjgs").await;
    same_as_api(&b, &total, &months, "hg-scjgs", "小计").await;
    assert!(
        !b.text("#overdue-bars").await.contains("没有超期"),
        "the card under an overdue tile"
    );
    b.keep_shot("zh").await;
    b.use_english().await;
    show(&b, "hg-scjgs").await;
    same_as_api(&b, &total, &months, "hg-scjgs", "Subtotal").await;
    b.keep_shot("en").await;
    b.finish().await;
    app.finish().await;
}
