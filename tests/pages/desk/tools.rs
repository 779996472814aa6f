//! The desk's tools (issue 22, points 3 and 5): a returned ticket that is not
//! suggested back to the unit that returned it, dispatched with a co-unit (协办); bulk
//! dispatch of five tickets with a partial failure shown per ticket; the table view
//! sorted and remembered; the keyboard shortcuts; the urgent-ticket notice.

use serde_json::{Value, json};
use yiwang::auth::Role;

use super::{id_of, js, loaded, open_desk, screen};
use crate::browser::{ONE_AT_A_TIME, browser};
use crate::helpers::{act, create};
use crate::support::{Engine, TestApp, engines, ticket_body};

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
    // A second call about the same thing, to close as its duplicate by number.
    let mut body = ticket_body();
    body["title"] = json!("重复来电");
    let again = id_of(&create(&app, body).await);
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

    // 结案 as a duplicate, naming the earlier ticket by its number.
    let card = format!("#queue li.ticket[data-id='{again}']");
    b.click(&format!("{card} button[data-action='close']"))
        .await;
    let form = format!("{card} form[data-form='close']");
    b.fill(
        &format!("{form} input[name=duplicate_of]"),
        returned["number"].as_str().expect("number"),
    )
    .await;
    b.click(&format!("{form} button[data-submit='close']"))
        .await;
    b.until(
        "the duplicate to leave the queue",
        &format!("return document.querySelector(\"{card}\") === null"),
    )
    .await;
    let got = app.get(&format!("/api/v1/tickets/{again}"), &disp).await;
    assert_eq!(got.body["close_code"], "duplicate", "{}", got.body);
    assert_eq!(got.body["duplicate_of"], json!(rid), "{}", got.body);

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
