//! Password sign-in (issue 22, point 7) in headless Chromium against the real
//! service: a dispatcher signs in with a user name and password and the desk loads
//! (the session cookie is HttpOnly: the page's script sees only the CSRF cookie),
//! signs out from the page header, and a name that gets five wrong passwords is
//! shown the lock-out with the minutes to wait. Chinese at 1366 px, English on a
//! 360 px phone; screenshots kept under target/screenshots/.

use serde_json::json;
use yiwang::auth::Role;
use yiwang::auth::password::create_user;

use crate::browser::{Browser, ONE_AT_A_TIME, Screen, browser};
use crate::support::{Engine, TestApp};

const PASSWORD: &str = "绿色网格 correct horse";

async fn ready(b: &Browser, path: &str) {
    b.until(
        &format!("{path} ready"),
        &format!(
            "return location.pathname === '{path}' && document.body.classList.contains('ready')"
        ),
    )
    .await;
}

async fn sign_in_with_password(name: &'static str, screen: Screen, english: bool) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(Engine::Sqlite).await;
    let Some(mut b) = browser(&app, name, screen).await else {
        return;
    };
    create_user(
        &app.app.store.pool(),
        "li.dispatch",
        Role::Dispatcher,
        "etdz",
        PASSWORD,
    )
    .await
    .expect("create user");
    b.goto("/login").await;
    ready(&b, "/login").await;
    if english {
        b.use_english().await;
    }
    b.keep_shot("login").await;
    b.fill("#user", "li.dispatch").await;
    b.fill("#password", PASSWORD).await;
    b.click("#password-submit").await;
    ready(&b, "/desk").await;
    b.until(
        "the desk's header names the user",
        "return document.querySelector('#who .user')?.textContent === 'li.dispatch'",
    )
    .await;
    // The page's script sees the CSRF cookie, never the session's.
    let cookies = b
        .client
        .execute("return document.cookie", vec![])
        .await
        .expect("cookies");
    let cookies = cookies.as_str().unwrap_or_default();
    assert!(cookies.contains("yw_csrf="), "{cookies}");
    assert!(!cookies.contains("yw_session"), "{cookies}");
    // The desk's own layout is its tests' to check (keep_shot fails on overflow).
    b.shot("desk").await;

    // Sign out from the header: the session ends on the service.
    let before: i64 = session_count(&app).await;
    b.click("#sign-out").await;
    ready(&b, "/login").await;
    assert_eq!(
        session_count(&app).await,
        before - 1,
        "the session was not revoked"
    );
    let reopened = b
        .client
        .execute("return document.cookie", vec![])
        .await
        .expect("cookies");
    assert!(!reopened.as_str().unwrap_or_default().contains("yw_csrf="));
    b.goto("/desk").await;
    ready(&b, "/login").await;

    // Five wrong passwords: the fifth answer is the lock-out, in the page's language.
    for attempt in 1..=5 {
        b.fill("#user", "li.dispatch").await;
        b.fill("#password", "not the password").await;
        b.click("#password-submit").await;
        b.until(
            &format!("the answer to attempt {attempt}"),
            "return document.getElementById('password-status').textContent !== '' \
             && !document.getElementById('password-submit').disabled",
        )
        .await;
    }
    let status = b.text("#password-status").await;
    let (wrong, locked) = if english {
        ("wrong", "try again in 15 min")
    } else {
        ("不正确", "15 分钟后再试")
    };
    assert!(status.contains(locked), "{status}");
    b.keep_shot("locked-out").await;
    // The right password now is refused too.
    b.fill("#password", PASSWORD).await;
    b.click("#password-submit").await;
    b.until(
        "the lock-out again",
        &format!(
            "return document.getElementById('password-status').textContent.includes({})",
            json!(locked)
        ),
    )
    .await;
    // And a wrong password for another name reads as plain "wrong".
    b.fill("#user", "nobody").await;
    b.fill("#password", "not the password").await;
    b.click("#password-submit").await;
    b.until(
        "a wrong password",
        &format!(
            "return document.getElementById('password-status').textContent.includes({})",
            json!(wrong)
        ),
    )
    .await;
    // The refused sign-ins are the only errors the browser logged (401, 429).
    b.no_console_errors_except("/api/v1/session").await;
    b.finish().await;
    app.finish().await;
}

async fn session_count(app: &TestApp) -> i64 {
    match app.app.store.pool() {
        yiwang::store::Pool::Sqlite(p) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
                .fetch_one(&p)
                .await
                .expect("count")
        }
        yiwang::store::Pool::Postgres(p) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
                .fetch_one(&p)
                .await
                .expect("count")
        }
    }
}

#[tokio::test]
async fn password_sign_in_opens_the_desk_and_shows_a_lock_out_zh_1366() {
    sign_in_with_password("signin-zh-1366", Screen::Wide, false).await;
}

#[tokio::test]
async fn password_sign_in_opens_the_desk_and_shows_a_lock_out_en_360() {
    sign_in_with_password("signin-en-360", Screen::Phone, true).await;
}
