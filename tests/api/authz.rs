//! Who may do what (issue 3, item 2; DESIGN §4): every role × every action × a ticket
//! inside or outside the caller's unit subtree, over real HTTP on both engines; then
//! that a token never sees a ticket outside its scope in any list, feed or stream;
//! then who sees the reporter's contact in full.
//!
//! The callers all belong to 皇冠街道 (`hg`): a grid worker of grid `hg-01-g01`; a
//! hotline agent, a dispatcher, an analyst and an admin of the `hg` centre; a handler
//! of its enforcement squad `hg-zfzd`. An "inside" ticket lies in `hg` (grid
//! `hg-01-g01`, dispatched by `hg` to `hg-zfzd`); the "outside" one is the same ticket
//! mirrored into 凤林街道 (`fl`: grid `fl-01-g01`, `fl-zfzd`). Each ticket is set up in
//! a state where the action is possible, so the role and scope rules are what decide;
//! a second table shows the state deciding (409) once the rules let the caller
//! through. No refusal appends anything.

use std::collections::HashMap;

use futures::StreamExt;
use serde_json::{Value, json};
use yiwang::auth::Role;

use crate::support::{Resp, TestApp, engines, ticket_body};

/// The expected answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// 2xx, and a command appends its event. For `list`: the ticket is listed.
    Y,
    /// 403 problem+json and nothing appended. For `list`: 200 without the ticket.
    N,
    /// 404 problem+json, exactly as for a ticket that does not exist, and nothing
    /// appended: the ticket lies outside the caller's scope, and its existence must
    /// not leak (issue 19).
    H,
}
use Want::{H, N, Y};

/// The callers, in the order of the table's columns.
const CALLERS: [(Role, &str); 6] = [
    (Role::GridWorker, "hg-01-g01"),
    (Role::HotlineAgent, "hg"),
    (Role::Dispatcher, "hg"),
    (Role::Handler, "hg-zfzd"),
    (Role::Analyst, "hg"),
    (Role::Admin, "hg"),
];
const GRID: usize = 0;
const HOTLINE: usize = 1;
const DISPATCHER: usize = 2;
const HANDLER: usize = 3;

/// The state a ticket is set up in before the action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Setup {
    /// No ticket: the action creates one.
    Nothing,
    /// A grid worker's report, waiting in its township centre's queue.
    Accepted,
    /// A hotline ticket the district centre dispatched to the township centre, which
    /// dispatches it on (转派) or passes it back.
    AtCentre,
    /// Dispatched by the township centre to its enforcement squad.
    Assigned,
    /// … and signed for (签收).
    Signed,
    /// … signed, with an extension request waiting for a decision.
    ExtensionAsked,
    /// … signed and reported handled (办结).
    Handled,
    /// … handled and verified.
    Verified,
    /// … verified and closed.
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Side {
    Inside,
    Outside,
}

impl Side {
    /// The township the ticket lies in.
    fn township(self) -> &'static str {
        match self {
            Side::Inside => "hg",
            Side::Outside => "fl",
        }
    }
}

/// action, setup, answers per caller (columns as [`CALLERS`]) inside, and outside.
type Row = (&'static str, Setup, [Want; 6], [Want; 6]);

/// The matrix. Outside the caller's subtree every answer is a refusal: a new report
/// there is forbidden (403), an existing ticket there is not found (404). Inside the
/// township, a ticket not yet dispatched to the squad is not the squad's to see
/// either (404 to its handler).
#[rustfmt::skip]
const MATRIX: [Row; 17] = [
    //  action               setup                    grid hot disp hand anal admin   outside
    ("create",            Setup::Nothing,        [Y, Y, Y, Y, N, Y], [N, N, N, N, N, N]),
    ("assign",            Setup::Accepted,       [N, N, Y, H, N, Y], [H, H, H, H, H, H]),
    ("assign on (转派)",  Setup::AtCentre,       [N, N, Y, H, N, Y], [H, H, H, H, H, H]),
    ("sign",              Setup::Assigned,       [N, N, N, Y, N, Y], [H, H, H, H, H, H]),
    ("return",            Setup::Assigned,       [N, N, N, Y, N, Y], [H, H, H, H, H, H]),
    ("return a hop",      Setup::AtCentre,       [N, N, Y, H, N, Y], [H, H, H, H, H, H]),
    ("request-extension", Setup::Signed,         [N, N, N, Y, N, Y], [H, H, H, H, H, H]),
    ("decide-extension",  Setup::ExtensionAsked, [N, N, Y, N, N, Y], [H, H, H, H, H, H]),
    ("supervise",         Setup::Assigned,       [N, N, Y, N, N, Y], [H, H, H, H, H, H]),
    ("handle",            Setup::Signed,         [N, N, N, Y, N, Y], [H, H, H, H, H, H]),
    ("verify",            Setup::Handled,        [N, N, Y, N, N, Y], [H, H, H, H, H, H]),
    ("feedback",          Setup::Handled,        [N, Y, Y, N, N, Y], [H, H, H, H, H, H]),
    ("comment",           Setup::Assigned,       [Y, Y, Y, Y, N, Y], [H, H, H, H, H, H]),
    ("close",             Setup::Verified,       [N, N, Y, N, N, Y], [H, H, H, H, H, H]),
    ("read",              Setup::Assigned,       [Y, Y, Y, Y, Y, Y], [H, H, H, H, H, H]),
    ("list",              Setup::Assigned,       [Y, Y, Y, Y, Y, Y], [N, N, N, N, N, N]),
    ("events",            Setup::Assigned,       [Y, Y, Y, Y, Y, Y], [H, H, H, H, H, H]),
];

/// The rules let the caller (a column of [`CALLERS`]) through, inside its subtree, but
/// the ticket's state forbids the action: 409, nothing appended.
#[rustfmt::skip]
const STATE_REFUSES: [(&str, Setup, usize); 11] = [
    ("assign",            Setup::Assigned,  DISPATCHER), // already dispatched
    ("sign",              Setup::Handled,   HANDLER),
    ("return",            Setup::Handled,   HANDLER),
    ("request-extension", Setup::Handled,   HANDLER),
    ("decide-extension",  Setup::Signed,    DISPATCHER), // nothing asked
    ("supervise",         Setup::Handled,   DISPATCHER),
    ("handle",            Setup::Assigned,  HANDLER),    // not signed for yet
    ("verify",            Setup::Assigned,  DISPATCHER),
    ("feedback",          Setup::Signed,    HOTLINE),
    ("comment",           Setup::Closed,    GRID),
    ("close",             Setup::Assigned,  DISPATCHER),
];

/// How an action is sent: method and path (`{id}` is the ticket) and body, for a
/// ticket in `township`.
fn request(action: &str, township: &str, role: Role) -> (reqwest::Method, String, Option<Value>) {
    let cmd = |a: &str, body: Value| {
        (
            reqwest::Method::POST,
            format!("/api/v1/tickets/{{id}}/{a}"),
            Some(body),
        )
    };
    match action {
        "create" => {
            let mut b = ticket_body();
            b["location"]["grid"] = json!(format!("{township}-01-g01"));
            if role == Role::GridWorker {
                b["source"] = json!("grid");
            }
            // A handler records its own unit's patrol (issue 21).
            if role == Role::Handler {
                b["source"] = json!("patrol");
            }
            (reqwest::Method::POST, "/api/v1/tickets".into(), Some(b))
        }
        "assign" | "assign on (转派)" => {
            cmd("assign", json!({"unit": format!("{township}-zfzd")}))
        }
        "sign" => cmd("sign", json!({"handler": "钱工"})),
        "return" | "return a hop" => cmd("return", json!({"reason": "不属于本单位职责"})),
        "request-extension" => cmd("request-extension", json!({"days": 2, "reason": "需协调"})),
        "decide-extension" => cmd("decide-extension", json!({"approved": true})),
        "supervise" => cmd("supervise", json!({"note": "请加快办理"})),
        "handle" => cmd("handle", json!({"result": "已清运"})),
        "verify" => cmd("verify", json!({"passed": true, "note": "现场核实"})),
        "feedback" => cmd("feedback", json!({"satisfaction": "satisfied"})),
        "comment" => cmd("comment", json!({"text": "已到现场"})),
        "close" => cmd("close", json!({"code": "resolved"})),
        "read" => (reqwest::Method::GET, "/api/v1/tickets/{id}".into(), None),
        "events" => (
            reqwest::Method::GET,
            "/api/v1/tickets/{id}/events".into(),
            None,
        ),
        "list" => (
            reqwest::Method::GET,
            "/api/v1/tickets?limit=500".into(),
            None,
        ),
        other => panic!("no action {other} in the matrix"),
    }
}

/// A command that must succeed; returns the answer.
async fn ok(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let r = app.post(path, token, body).await;
    assert!(
        (200..300).contains(&r.status),
        "{path}: {} {}",
        r.status,
        r.body
    );
    r.body
}

/// A ticket in `township`, in the state `setup`; returns its id.
async fn build(app: &TestApp, setup: Setup, township: &str) -> String {
    let t = township;
    if setup == Setup::AtCentre {
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let district = app.token(Role::Dispatcher, "etdz").await;
        let mut b = ticket_body();
        b["location"]["grid"] = json!(format!("{t}-01-g01"));
        let id = ok(app, &hot, "/api/v1/tickets", b).await["id"]
            .as_str()
            .expect("id")
            .to_string();
        let path = format!("/api/v1/tickets/{id}/assign");
        ok(app, &district, &path, json!({"unit": t})).await;
        return id;
    }
    let gw = app.token(Role::GridWorker, &format!("{t}-01-g01")).await;
    let mut b = ticket_body();
    b["source"] = json!("grid");
    b["location"]["grid"] = json!(format!("{t}-01-g01"));
    let id = ok(app, &gw, "/api/v1/tickets", b).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let disp = app.token(Role::Dispatcher, t).await;
    let hand = app.token(Role::Handler, &format!("{t}-zfzd")).await;
    let assign = (&disp, "assign", json!({"unit": format!("{t}-zfzd")}));
    let sign = (&hand, "sign", json!({"handler": "钱工"}));
    let ask = (
        &hand,
        "request-extension",
        json!({"days": 2, "reason": "需协调"}),
    );
    let handle = (&hand, "handle", json!({"result": "已清运"}));
    let verify = (&disp, "verify", json!({"passed": true, "note": "现场核实"}));
    let close = (&disp, "close", json!({"code": "resolved"}));
    let steps = match setup {
        Setup::Nothing | Setup::AtCentre => unreachable!("built above"),
        Setup::Accepted => vec![],
        Setup::Assigned => vec![assign],
        Setup::Signed => vec![assign, sign],
        Setup::ExtensionAsked => vec![assign, sign, ask],
        Setup::Handled => vec![assign, sign, handle],
        Setup::Verified => vec![assign, sign, handle, verify],
        Setup::Closed => vec![assign, sign, handle, verify, close],
    };
    for (tok, action, body) in steps {
        ok(app, tok, &format!("/api/v1/tickets/{id}/{action}"), body).await;
    }
    id
}

/// Tickets set up and not yet changed by a successful command, for reuse.
#[derive(Default)]
struct Spare(HashMap<(Setup, Side), String>);

impl Spare {
    async fn get(&mut self, app: &TestApp, setup: Setup, side: Side) -> Option<String> {
        if setup == Setup::Nothing {
            return None;
        }
        if let Some(id) = self.0.get(&(setup, side)) {
            return Some(id.clone());
        }
        let id = build(app, setup, side.township()).await;
        self.0.insert((setup, side), id.clone());
        Some(id)
    }

    fn used(&mut self, setup: Setup, side: Side) {
        self.0.remove(&(setup, side));
    }
}

async fn send(
    app: &TestApp,
    token: &str,
    (method, path, body): &(reqwest::Method, String, Option<Value>),
    id: Option<&str>,
) -> Resp {
    let path = path.replace("{id}", id.unwrap_or(""));
    let key = uuid::Uuid::new_v4().to_string();
    app.send(
        method.clone(),
        &path,
        Some(token),
        body.as_ref(),
        &[("Idempotency-Key", key)],
    )
    .await
}

fn listed(r: &Resp, id: &str) -> bool {
    r.body["items"]
        .as_array()
        .expect("a list")
        .iter()
        .any(|t| t["id"] == json!(id))
}

fn assert_refused(r: &Resp, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{what}"
    );
    assert!(
        r.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{what}: a refusal says why: {}",
        r.body
    );
}

#[tokio::test]
async fn every_role_and_action_inside_and_outside_the_callers_subtree() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let mut spare = Spare::default();
        let mut checked = 0;
        for (action, setup, inside, outside) in MATRIX {
            for (side, wants) in [(Side::Inside, inside), (Side::Outside, outside)] {
                for (col, (role, unit)) in CALLERS.iter().enumerate() {
                    let want = wants[col];
                    let what = format!(
                        "{engine:?}: {} of {unit} → {action} on a {setup:?} ticket {side:?}",
                        role.as_str()
                    );
                    let token = app.token(*role, unit).await;
                    let id = spare.get(&app, setup, side).await;
                    let req = request(action, side.township(), *role);
                    let before = app.count_rows("events").await;
                    let r = send(&app, &token, &req, id.as_deref()).await;
                    let appended = app.count_rows("events").await - before;
                    match (action, want) {
                        ("list", want) => {
                            assert_eq!(r.status, 200, "{what}: {}", r.body);
                            let id = id.as_deref().expect("a ticket");
                            assert_eq!(listed(&r, id), want == Y, "{what}");
                        }
                        (_, Y) => {
                            assert!(
                                (200..300).contains(&r.status),
                                "{what}: {} {}",
                                r.status,
                                r.body
                            );
                            let is_command = req.0 == reqwest::Method::POST;
                            assert_eq!(appended, i64::from(is_command), "{what}: events appended");
                            if is_command {
                                spare.used(setup, side);
                            }
                        }
                        (_, N) => {
                            assert_refused(&r, 403, &what);
                            assert_eq!(appended, 0, "{what}: a refusal appends nothing");
                        }
                        (_, H) => {
                            assert_refused(&r, 404, &what);
                            let id = id.as_deref().expect("a ticket");
                            assert_eq!(
                                r.body["detail"],
                                json!(format!("no ticket {id}")),
                                "{what}: the same words as a ticket that does not exist"
                            );
                            assert_eq!(appended, 0, "{what}: a refusal appends nothing");
                        }
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 17 * 2 * 6);

        for (action, setup, col) in STATE_REFUSES {
            let (role, unit) = CALLERS[col];
            let what = format!(
                "{engine:?}: {} of {unit} → {action} on a {setup:?} ticket",
                role.as_str()
            );
            let token = app.token(role, unit).await;
            let id = spare.get(&app, setup, Side::Inside).await;
            let before = app.count_rows("events").await;
            let r = send(&app, &token, &request(action, "hg", role), id.as_deref()).await;
            assert_refused(&r, 409, &what);
            assert_eq!(
                app.count_rows("events").await,
                before,
                "{what}: appends nothing"
            );
        }
        app.finish().await;
    }
}

/// Reads the SSE stream until the event at position `until` has arrived; returns the
/// stream id of every event received.
async fn sse_streams(app: &TestApp, token: &str, until: i64) -> Vec<String> {
    let resp = app
        .client
        .get(format!("{}/api/v1/events/stream", app.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("connect");
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut out = vec![];
    loop {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(15), stream.next())
            .await
            .expect("an SSE event within 15 s")
            .expect("stream open")
            .expect("chunk");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) else {
                continue; // a keep-alive
            };
            let e: Value = serde_json::from_str(data.trim()).expect("event JSON");
            out.push(e["stream_id"].as_str().expect("stream_id").to_string());
            if e["position"].as_i64().expect("position") >= until {
                return out;
            }
        }
    }
}

fn ids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn a_token_never_sees_a_ticket_outside_its_scope_in_any_list_feed_or_stream() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let root = app.token(Role::Admin, "etdz").await;
        let post = |id: &str, a: &str| format!("/api/v1/tickets/{id}/{a}");

        // 凤林 (fl) tickets in every state and along every dispatch path.
        let mut fl = vec![];
        for setup in [
            Setup::Accepted,
            Setup::AtCentre,
            Setup::ExtensionAsked,
            Setup::Closed,
        ] {
            fl.push(build(&app, setup, "fl").await);
        }
        // Passed up by fl to the district (吹哨报到), dispatched to a department with
        // a co-unit.
        let passed_up = build(&app, Setup::Accepted, "fl").await;
        let fl_disp = app.token(Role::Dispatcher, "fl").await;
        let district = app.token(Role::Dispatcher, "etdz").await;
        ok(
            &app,
            &fl_disp,
            &post(&passed_up, "assign"),
            json!({"unit": "etdz"}),
        )
        .await;
        ok(
            &app,
            &district,
            &post(&passed_up, "assign"),
            json!({"unit": "zhzf", "co_units": ["scjg"]}),
        )
        .await;
        fl.push(passed_up);
        // Dispatched on by fl to its market-supervision office.
        let on = build(&app, Setup::AtCentre, "fl").await;
        ok(
            &app,
            &fl_disp,
            &post(&on, "assign"),
            json!({"unit": "fl-scjgs"}),
        )
        .await;
        fl.push(on);
        // A district-only hotline ticket (no grid), with the department 生态环境分局.
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let mut b = ticket_body();
        b["location"] = json!({"address": "开发区某企业"});
        b["category"] = json!("env.pollution_source");
        let sthj = ok(&app, &hot, "/api/v1/tickets", b).await["id"]
            .as_str()
            .expect("id")
            .to_string();
        ok(
            &app,
            &district,
            &post(&sthj, "assign"),
            json!({"unit": "sthj"}),
        )
        .await;

        // Then the tickets the observers may see, last (so that a stream read up to
        // them has passed every hidden event).
        let hg = build(&app, Setup::Handled, "hg").await;
        let gw2 = app.token(Role::GridWorker, "hg-01-g02").await;
        let mut b = ticket_body();
        b["source"] = json!("grid");
        b["location"]["grid"] = json!("hg-01-g02");
        let hg_g02 = ok(&app, &gw2, "/api/v1/tickets", b).await["id"]
            .as_str()
            .expect("id")
            .to_string();
        // Each marker's last event comes after every other ticket's events.
        for id in [&hg, &hg_g02, &sthj] {
            ok(&app, &root, &post(id, "comment"), json!({"text": "标记"})).await;
        }

        let hidden_from_hg: Vec<String> = fl.iter().cloned().chain([sthj.clone()]).collect();
        // (role, unit, a ticket it sees, the tickets it must never see)
        let mut observers: Vec<(Role, &str, &String, Vec<String>)> = CALLERS
            .iter()
            .map(|(r, u)| (*r, *u, &hg, hidden_from_hg.clone()))
            .collect();
        // Another grid of the same community does not see grid g01's ticket.
        let mut hidden = hidden_from_hg.clone();
        hidden.push(hg.clone());
        observers.push((Role::GridWorker, "hg-01-g02", &hg_g02, hidden));
        // A district department sees its own tickets only: not the township's, not
        // another department's (zhzf, with scjg as co-unit).
        let mut hidden = fl.clone();
        hidden.extend([hg.clone(), hg_g02.clone()]);
        observers.push((Role::Handler, "sthj", &sthj, hidden));

        app.all_events().await; // settled (PostgreSQL: no older transaction open)
        for (role, unit, sees, hidden) in &observers {
            let who = format!("{engine:?}: {} of {unit}", role.as_str());
            let token = app.token(*role, unit).await;

            // The queue, with every filter, and page by page.
            let mut queries: Vec<String> = vec!["".into(), "?limit=500".into()];
            for s in ["accepted", "assigned", "handled", "verified", "closed"] {
                queries.push(format!("?state={s}"));
            }
            for u in [
                "fl", "fl-zfzd", "fl-scjgs", "zhzf", "scjg", "sthj", "etdz", "hg-zfzd",
            ] {
                queries.push(format!("?unit={u}"));
                queries.push(format!("?unit={u}&state=assigned"));
            }
            for q in &queries {
                let r = app.get(&format!("/api/v1/tickets{q}"), &token).await;
                assert_eq!(r.status, 200, "{who} {q}: {}", r.body);
                let got = ids(&r.body["items"]);
                for h in hidden {
                    assert!(!got.contains(h), "{who} sees {h} in the list {q}");
                }
            }
            let mut all = vec![];
            let mut cursor = String::new();
            loop {
                let r = app
                    .get(&format!("/api/v1/tickets?limit=2{cursor}"), &token)
                    .await;
                assert_eq!(r.status, 200, "{who}: {}", r.body);
                all.extend(ids(&r.body["items"]));
                match r.body["next_cursor"].as_str() {
                    Some(c) => cursor = format!("&cursor={c}"),
                    None => break,
                }
            }
            assert!(all.contains(sees), "{who} lists its own ticket {sees}");
            for h in hidden {
                assert!(!all.contains(h), "{who} sees {h} paging the queue");
            }

            // The catch-up feed.
            let r = app.get("/api/v1/events?after=0&limit=1000", &token).await;
            assert_eq!(r.status, 200, "{who}: {}", r.body);
            let streams: Vec<&str> = r.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|e| e["stream_id"].as_str().expect("stream_id"))
                .collect();
            assert!(
                streams.contains(&sees.as_str()),
                "{who}: the feed has its ticket"
            );
            for h in hidden {
                assert!(!streams.contains(&h.as_str()), "{who} sees {h} in the feed");
            }

            // The live stream, read up to its ticket's last event.
            let r = app
                .get(&format!("/api/v1/tickets/{sees}/events"), &token)
                .await;
            let last = r.body["items"]
                .as_array()
                .and_then(|a| a.last())
                .and_then(|e| e["position"].as_i64())
                .unwrap_or_else(|| panic!("{who}: events of {sees}: {}", r.body));
            let streamed = sse_streams(&app, &token, last).await;
            assert!(streamed.contains(sees), "{who}: the stream has its ticket");
            for h in hidden {
                assert!(!streamed.contains(h), "{who} sees {h} in the SSE stream");
            }

            // One ticket and its events: refused.
            for h in hidden {
                for path in [
                    format!("/api/v1/tickets/{h}"),
                    format!("/api/v1/tickets/{h}/events"),
                ] {
                    let r = app.get(&path, &token).await;
                    assert_refused(&r, 404, &format!("{who} GET {path}"));
                    assert!(
                        !r.body.to_string().contains("路边垃圾堆积"),
                        "{who}: a refusal shows nothing of the ticket"
                    );
                }
            }
        }

        // The root unit sees everything (the control for the filters above).
        for role in [Role::Admin, Role::Analyst, Role::Dispatcher] {
            let token = app.token(role, "etdz").await;
            let r = app.get("/api/v1/tickets?limit=500", &token).await;
            let got = ids(&r.body["items"]);
            for t in fl.iter().chain([&sthj, &hg, &hg_g02]) {
                assert!(got.contains(t), "{} of etdz lists {t}", role.as_str());
            }
        }
        app.finish().await;
    }
}

#[tokio::test]
async fn the_reporters_contact_is_in_full_only_for_those_who_need_it() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let district = app.token(Role::Dispatcher, "etdz").await;
        let hg = app.token(Role::Dispatcher, "hg").await;
        let t = app.new_ticket().await; // reporter 赵先生, 13800000000
        assert_eq!(
            t["reporter"],
            json!({"name": "赵先生", "phone": "13800000000", "masked": false}),
            "the hotline agent who took the call"
        );
        let id = t["id"].as_str().expect("id");
        ok(
            &app,
            &district,
            &format!("/api/v1/tickets/{id}/assign"),
            json!({"unit": "hg"}),
        )
        .await;
        ok(
            &app,
            &hg,
            &format!("/api/v1/tickets/{id}/assign"),
            json!({"unit": "hg-zfzd", "co_units": ["hg-pcs"]}),
        )
        .await;

        let full = json!({"name": "赵先生", "phone": "13800000000", "masked": false});
        let masked = json!({"name": "赵**", "phone": "138****0000", "masked": true});
        let cases = [
            (
                Role::Handler,
                "hg-zfzd",
                &full,
                "the assigned (lead) unit's handler",
            ),
            (Role::Admin, "etdz", &full, "an admin"),
            (Role::Admin, "hg", &full, "an admin of the township"),
            (
                Role::HotlineAgent,
                "etdz",
                &full,
                "the hotline, which calls back (回访)",
            ),
            (Role::Handler, "hg-pcs", &masked, "a co-unit's handler"),
            (Role::Dispatcher, "etdz", &masked, "the district dispatcher"),
            (Role::Dispatcher, "hg", &masked, "the township dispatcher"),
            (Role::Analyst, "etdz", &masked, "an analyst"),
            (Role::GridWorker, "hg-01-g01", &masked, "the grid's worker"),
        ];
        for (role, unit, want, who) in cases {
            let token = app.token(role, unit).await;
            let r = app.get(&format!("/api/v1/tickets/{id}"), &token).await;
            assert_eq!(r.status, 200, "{who}: {}", r.body);
            assert_eq!(&r.body["reporter"], want, "{engine:?}: {who}");
            // Lists never carry the contact.
            let r = app.get("/api/v1/tickets?limit=500", &token).await;
            let item = r.body["items"]
                .as_array()
                .and_then(|a| a.iter().find(|t| t["id"] == json!(id)))
                .unwrap_or_else(|| panic!("{who} lists the ticket"));
            assert_eq!(item["reporter"], Value::Null, "{who}: no contact in lists");
            assert!(!r.body.to_string().contains("13800000000"), "{who}");
        }
        // Nor does the log.
        for e in app.all_events().await {
            let text = format!("{} {}", e.data, e.metadata);
            assert!(!text.contains("13800000000") && !text.contains("赵先生"));
        }
        app.finish().await;
    }
}

#[tokio::test]
async fn a_centre_acts_on_tickets_held_beneath_it_and_not_on_those_above_it() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let district = app.token(Role::Dispatcher, "etdz").await;
        let hg = app.token(Role::Dispatcher, "hg").await;
        let path = |id: &str, a: &str| format!("/api/v1/tickets/{id}/{a}");

        // The district supervises and closes what a township centre holds.
        let assigned = build(&app, Setup::Assigned, "hg").await;
        ok(
            &app,
            &district,
            &path(&assigned, "supervise"),
            json!({"note": "区中心督办"}),
        )
        .await;
        let queued = build(&app, Setup::Accepted, "hg").await;
        let r = ok(
            &app,
            &district,
            &path(&queued, "close"),
            json!({"code": "invalid"}),
        )
        .await;
        assert_eq!(r["state"], "closed", "{engine:?}");

        // The township sees a district ticket of its area, but neither dispatches
        // nor closes it while the district holds it.
        let held = app.new_ticket().await["id"]
            .as_str()
            .expect("id")
            .to_string();
        let before = app.count_rows("events").await;
        for (action, body) in [
            ("assign", json!({"unit": "hg-zfzd"})),
            ("close", json!({"code": "invalid"})),
        ] {
            let r = app.post(&path(&held, action), &hg, body).await;
            assert_refused(
                &r,
                403,
                &format!("{engine:?}: hg {action} a ticket etdz holds"),
            );
        }
        assert_eq!(app.count_rows("events").await, before);
        let r = app.get(&format!("/api/v1/tickets/{held}"), &hg).await;
        assert_eq!(r.status, 200, "in its area: {}", r.body);
        app.finish().await;
    }
}

/// Issue 19, finding 1: co-units pass the dispatcher's reach check like the lead,
/// and a co-unit reads and comments, nothing else.
#[tokio::test]
async fn co_units_are_within_the_dispatchers_reach_and_only_read_and_comment() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hg = app.token(Role::Dispatcher, "hg").await;
        let id = build(&app, Setup::Accepted, "hg").await;
        let assign = format!("/api/v1/tickets/{id}/assign");
        // 凤林's centre and a 凤林 grid are not units 皇冠 dispatches to.
        for (co, field) in [
            (json!(["fl"]), "co_units[0]"),
            (json!(["hg-pcs", "fl-01-g01"]), "co_units[1]"),
            (json!(["hg-zfzd"]), "co_units[0]"),
        ] {
            let before = app.count_rows("events").await;
            let r = app
                .post(&assign, &hg, json!({"unit": "hg-zfzd", "co_units": co}))
                .await;
            assert_refused(&r, 422, &format!("{engine:?}: co_units {co}"));
            assert_eq!(r.body["field"], json!(field), "{engine:?}: {}", r.body);
            assert_eq!(app.count_rows("events").await, before, "nothing appended");
        }
        // 凤林 never sees the ticket.
        for (role, unit) in [
            (Role::Admin, "fl"),
            (Role::GridWorker, "fl-01-g01"),
            (Role::Dispatcher, "fl"),
        ] {
            let token = app.token(role, unit).await;
            let r = app.get(&format!("/api/v1/tickets/{id}"), &token).await;
            assert_refused(&r, 404, &format!("{engine:?}: {} of {unit}", role.as_str()));
        }
        ok(
            &app,
            &hg,
            &assign,
            json!({"unit": "hg-zfzd", "co_units": ["hg-pcs"]}),
        )
        .await;
        // The co-unit's handler reads (masked) and comments, and moves nothing.
        let pcs = app.token(Role::Handler, "hg-pcs").await;
        let r = app.get(&format!("/api/v1/tickets/{id}"), &pcs).await;
        assert_eq!(r.status, 200, "{engine:?}: {}", r.body);
        ok(
            &app,
            &pcs,
            &format!("/api/v1/tickets/{id}/comment"),
            json!({"text": "派出所已知悉"}),
        )
        .await;
        for (action, body) in [
            ("sign", json!({"handler": "李警官"})),
            ("return", json!({"reason": "非本单位"})),
        ] {
            let before = app.count_rows("events").await;
            let r = app
                .post(&format!("/api/v1/tickets/{id}/{action}"), &pcs, body)
                .await;
            assert_refused(&r, 403, &format!("{engine:?}: co-unit {action}"));
            assert_eq!(app.count_rows("events").await, before);
        }
        app.finish().await;
    }
}

/// Issue 19, finding 2: an admin follows the dispatcher's centre and lead rules. A
/// township admin sees a district ticket whose grid lies in its township, but does
/// not sign, handle, verify, supervise or record feedback on it (that moved the
/// district department's figures); the root admin may.
#[tokio::test]
async fn a_township_admin_does_not_act_on_a_district_ticket_in_its_grid() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let district = app.token(Role::Dispatcher, "etdz").await;
        let hg_admin = app.token(Role::Admin, "hg").await;
        let root_admin = app.token(Role::Admin, "etdz").await;
        // A hotline ticket in grid hg-01-g01, dispatched by the district to 市场监管局.
        let t = app.new_ticket().await;
        let id = t["id"].as_str().expect("id").to_string();
        let path = |a: &str| format!("/api/v1/tickets/{id}/{a}");
        ok(&app, &district, &path("assign"), json!({"unit": "scjg"})).await;

        let r = app.get(&format!("/api/v1/tickets/{id}"), &hg_admin).await;
        assert_eq!(r.status, 200, "{engine:?}: it sees the ticket of its grid");
        assert_eq!(
            r.body["reporter"]["masked"],
            json!(true),
            "{engine:?}: but not the citizen's phone"
        );
        for (action, body) in [
            ("sign", json!({"handler": "钱工"})),
            ("supervise", json!({"note": "请加快"})),
            ("return", json!({"reason": "不是我们的"})),
            ("close", json!({"code": "invalid"})),
        ] {
            let before = app.count_rows("events").await;
            let r = app.post(&path(action), &hg_admin, body).await;
            assert_refused(&r, 403, &format!("{engine:?}: township admin {action}"));
            assert_eq!(app.count_rows("events").await, before, "{action}");
        }
        ok(
            &app,
            &hg_admin,
            &path("comment"),
            json!({"text": "街道已知悉"}),
        )
        .await;
        // The department signs and handles; the township admin may neither verify
        // (failing it would cost the department) nor record the citizen's feedback.
        let scjg = app.token(Role::Handler, "scjg").await;
        ok(&app, &scjg, &path("sign"), json!({"handler": "钱工"})).await;
        ok(&app, &scjg, &path("handle"), json!({"result": "已处理"})).await;
        for (action, body) in [
            ("verify", json!({"passed": false, "note": "未处理完"})),
            ("feedback", json!({"satisfaction": "unsatisfied"})),
        ] {
            let before = app.count_rows("events").await;
            let r = app.post(&path(action), &hg_admin, body).await;
            assert_refused(&r, 403, &format!("{engine:?}: township admin {action}"));
            assert_eq!(app.count_rows("events").await, before, "{action}");
        }
        let r = ok(
            &app,
            &root_admin,
            &path("verify"),
            json!({"passed": true, "note": "区中心核实"}),
        )
        .await;
        assert_eq!(r["state"], "verified", "{engine:?}: the root admin may");
        app.finish().await;
    }
}

/// Issue 19, finding 3: a ticket's source follows the reporter's role.
#[tokio::test]
async fn the_source_follows_the_role() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let gw = app.token(Role::GridWorker, "hg-01-g01").await;
        let disp = app.token(Role::Dispatcher, "hg").await;
        for (token, source, who) in [
            (&hot, "grid", "a hotline agent posting as a grid worker"),
            (&gw, "hotline", "a grid worker posting as the hotline"),
        ] {
            let mut b = ticket_body();
            b["source"] = json!(source);
            let before = app.count_rows("events").await;
            let r = app.post("/api/v1/tickets", token, b).await;
            assert_refused(&r, 422, &format!("{engine:?}: {who}"));
            assert_eq!(r.body["field"], json!("source"), "{engine:?}: {who}");
            assert_eq!(app.count_rows("events").await, before, "{who}");
        }
        // The roles' own sources are taken; a dispatcher chooses.
        for (token, source) in [
            (&hot, "hotline"),
            (&gw, "grid"),
            (&disp, "grid"),
            (&disp, "hotline"),
        ] {
            let mut b = ticket_body();
            b["source"] = json!(source);
            let r = app.post("/api/v1/tickets", token, b).await;
            assert_eq!(r.status, 201, "{engine:?}: {source}: {}", r.body);
            assert_eq!(r.body["source"], json!(source));
        }
        // The role is recorded with the event.
        let roles: Vec<String> = app
            .all_events()
            .await
            .iter()
            .filter(|e| e.event_type == "TicketAccepted")
            .map(|e| e.metadata["role"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(
            roles,
            ["hotline_agent", "grid_worker", "dispatcher", "dispatcher"]
        );
        app.finish().await;
    }
}

/// Issue 19, finding 4: a link to another ticket (`related_to`, `duplicate_of`) names
/// a ticket the caller may read; anything else is a 404 with the same words whether
/// or not the ticket exists.
#[tokio::test]
async fn links_name_only_tickets_the_caller_may_read() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let fl_ticket = build(&app, Setup::Accepted, "fl").await;
        let hg_ticket = build(&app, Setup::Accepted, "hg").await;
        let absent = uuid::Uuid::now_v7().to_string();
        let hg = app.token(Role::Dispatcher, "hg").await;
        let hg_hot = app.token(Role::HotlineAgent, "hg").await;

        for (target, exists) in [(&fl_ticket, true), (&absent, false)] {
            let mut b = ticket_body();
            b["related_to"] = json!(target);
            let before = app.count_rows("events").await;
            let r = app.post("/api/v1/tickets", &hg_hot, b).await;
            assert_refused(
                &r,
                404,
                &format!("{engine:?}: related_to (exists: {exists})"),
            );
            assert_eq!(
                r.body["detail"],
                json!(format!(
                    "related_to names no ticket {target} that this token may read"
                )),
                "{engine:?}: the same words whether or not it exists"
            );
            assert_eq!(app.count_rows("events").await, before);

            let before = app.count_rows("events").await;
            let r = app
                .post(
                    &format!("/api/v1/tickets/{hg_ticket}/close"),
                    &hg,
                    json!({"code": "duplicate", "duplicate_of": target}),
                )
                .await;
            assert_refused(
                &r,
                404,
                &format!("{engine:?}: duplicate_of (exists: {exists})"),
            );
            assert_eq!(
                r.body["detail"],
                json!(format!(
                    "duplicate_of names no ticket {target} that this token may read"
                )),
            );
            assert_eq!(app.count_rows("events").await, before);
        }
        // Inside the scope both links work.
        let other = build(&app, Setup::Accepted, "hg").await;
        let mut b = ticket_body();
        b["related_to"] = json!(other);
        let r = app.post("/api/v1/tickets", &hg_hot, b).await;
        assert_eq!(r.status, 201, "{engine:?}: {}", r.body);
        let r = ok(
            &app,
            &hg,
            &format!("/api/v1/tickets/{hg_ticket}/close"),
            json!({"code": "duplicate", "duplicate_of": other}),
        )
        .await;
        assert_eq!(r["close_code"], json!("duplicate"));
        // A ticket read out of scope answers as one that does not exist.
        for target in [&fl_ticket, &absent] {
            let r = app.get(&format!("/api/v1/tickets/{target}"), &hg).await;
            assert_refused(&r, 404, &format!("{engine:?}: GET {target}"));
            assert_eq!(r.body["detail"], json!(format!("no ticket {target}")));
        }
        app.finish().await;
    }
}
