//! The ticket page follows its ticket live (issue 22, point 9): when someone else
//! acts through the API, its state and timeline change without a reload, and after
//! a drop of the network it reconnects and catches up. zh and en, 1366 and 360 px.

use serde_json::json;
use yiwang::auth::Role;

use crate::browser::{Browser, ONE_AT_A_TIME, Screen, browser};
use crate::helpers::{CUT, Link, act, dispatched};
use crate::support::{Engine, TestApp};

/// Opens the ticket page and waits for its live feed; marks the window, so that a
/// reload (which would drop the mark) shows.
async fn open_live(b: &Browser, id: &str) {
    b.goto(&format!("/tickets/{id}")).await;
    b.until(
        "the live ticket page",
        "return document.body.dataset.live === 'on' && document.querySelector('#timeline li') !== null",
    )
    .await;
    b.client
        .execute("window.notReloaded = true", vec![])
        .await
        .expect("mark");
}

async fn event_shown(b: &Browser, what: &str, ty: &str) {
    b.until(
        what,
        &format!(
            "return window.notReloaded === true && document.querySelector('#timeline li[data-type={ty}]') !== null"
        ),
    )
    .await;
}

#[tokio::test]
async fn the_ticket_page_follows_what_others_do_and_reconnects_after_a_drop() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(Engine::Sqlite).await;
    let Some(mut b) = browser(&app, "live-ticket", Screen::Wide).await else {
        return;
    };
    let link = Link::to(&app.base).await;
    b.base = link.base.clone();
    let disp = app.token(Role::Dispatcher, "etdz").await;
    let hand = app.token(Role::Handler, "zhzf").await;
    let id = dispatched(&app, "人行道井盖缺失").await;
    let other = dispatched(&app, "另一张工单").await;
    b.sign_in(&disp, "/desk").await;
    open_live(&b, &id).await;
    assert_eq!(b.text("#t-live-text").await, "实时更新中");

    // The handler signs for it, elsewhere: the page shows it without a reload.
    act(&app, &hand, &id, "sign", json!({"handler": "钱工"})).await;
    event_shown(&b, "the signing, live", "TicketSigned").await;
    let facts = b.text("#t-facts").await;
    assert!(facts.contains("钱工"), "the handler in the facts: {facts}");
    // Another ticket's doings do not touch this page.
    act(&app, &hand, &other, "sign", json!({"handler": "孙工"})).await;
    b.keep_shot("signed-live-zh").await;

    // The network drops; meanwhile the ticket is handled; back online, the page
    // reconnects and shows it.
    link.set(false);
    b.until(
        "the live feed to drop",
        "return document.body.dataset.live === 'off'",
    )
    .await;
    b.keep_shot("dropped-zh").await;
    act(&app, &hand, &id, "handle", json!({"result": "已补装井盖"})).await;
    link.set(true);
    event_shown(&b, "the handling after the reconnection", "TicketHandled").await;
    b.until(
        "the handled state",
        "return document.body.dataset.state === 'handled' && document.body.dataset.live === 'on'",
    )
    .await;
    let text = b.text("#timeline").await;
    assert!(!text.contains("孙工"), "only this ticket: {text}");
    b.keep_shot("handled-live-zh").await;
    b.no_console_errors_except_any(CUT).await;

    b.use_english().await;
    open_live(&b, &id).await;
    act(&app, &disp, &id, "verify", json!({"passed": true})).await;
    event_shown(&b, "the verification, live", "VerificationPassed").await;
    b.until(
        "the verified state",
        "return document.body.dataset.state === 'verified'",
    )
    .await;
    assert_eq!(b.text("#t-live-text").await, "Live");
    b.keep_shot("verified-live-en").await;
    b.finish().await;
    app.finish().await;
}

#[tokio::test]
async fn the_ticket_page_on_a_phone_follows_its_ticket() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(Engine::Sqlite).await;
    let Some(mut b) = browser(&app, "live-ticket-phone", Screen::Phone).await else {
        return;
    };
    let disp = app.token(Role::Dispatcher, "etdz").await;
    let hand = app.token(Role::Handler, "zhzf").await;
    let id = dispatched(&app, "路灯不亮").await;
    b.sign_in(&hand, "/desk").await;
    open_live(&b, &id).await;
    // The dispatcher supervises it (督办): the handler's page shows it at once.
    act(&app, &disp, &id, "supervise", json!({"note": "请尽快签收"})).await;
    event_shown(&b, "the supervision, live", "TicketSupervised").await;
    b.keep_shot("supervised-live-zh").await;

    b.use_english().await;
    open_live(&b, &id).await;
    act(
        &app,
        &disp,
        &id,
        "comment",
        json!({"text": "Citizen called again"}),
    )
    .await;
    event_shown(&b, "the comment, live", "TicketCommented").await;
    assert_eq!(b.text("#t-live-text").await, "Live");
    b.keep_shot("commented-live-en").await;
    b.finish().await;
    app.finish().await;
}
