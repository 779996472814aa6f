//! The history of tickets that `backup` and `upgrades` both make through the HTTP
//! API: Beijing business times in 2026, the township hg's and the district's
//! people, and the stretches of commands the two histories share.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use yiwang::auth::Role;

use super::{TestApp, upload_part};

/// A Beijing time in 2026, `"MM-DDTHH:MM"`.
pub fn bj(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("2026-{s}:00+08:00"))
        .unwrap()
        .with_timezone(&Utc)
}

/// Where every history ends, and every service stands.
pub fn the_end() -> DateTime<Utc> {
    bj("11-20T12:00")
}

/// A grid worker's report in the township hg, `related_to` an earlier ticket.
pub fn report(category: &str, related_to: Option<&str>) -> Value {
    let mut b = json!({
        "source": "grid", "category": category, "title": "网格上报", "description": "巡查发现",
        "urgency": "normal",
        "location": {"address": "皇冠街道", "lat": 37.5, "lon": 122.1, "grid": "hg-01-g01"},
    });
    if let Some(r) = related_to {
        b["related_to"] = json!(r);
    }
    b
}

/// A service and the tokens of the people who act in the history, each command at
/// its own business time on the service's manual clock.
pub struct Scenario<'a> {
    pub app: &'a TestApp,
    pub gw: String,
    pub disp: String,
    pub district: String,
    pub zf: String,
    pub sc: String,
    pub zhzf: String,
    pub hot: String,
}

impl<'a> Scenario<'a> {
    pub async fn new(app: &'a TestApp) -> Scenario<'a> {
        Scenario {
            app,
            gw: app.token(Role::GridWorker, "hg-01-g01").await,
            disp: app.token(Role::Dispatcher, "hg").await,
            district: app.token(Role::Dispatcher, "etdz").await,
            zf: app.token(Role::Handler, "hg-zfzd").await,
            sc: app.token(Role::Handler, "hg-scjgs").await,
            zhzf: app.token(Role::Handler, "zhzf").await,
            hot: app.token(Role::HotlineAgent, "etdz").await,
        }
    }

    /// Sets the clock to `at`.
    pub fn at(&self, at: &str) {
        self.app.app.clock.set(bj(at));
    }

    /// Creates a ticket at `at`; its id.
    pub async fn create(&self, at: &str, tok: &str, body: Value) -> String {
        self.at(at);
        let r = self.app.post("/api/v1/tickets", tok, body).await;
        assert_eq!(r.status, 201, "create: {}", r.body);
        r.body["id"].as_str().expect("id").to_string()
    }

    /// Sends `action` on ticket `id` at `at`.
    pub async fn act(&self, at: &str, tok: &str, id: &str, action: &str, body: Value) {
        self.at(at);
        let path = format!("/api/v1/tickets/{id}/{action}");
        let r = self.app.post(&path, tok, body).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }

    /// A grid worker's report of `category` at `at`; its id.
    pub async fn reported(&self, at: &str, category: &str) -> String {
        self.create(at, &self.gw, report(category, None)).await
    }

    /// The township's dispatcher assigns ticket `id` to `unit` at `at`.
    pub async fn assign(&self, at: &str, id: &str, unit: &str) {
        let body = json!({"unit": unit});
        self.act(at, &self.disp, id, "assign", body).await;
    }

    /// `tok`'s unit signs for ticket `id` at `at`, `handler` to handle it.
    pub async fn sign(&self, at: &str, tok: &str, id: &str, handler: &str) {
        let body = json!({"handler": handler});
        self.act(at, tok, id, "sign", body).await;
    }

    /// `tok`'s unit returns ticket `id` to the dispatcher at `at`, for `reason`.
    pub async fn returned(&self, at: &str, tok: &str, id: &str, reason: &str) {
        let body = json!({"reason": reason});
        self.act(at, tok, id, "return", body).await;
    }

    /// The squadron asks for two more days on ticket `id` at `asked`, for `reason`,
    /// and the township's dispatcher approves them at `approved`.
    pub async fn extended(&self, asked: &str, approved: &str, id: &str, reason: &str) {
        let body = json!({"days": 2, "reason": reason});
        self.act(asked, &self.zf, id, "request-extension", body)
            .await;
        let body = json!({"approved": true});
        self.act(approved, &self.disp, id, "decide-extension", body)
            .await;
    }

    /// T1's start: exposed garbage reported and assigned to the law-enforcement
    /// squadron, not signed for days. Its id.
    pub async fn garbage_assigned(&self) -> String {
        let t1 = self.reported("09-29T10:00", "city.exposed_garbage").await;
        self.assign("09-29T11:00", &t1, "hg-zfzd").await;
        t1
    }

    /// T1's end: signed late, handled with a photo (a JPEG's `photo` bytes),
    /// verified, satisfied, closed.
    pub async fn garbage_closed(&self, t1: &str, photo: &[u8]) {
        self.sign("10-08T09:00", &self.zf, t1, "张").await;
        self.at("10-09T14:00");
        let (status, v) = upload_part(self.app, &self.zf, "file", "p.jpg", photo).await;
        assert_eq!(status, 201, "{v}");
        let photo = v["hash"].as_str().expect("hash").to_string();
        let handled = json!({"result": "已清运", "photos": [photo]});
        self.act("10-09T15:00", &self.zf, t1, "handle", handled)
            .await;
        let passed = json!({"passed": true, "note": "合格"});
        self.act("10-09T16:00", &self.disp, t1, "verify", passed)
            .await;
        let satisfied = json!({"satisfaction": "satisfied"});
        self.act("10-10T10:00", &self.hot, t1, "feedback", satisfied)
            .await;
        let closed = json!({"code": "resolved"});
        self.act("10-10T11:00", &self.disp, t1, "close", closed)
            .await;
    }

    /// T2's end, a road spillage the squadron has signed for: supervised twice,
    /// handled late, a failed verification, handled again, verified, unsatisfied.
    pub async fn spillage_reworked(&self, t2: &str) {
        let (disp, zf) = (&self.disp, &self.zf);
        self.act(
            "10-12T10:00",
            disp,
            t2,
            "supervise",
            json!({"note": "请尽快处理"}),
        )
        .await;
        self.act(
            "10-13T09:00",
            disp,
            t2,
            "supervise",
            json!({"note": "再次督办"}),
        )
        .await;
        self.act("10-14T10:00", zf, t2, "handle", json!({"result": "已清扫"}))
            .await;
        let failed = json!({"passed": false, "note": "仍有残留"});
        self.act("10-14T11:00", disp, t2, "verify", failed).await;
        self.act(
            "10-16T10:00",
            zf,
            t2,
            "handle",
            json!({"result": "已彻底清扫"}),
        )
        .await;
        let passed = json!({"passed": true, "note": "合格"});
        self.act("10-16T15:00", disp, t2, "verify", passed).await;
        let unsatisfied = json!({"satisfaction": "unsatisfied"});
        self.act("10-17T09:00", &self.hot, t2, "feedback", unsatisfied)
            .await;
    }

    /// T1's garbage again: a repeat complaint. Its id.
    pub async fn repeat_complaint(&self, t1: &str) -> String {
        let body = report("city.exposed_garbage", Some(t1));
        self.create("10-20T09:00", &self.gw, body).await
    }

    /// A citizen's call at the district, assigned to the district's law enforcement
    /// and signed by `handler`.
    pub async fn call_signed(&self, id: &str, handler: &str) {
        let body = json!({"unit": "zhzf"});
        self.act("11-02T10:00", &self.district, id, "assign", body)
            .await;
        self.sign("11-03T09:00", &self.zhzf, id, handler).await;
    }
}
