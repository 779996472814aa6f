//! What several page tests share besides driving the browser (`browser`): tickets
//! made and moved through the API, the grid page's category and photo fields, and a
//! link to the service that a test can cut.

use serde_json::{Value, json};
use yiwang::auth::Role;

use crate::browser::{Browser, fixture};
use crate::support::{TestApp, ticket_body};

/// A command on a ticket through the API (`POST /api/v1/tickets/{id}/{action}`),
/// which must succeed; returns the ticket.
pub(crate) async fn act(app: &TestApp, token: &str, id: &str, action: &str, body: Value) -> Value {
    let r = app
        .post(&format!("/api/v1/tickets/{id}/{action}"), token, body)
        .await;
    assert_eq!(r.status, 200, "{action}: {}", r.body);
    r.body
}

/// A ticket taken by the district's hotline (etdz) from `body`; returns it.
pub(crate) async fn create(app: &TestApp, body: Value) -> Value {
    let hot = app.token(Role::HotlineAgent, "etdz").await;
    let r = app.post("/api/v1/tickets", &hot, body).await;
    assert_eq!(r.status, 201, "create: {}", r.body);
    r.body
}

/// A hotline ticket dispatched by the district to 综合行政执法局 (zhzf); returns its id.
pub(crate) async fn dispatched(app: &TestApp, title: &str) -> String {
    let disp = app.token(Role::Dispatcher, "etdz").await;
    let mut b = ticket_body();
    b["title"] = json!(title);
    let id = create(app, b).await["id"].as_str().expect("id").to_string();
    act(app, &disp, &id, "assign", json!({"unit": "zhzf"})).await;
    id
}

/// The tickets `token` may see, the newest 50.
pub(crate) async fn tickets(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app.get("/api/v1/tickets?limit=50", token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().cloned().unwrap_or_default()
}

/// Whether this build has the attachments API (built alongside the pages).
pub(crate) async fn attachments_api(app: &TestApp, token: &str) -> bool {
    let r = app
        .send(
            reqwest::Method::POST,
            "/api/v1/attachments",
            Some(token),
            None,
            &[],
        )
        .await;
    r.status != 404
}

/// Picks the category `code` on the grid page's report form.
pub(crate) async fn pick_category(b: &Browser, code: &str) {
    b.css("#g-category")
        .await
        .select_by_value(code)
        .await
        .expect("category");
}

/// Puts tests/fixtures/photo.png in the file field `selector`.
pub(crate) async fn attach_photo(b: &Browser, selector: &str) {
    b.css(selector)
        .await
        .send_keys(&fixture("photo.png"))
        .await
        .expect("attach the photo");
}

/// A link between the browser and the service that the test can cut, for a real loss
/// of the network: Chromium's offline emulation holds for the page but not for its
/// service worker (its own target), which would still reach the service. Cut, the
/// link drops its open connections (the live feed's too) and closes new ones at once.
pub(crate) struct Link {
    pub(crate) base: String,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Link {
    pub(crate) async fn to(service: &str) -> Link {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the link");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let target = service.trim_start_matches("http://").to_string();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (up2, conns2) = (up.clone(), conns.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                conns2.lock().expect("connections").push(h);
            }
        });
        Link {
            base,
            up,
            conns,
            task,
        }
    }

    /// Cuts the link (false) or mends it (true).
    pub(crate) fn set(&self, up: bool) {
        self.up.store(up, std::sync::atomic::Ordering::SeqCst);
        if !up {
            for h in self.conns.lock().expect("connections").drain(..) {
                h.abort();
            }
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
        self.set(false);
    }
}

/// What the browser logs while the network is down, as intended.
pub(crate) const CUT: &[&str] = &[
    "ERR_INTERNET_DISCONNECTED",
    "ERR_EMPTY_RESPONSE",
    "ERR_CONNECTION_CLOSED",
    "ERR_CONNECTION_RESET",
    "ERR_FAILED",
    "ERR_INCOMPLETE_CHUNKED_ENCODING",
];
