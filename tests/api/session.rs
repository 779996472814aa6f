//! Password sign-in (issue 22, point 7) over real HTTP on both engines: the session
//! cookie and its attributes, a command with the cookie and its CSRF token (and
//! without: 403, nothing recorded), sign-out, the lock-out after wrong passwords
//! (429 with Retry-After, the same for a name that does not exist), a wrong user
//! and a wrong password told apart by nothing, an administrator's lock, and a grid
//! worker's device binding.

use crate::support;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;
use yiwang::auth::Role;
use yiwang::auth::password::{create_user, lock_user, unlock_user};

use support::{Resp, TestApp, engines, ticket_body};

const PASSWORD: &str = "网格 correct horse 42";

/// A browser's session: the cookies it holds and the CSRF token it was given.
struct Browser {
    session: String,
    csrf: String,
}

impl Browser {
    fn cookie(&self) -> String {
        format!("yw_session={}; yw_csrf={}", self.session, self.csrf)
    }
}

async fn sign_in_as(app: &TestApp, user: &str, password: &str, cookie: Option<&str>) -> Resp {
    let headers: Vec<(&str, String)> = cookie
        .map(|c| ("Cookie", c.to_string()))
        .into_iter()
        .collect();
    app.send(
        Method::POST,
        "/api/v1/session",
        None,
        Some(&json!({"user": user, "password": password})),
        &headers,
    )
    .await
}

/// The `Set-Cookie` line for `name`.
fn set_cookie(r: &Resp, name: &str) -> Option<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn cookie_value(line: &str) -> String {
    line.split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

async fn signed_in(app: &TestApp, user: &str) -> Browser {
    let r = sign_in_as(app, user, PASSWORD, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let session = cookie_value(&set_cookie(&r, "yw_session").expect("session cookie"));
    Browser {
        session,
        csrf: r.body["csrf_token"]
            .as_str()
            .expect("csrf_token")
            .to_string(),
    }
}

async fn with_cookie(
    app: &TestApp,
    method: Method,
    path: &str,
    b: &Browser,
    csrf: Option<&str>,
    body: Option<&Value>,
) -> Resp {
    let mut headers = vec![
        ("Cookie", b.cookie()),
        ("Idempotency-Key", Uuid::new_v4().to_string()),
    ];
    if let Some(c) = csrf {
        headers.push(("X-CSRF-Token", c.to_string()));
    }
    app.send(method, path, None, body, &headers).await
}

#[tokio::test]
async fn a_password_sign_in_sets_a_strict_cookie_that_authenticates_the_api() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let pool = app.app.store.pool();
        create_user(&pool, "li.dispatch", Role::Dispatcher, "etdz", PASSWORD)
            .await
            .expect("create user");
        let r = sign_in_as(&app, "li.dispatch", PASSWORD, None).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["user"], "li.dispatch");
        assert_eq!(r.body["role"], "dispatcher");
        assert_eq!(r.body["unit"], "etdz");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let csrf = r.body["csrf_token"].as_str().expect("csrf").to_string();
        assert_eq!(csrf.len(), 64);
        let session = set_cookie(&r, "yw_session").expect("session cookie");
        for attr in [
            "; Path=/",
            "; HttpOnly",
            "; Secure",
            "; SameSite=Strict",
            "; Max-Age=43200",
        ] {
            assert!(session.contains(attr), "{session} lacks {attr}");
        }
        let value = cookie_value(&session);
        assert!(value.starts_with("ys_") && value.len() > 70, "{value}");
        let readable = set_cookie(&r, "yw_csrf").expect("csrf cookie");
        assert_eq!(cookie_value(&readable), csrf);
        assert!(!readable.contains("HttpOnly") && readable.contains("SameSite=Strict"));
        // Stored hashed, like a token: the secret is nowhere in the table.
        let stored: Vec<(String, String)> = match &pool {
            yiwang::store::Pool::Sqlite(p) => {
                sqlx::query_as("SELECT session_hash, csrf_hash FROM sessions")
                    .fetch_all(p)
                    .await
                    .unwrap()
            }
            yiwang::store::Pool::Postgres(p) => {
                sqlx::query_as("SELECT session_hash, csrf_hash FROM sessions")
                    .fetch_all(p)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(stored.len(), 1);
        assert!(stored[0].0 != value && stored[0].1 != csrf && stored[0].0.len() == 64);

        let b = Browser {
            session: value,
            csrf,
        };
        let me = with_cookie(&app, Method::GET, "/api/v1/me", &b, None, None).await;
        assert_eq!(me.status, 200, "{:?}", me.body);
        assert_eq!(me.body["user"], "li.dispatch");
        assert_eq!(me.body["role"], "dispatcher");
        // A bearer token still works beside it, and needs no CSRF token.
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let t = app.post("/api/v1/tickets", &hot, ticket_body()).await;
        assert_eq!(t.status, 201, "{:?}", t.body);
        // A cookie alone does not authenticate Open311 (its api_key does).
        let o = app
            .client
            .post(format!("{}/open311/v2/requests.json", app.base))
            .header("Cookie", b.cookie())
            .header("X-CSRF-Token", &b.csrf)
            .form(&[
                ("service_code", "city.exposed_garbage"),
                ("lat", "37.5"),
                ("long", "122.1"),
                ("description", "垃圾"),
            ])
            .send()
            .await
            .expect("open311");
        assert_ne!(
            o.status().as_u16() / 100,
            2,
            "a cookie must not post to Open311"
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn a_command_with_the_cookie_needs_its_csrf_token() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let pool = app.app.store.pool();
        create_user(&pool, "zhao.hotline", Role::HotlineAgent, "etdz", PASSWORD)
            .await
            .expect("create user");
        let b = signed_in(&app, "zhao.hotline").await;
        let before = app.max_position().await;
        let body = ticket_body();
        let r = with_cookie(&app, Method::POST, "/api/v1/tickets", &b, None, Some(&body)).await;
        assert_eq!(r.status, 403, "{:?}", r.body);
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap_or("")
                .contains("X-CSRF-Token"),
            "{:?}",
            r.body
        );
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        let r = with_cookie(
            &app,
            Method::POST,
            "/api/v1/tickets",
            &b,
            Some("0123abcd"),
            Some(&body),
        )
        .await;
        assert_eq!(r.status, 403, "{:?}", r.body);
        assert_eq!(
            app.max_position().await,
            before,
            "a refused command appended"
        );
        let r = with_cookie(
            &app,
            Method::POST,
            "/api/v1/tickets",
            &b,
            Some(&b.csrf),
            Some(&body),
        )
        .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let events = app.all_events().await;
        let last = events.last().expect("an event");
        assert_eq!(last.metadata["actor"], "zhao.hotline");
        app.finish().await;
    }
}

#[tokio::test]
async fn sign_out_ends_the_session_at_once() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        create_user(
            &app.app.store.pool(),
            "wang.analyst",
            Role::Analyst,
            "etdz",
            PASSWORD,
        )
        .await
        .expect("create user");
        let b = signed_in(&app, "wang.analyst").await;
        let r = with_cookie(&app, Method::DELETE, "/api/v1/session", &b, None, None).await;
        assert_eq!(
            r.status, 403,
            "sign-out without its CSRF token: {:?}",
            r.body
        );
        let r = with_cookie(&app, Method::GET, "/api/v1/me", &b, None, None).await;
        assert_eq!(r.status, 200);
        let r = with_cookie(
            &app,
            Method::DELETE,
            "/api/v1/session",
            &b,
            Some(&b.csrf),
            None,
        )
        .await;
        assert_eq!(r.status, 204);
        let cleared = set_cookie(&r, "yw_session").expect("cleared cookie");
        assert!(
            cleared.starts_with("yw_session=;") && cleared.contains("Max-Age=0"),
            "{cleared}"
        );
        let r = with_cookie(&app, Method::GET, "/api/v1/me", &b, None, None).await;
        assert_eq!(r.status, 401, "{:?}", r.body);
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap_or("")
                .contains("sign in again")
        );
        // Signing out again (or without a session) only clears the cookies.
        let r = with_cookie(&app, Method::DELETE, "/api/v1/session", &b, None, None).await;
        assert_eq!(r.status, 204);
        app.finish().await;
    }
}

/// What a refusal shows a caller, to compare two refusals.
fn shown(r: &Resp) -> (u16, Value, Value, Option<String>) {
    (
        r.status,
        r.body["type"].clone(),
        r.body["detail"].clone(),
        r.header("retry-after").map(str::to_string),
    )
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_a_name_out_without_telling_whether_it_exists() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let pool = app.app.store.pool();
        create_user(&pool, "sun.handler", Role::Handler, "zhzf", PASSWORD)
            .await
            .expect("create user");
        // A wrong password and a name that does not exist: the same answer, each time.
        for attempt in 1..=4 {
            let known = sign_in_as(&app, "sun.handler", "not the password", None).await;
            let unknown = sign_in_as(&app, "nobody.here", "not the password", None).await;
            assert_eq!(known.status, 401, "attempt {attempt}: {:?}", known.body);
            assert_eq!(shown(&known), shown(&unknown), "attempt {attempt}");
            assert_eq!(
                known.body["detail"],
                "the user name or the password is wrong"
            );
        }
        // The fifth failure locks the name out, known or not.
        let known = sign_in_as(&app, "sun.handler", "not the password", None).await;
        let unknown = sign_in_as(&app, "nobody.here", "not the password", None).await;
        assert_eq!(known.status, 429, "{:?}", known.body);
        assert_eq!(shown(&known), shown(&unknown));
        assert_eq!(known.header("retry-after"), Some("900"));
        assert_eq!(
            known.header("content-type"),
            Some("application/problem+json")
        );
        // Now even the right password is refused, with the time left.
        let r = sign_in_as(&app, "sun.handler", PASSWORD, None).await;
        assert_eq!(r.status, 429, "{:?}", r.body);
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=900).contains(&wait), "{wait}");
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("15 more minute")
        );
        // Another name is not affected.
        create_user(&pool, "qian.handler", Role::Handler, "zhzf", PASSWORD)
            .await
            .expect("create user");
        assert_eq!(
            sign_in_as(&app, "qian.handler", PASSWORD, None)
                .await
                .status,
            200
        );
        // An administrator lifts the lock-out.
        unlock_user(&pool, "sun.handler", false)
            .await
            .expect("unlock");
        assert_eq!(
            sign_in_as(&app, "sun.handler", PASSWORD, None).await.status,
            200
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn a_locked_account_is_signed_out_and_cannot_sign_in() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let pool = app.app.store.pool();
        create_user(&pool, "zhou.disp", Role::Dispatcher, "etdz", PASSWORD)
            .await
            .expect("create user");
        let b = signed_in(&app, "zhou.disp").await;
        lock_user(&pool, "zhou.disp").await.expect("lock");
        let r = with_cookie(&app, Method::GET, "/api/v1/me", &b, None, None).await;
        assert_eq!(r.status, 401);
        // A wrong password says nothing of the lock; the right one does.
        assert_eq!(
            sign_in_as(&app, "zhou.disp", "not the password", None)
                .await
                .status,
            401
        );
        let r = sign_in_as(&app, "zhou.disp", PASSWORD, None).await;
        assert_eq!(r.status, 403, "{:?}", r.body);
        assert!(r.body["detail"].as_str().unwrap().contains("locked"));
        app.finish().await;
    }
}

#[tokio::test]
async fn a_grid_worker_is_bound_to_the_first_device() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let pool = app.app.store.pool();
        create_user(&pool, "wu.grid", Role::GridWorker, "hg-01-g01", PASSWORD)
            .await
            .expect("create user");
        let first = sign_in_as(&app, "wu.grid", PASSWORD, None).await;
        assert_eq!(first.status, 200, "{:?}", first.body);
        let device = set_cookie(&first, "yw_device").expect("device cookie");
        assert!(
            device.contains("HttpOnly") && device.contains("Secure"),
            "{device}"
        );
        let device = format!("yw_device={}", cookie_value(&device));
        assert_eq!(
            sign_in_as(&app, "wu.grid", PASSWORD, Some(&device))
                .await
                .status,
            200
        );
        let other = format!("yw_device={}", "ab".repeat(16));
        let r = sign_in_as(&app, "wu.grid", PASSWORD, Some(&other)).await;
        assert_eq!(r.status, 403, "{:?}", r.body);
        assert!(r.body["detail"].as_str().unwrap().contains("device"));
        assert_eq!(
            sign_in_as(&app, "wu.grid", PASSWORD, None).await.status,
            403
        );
        // A dispatcher is not bound.
        create_user(&pool, "ma.disp", Role::Dispatcher, "etdz", PASSWORD)
            .await
            .expect("create user");
        let r = sign_in_as(&app, "ma.disp", PASSWORD, Some(&other)).await;
        assert_eq!(r.status, 200);
        assert!(set_cookie(&r, "yw_device").is_none());
        // Released by an administrator, the next device is bound.
        unlock_user(&pool, "wu.grid", true).await.expect("unlock");
        let r = sign_in_as(&app, "wu.grid", PASSWORD, Some(&other)).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(
            sign_in_as(&app, "wu.grid", PASSWORD, Some(&other))
                .await
                .status,
            200
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn a_sign_in_body_is_checked() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let r = sign_in_as(&app, "", "x", None).await;
        assert_eq!(r.status, 422, "{:?}", r.body);
        assert_eq!(r.body["field"], "user");
        let r = app
            .send(
                Method::POST,
                "/api/v1/session",
                None,
                Some(&json!({"user": "a"})),
                &[],
            )
            .await;
        assert_eq!(r.status, 422, "{:?}", r.body);
        app.finish().await;
    }
}
