//! Hostile input over real HTTP, on SQLite and (when configured) PostgreSQL: no body,
//! query or path a client can send produces a 5xx, a panic or a partial write.
//!
//! - A property test mutates a valid body of every command (`POST /api/v1/tickets` and
//!   each action) — fields dropped, wrong types, huge strings, deep nesting, control
//!   characters, odd Unicode, lone surrogate escapes, SQL-looking text — and checks each
//!   answer: below 500; a refusal is problem+json with a message and no internals, and
//!   leaves every table it could write as it was; an accepted command appended events
//!   and returns its text verbatim.
//! - Plain tests send raw bytes (non-UTF-8, wrong media type, empty, truncated, over
//!   the 1 MiB limit, number overflow, duplicated keys), hostile query parameters and
//!   hostile path parameters (non-UUID ids, path traversal at the attachment routes).

use crate::support;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;
use yiwang::auth::Role;

use support::{TestApp, conforms, engines, ticket_body};

/// Property cases per engine (`YIWANG_HOSTILE_CASES` overrides).
const CASES: u32 = 128;

fn cases() -> u32 {
    std::env::var("YIWANG_HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES)
}

/// What the property test saw: refused, accepted, accepted and read back verbatim.
#[derive(Default)]
struct Tally {
    refused: AtomicUsize,
    accepted: AtomicUsize,
    verbatim: AtomicUsize,
}

/// What an error body must never carry (unless the request itself sent it).
const INTERNALS: &[&str] = &["sqlx", "SELECT", "INSERT", "panicked", "/work/", "src/"];

/// SQL-looking text a command may carry; stored and returned verbatim.
const SQLISH: &[&str] = &[
    "'; DROP TABLE events; --",
    "%' OR 1=1 --",
    "\" OR \"\"=\"",
    "1); DELETE FROM events WHERE (1=1",
    "' UNION select token_hash FROM tokens --",
    "Robert'); DROP TABLE ticket_view;--",
    "\\'; TRUNCATE events; --",
    "$1 $2 ?1 :name @p1 %s %_",
    "E'\\\\x00' || chr(0)",
    "/* */ OR/**/1=1#",
];

/// One answer, with its raw text.
struct Answer {
    status: u16,
    content_type: String,
    text: String,
    body: Value,
}

/// Sends raw bytes (no JSON encoding by the client) and reads the answer as text.
#[allow(clippy::too_many_arguments)]
async fn send_raw(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
    idempotency: bool,
) -> Result<Answer, String> {
    // Bounded: a request the service never finishes fails the test instead of hanging it.
    let mut rq = app
        .client
        .request(method, format!("{}{path}", app.base))
        .timeout(std::time::Duration::from_secs(20));
    if let Some(t) = token {
        rq = rq.bearer_auth(t);
    }
    if let Some(ct) = content_type {
        rq = rq.header("content-type", ct);
    }
    if idempotency {
        rq = rq.header("Idempotency-Key", Uuid::new_v4().to_string());
    }
    if let Some(b) = body {
        rq = rq.body(b);
    }
    // A panicking handler drops the connection: that is an error here, not a hang.
    let r = rq
        .send()
        .await
        .map_err(|e| format!("{path}: no answer (a panic or a dropped connection?): {e}"))?;
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = r
        .bytes()
        .await
        .map_err(|e| format!("{path}: answer cut: {e}"))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Answer {
        status,
        content_type,
        text,
        body,
    })
}

/// The common checks of any answer to hostile input: below 500, conforming to the
/// OpenAPI document, and a refusal is problem+json with a message and no internals.
fn check_answer(method: &str, path: &str, sent: &[u8], a: &Answer) -> Result<(), String> {
    let shown: String = path.chars().take(120).collect();
    let what = format!("{} {shown} -> {}", method.to_uppercase(), a.status);
    if a.status >= 500 {
        return Err(format!("{what}: a server error: {}", a.text));
    }
    if a.content_type.contains("json") {
        conforms(method, path, a.status, &a.content_type, &a.body)?;
    }
    if a.text.contains("root:x:0:0") {
        return Err(format!("{what}: a file's contents came back"));
    }
    if a.status >= 400 {
        if !a.content_type.starts_with("application/problem+json") {
            return Err(format!(
                "{what}: a refusal as {:?}, not problem+json: {}",
                a.content_type, a.text
            ));
        }
        let says = |k: &str| a.body[k].as_str().is_some_and(|s| !s.trim().is_empty());
        if !(says("detail") || says("title")) {
            return Err(format!(
                "{what}: a problem with no detail or title: {}",
                a.text
            ));
        }
        if a.body["status"] != a.status {
            return Err(format!("{what}: the problem's status differs: {}", a.text));
        }
        let sent = String::from_utf8_lossy(sent);
        for bad in INTERNALS {
            if a.text.contains(bad) && !sent.contains(bad) && !path.contains(bad) {
                return Err(format!("{what}: the error carries {bad:?}: {}", a.text));
            }
        }
    }
    Ok(())
}

/// Row counts of every table a command writes.
async fn footprint(app: &TestApp) -> [i64; 4] {
    [
        app.count_rows("events").await,
        app.count_rows("idempotency_keys").await,
        app.count_rows("ticket_view").await,
        app.count_rows("contacts").await,
    ]
}

/// True when `s` is one of the string values in `v`.
fn holds(v: &Value, s: &str) -> bool {
    match v {
        Value::String(x) => x == s,
        Value::Array(a) => a.iter().any(|x| holds(x, s)),
        Value::Object(m) => m.values().any(|x| holds(x, s)),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------
// The commands and their valid bodies.

/// A command of the property test: its name, a valid body, its fields (dotted paths)
/// and which of them are free text.
struct Command {
    name: &'static str,
    body: Value,
    fields: &'static [&'static str],
    text: &'static [&'static str],
}

fn commands() -> Vec<Command> {
    vec![
        Command {
            name: "create",
            body: {
                let mut b = ticket_body();
                b["related_to"] = Value::Null;
                b["photos"] = json!([]);
                b
            },
            fields: &[
                "source",
                "category",
                "title",
                "description",
                "urgency",
                "location",
                "location.address",
                "location.lat",
                "location.lon",
                "location.grid",
                "reporter",
                "reporter.name",
                "reporter.phone",
                "related_to",
                "photos",
            ],
            text: &["title", "description", "location.address", "reporter.name"],
        },
        Command {
            name: "assign",
            body: json!({"unit": "zhzf", "co_units": [], "note": "请处理"}),
            fields: &["unit", "co_units", "note"],
            text: &["note"],
        },
        Command {
            name: "sign",
            body: json!({"handler": "钱工"}),
            fields: &["handler"],
            text: &["handler"],
        },
        Command {
            name: "return",
            body: json!({"reason": "不属于本单位职责"}),
            fields: &["reason"],
            text: &["reason"],
        },
        Command {
            name: "request-extension",
            body: json!({"days": 3, "reason": "需要协调"}),
            fields: &["days", "reason"],
            text: &["reason"],
        },
        Command {
            name: "decide-extension",
            body: json!({"approved": true, "days": 2}),
            fields: &["approved", "days"],
            text: &[],
        },
        Command {
            name: "supervise",
            body: json!({"note": "请尽快办理"}),
            fields: &["note"],
            text: &["note"],
        },
        Command {
            name: "handle",
            body: json!({"result": "已清运", "photos": []}),
            fields: &["result", "photos"],
            text: &["result"],
        },
        Command {
            name: "verify",
            body: json!({"passed": true, "note": "现场核实"}),
            fields: &["passed", "note"],
            text: &["note"],
        },
        Command {
            name: "feedback",
            body: json!({"satisfaction": "satisfied"}),
            fields: &["satisfaction"],
            text: &[],
        },
        Command {
            name: "close",
            body: json!({"code": "resolved", "duplicate_of": null}),
            fields: &["code", "duplicate_of"],
            text: &[],
        },
        Command {
            name: "comment",
            body: json!({"text": "备注"}),
            fields: &["text"],
            text: &["text"],
        },
    ]
}

/// Tokens, and a fresh ticket for each case in the state where its action is
/// allowed (a ticket per case: a shared one would be used up by its first success,
/// and every later case would only meet a 409).
struct Fixture {
    hot: String,
    disp: String,
    hand: String,
}

impl Fixture {
    async fn new(app: &TestApp) -> Fixture {
        Fixture {
            hot: app.token(Role::HotlineAgent, "etdz").await,
            disp: app.token(Role::Dispatcher, "etdz").await,
            hand: app.token(Role::Handler, "zhzf").await,
        }
    }

    /// A new ticket in the state where `action` is allowed.
    async fn ticket(&self, app: &TestApp, action: &str) -> String {
        let step = |id: String, tok: &str, action: &'static str, body: Value| {
            let tok = tok.to_string();
            async move {
                let r = app
                    .post(&format!("/api/v1/tickets/{id}/{action}"), &tok, body)
                    .await;
                assert_eq!(r.status, 200, "setup {action}: {}", r.body);
                id
            }
        };
        let id = app.new_ticket().await["id"].as_str().unwrap().to_string();
        if matches!(action, "assign" | "comment") {
            return id;
        }
        let id = step(id, &self.disp, "assign", json!({"unit": "zhzf"})).await;
        if matches!(action, "sign" | "return") {
            return id;
        }
        let id = step(id, &self.hand, "sign", json!({"handler": "钱工"})).await;
        match action {
            "request-extension" | "supervise" | "handle" => return id,
            "decide-extension" => {
                let body = json!({"days": 3, "reason": "协调"});
                return step(id, &self.hand, "request-extension", body).await;
            }
            _ => {}
        }
        let id = step(id, &self.hand, "handle", json!({"result": "已清运"})).await;
        if action == "verify" {
            return id;
        }
        let body = json!({"passed": true, "note": "好"});
        step(id, &self.disp, "verify", body).await
    }

    /// The path (on a fresh ticket), and the token of the role that would send the
    /// command.
    async fn target(&self, app: &TestApp, name: &str) -> (String, &str, Option<String>) {
        if name == "create" {
            return ("/api/v1/tickets".into(), &self.hot, None);
        }
        let token = match name {
            "sign" | "return" | "request-extension" | "handle" => &self.hand,
            "feedback" => &self.hot,
            _ => &self.disp,
        };
        let id = self.ticket(app, name).await;
        (format!("/api/v1/tickets/{id}/{name}"), token, Some(id))
    }
}

// ---------------------------------------------------------------------------------
// The property test.

/// How a valid body is spoiled. `usize`s pick among the command's fields.
#[derive(Clone, Debug)]
enum Mutation {
    /// The valid body as it is (a baseline).
    Keep,
    Drop(usize),
    /// The field's value replaced by this JSON text.
    Replace(usize, String),
    /// A text field set to this string (SQL-looking, odd Unicode).
    SetText(usize, String),
    /// An extra member: its name and JSON text.
    Unknown(String, String),
    /// The whole body is this JSON text.
    Whole(String),
    /// The valid body's bytes cut here (modulo its length).
    Truncate(usize),
}

/// Deep nesting: arrays or objects `depth` levels down.
fn deep(depth: usize, objects: bool) -> String {
    if objects {
        format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
    } else {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }
}

/// Strings a field should never choke on.
fn hostile_string() -> impl Strategy<Value = String> {
    let odd = prop::sample::select(vec![
        '\u{0}',
        '\u{1}',
        '\u{7}',
        '\u{8}',
        '\u{1b}',
        '\u{7f}',
        '\u{85}',
        '\u{9f}',
        '\t',
        '\n',
        '\r',
        '\u{200b}',
        '\u{200e}',
        '\u{200f}',
        '\u{202a}',
        '\u{202e}',
        '\u{2066}',
        '\u{2028}',
        '\u{2029}',
        '\u{feff}',
        '\u{fffd}',
        '\u{ffff}',
        '\u{10ffff}',
        '\u{301}',
        '😀',
        '🏳',
        '\u{fe0f}',
        '\u{200d}',
        'a',
        '长',
        '"',
        '\\',
        '\'',
        '%',
        '_',
        '<',
        '&',
    ]);
    prop_oneof![
        prop::sample::select(SQLISH).prop_map(str::to_string),
        prop::collection::vec(odd, 0..40).prop_map(|v| v.into_iter().collect()),
        any::<String>(),
        // Huge: up to ~200 KB.
        (
            prop::sample::select(vec!["x", "长", "😀", "'; --", "\u{202e}"]),
            0usize..50_000
        )
            .prop_map(|(unit, n)| unit.repeat(n)),
        // Just over each length limit.
        prop::sample::select(vec![101usize, 201, 10_001]).prop_map(|n| "字".repeat(n)),
    ]
}

/// JSON text for a field's value: every type, out-of-range numbers, deep nesting,
/// hostile strings and escapes `serde_json::Value` cannot even hold (lone surrogates).
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::to_string(&f).unwrap()),
        prop::sample::select(vec![
            "null",
            "true",
            "false",
            "0",
            "-1",
            "1e999",
            "-1e999",
            "1180591620717411303424",
            "18446744073709551616",
            "-9223372036854775809",
            "4294967296",
            "1.5",
            "[]",
            "{}",
            "[1,\"a\",null,{}]",
            "{\"a\":{\"b\":[1]}}",
            "\"\\ud800\"",
            "\"x\\udc00y\"",
            "\"\\ud800\\u0041\"",
            "\"\\ud83d\\ude00\"",
            "\"\\u0000\"",
            "\"\\u202e\\u200f\"",
            "\"\"",
            "\" \"",
        ])
        .prop_map(str::to_string),
        (1usize..3000, any::<bool>()).prop_map(|(d, o)| deep(d, o)),
        hostile_string().prop_map(|s| serde_json::to_string(&s).unwrap()),
        prop::collection::vec(hostile_string(), 0..30)
            .prop_map(|v| serde_json::to_string(&v).unwrap()),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => Just(Mutation::Keep),
        2 => any::<usize>().prop_map(Mutation::Drop),
        6 => (any::<usize>(), fragment()).prop_map(|(i, f)| Mutation::Replace(i, f)),
        4 => (any::<usize>(), hostile_string()).prop_map(|(i, s)| Mutation::SetText(i, s)),
        1 => (hostile_string(), fragment()).prop_map(|(k, f)| Mutation::Unknown(k, f)),
        2 => fragment().prop_map(Mutation::Whole),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

const PLACEHOLDER: &str = "__hostile_fragment__";

/// Sets a dotted path of an object body.
fn set_path(body: &mut Value, path: &str, v: Value) {
    let mut at = body;
    let parts: Vec<&str> = path.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        at = &mut at[*p];
    }
    at[parts[parts.len() - 1]] = v;
}

fn drop_path(body: &mut Value, path: &str) {
    let (parent, last) = match path.rsplit_once('.') {
        Some((a, b)) => (body.pointer_mut(&format!("/{}", a.replace('.', "/"))), b),
        None => (Some(body), path),
    };
    if let Some(Value::Object(m)) = parent {
        m.remove(last);
    }
}

/// The spoiled body's bytes, and the string a text field was set to (to be found
/// verbatim if the command is accepted).
fn spoil(c: &Command, m: &Mutation) -> (Vec<u8>, Option<String>) {
    let mut body = c.body.clone();
    let with_fragment = |body: &Value, f: &str| {
        body.to_string()
            .replace(&format!("\"{PLACEHOLDER}\""), f)
            .into_bytes()
    };
    match m {
        Mutation::Keep => (body.to_string().into_bytes(), None),
        Mutation::Drop(i) => {
            drop_path(&mut body, c.fields[i % c.fields.len()]);
            (body.to_string().into_bytes(), None)
        }
        Mutation::Replace(i, f) => {
            let field = c.fields[i % c.fields.len()];
            set_path(&mut body, field, json!(PLACEHOLDER));
            // A string put in a text field must come back as it went in.
            let expect = c
                .text
                .contains(&field)
                .then(|| serde_json::from_str::<String>(f).ok())
                .flatten();
            (with_fragment(&body, f), expect)
        }
        Mutation::SetText(i, s) => {
            if c.text.is_empty() {
                let field = c.fields[i % c.fields.len()];
                set_path(&mut body, field, json!(s));
                return (body.to_string().into_bytes(), None);
            }
            set_path(&mut body, c.text[i % c.text.len()], json!(s));
            (body.to_string().into_bytes(), Some(s.clone()))
        }
        Mutation::Unknown(k, f) => {
            body[k.as_str()] = json!(PLACEHOLDER);
            (with_fragment(&body, f), None)
        }
        Mutation::Whole(f) => (f.clone().into_bytes(), None),
        Mutation::Truncate(n) => {
            let bytes = body.to_string().into_bytes();
            let cut = n % bytes.len();
            (bytes[..cut].to_vec(), None)
        }
    }
}

async fn run_case(
    app: &TestApp,
    fx: &Fixture,
    c: &Command,
    m: &Mutation,
    tally: &Tally,
) -> Result<(), String> {
    let (path, token, ticket) = fx.target(app, c.name).await;
    let (body, expect) = spoil(c, m);
    let before = footprint(app).await;
    let a = send_raw(
        app,
        reqwest::Method::POST,
        &path,
        Some(token),
        Some("application/json"),
        Some(body.clone()),
        true,
    )
    .await?;
    check_answer("post", &path, &body, &a)?;
    let after = footprint(app).await;
    let what = format!("{} {:?} -> {}", c.name, m, a.status);
    if a.status >= 400 {
        if matches!(m, Mutation::Keep) {
            return Err(format!(
                "{what}: the valid body, unspoiled, was refused: {}",
                a.text
            ));
        }
        if after != before {
            return Err(format!(
                "{what}: a refused command left a trace: rows {before:?} -> {after:?}"
            ));
        }
        tally.refused.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    if after[0] <= before[0] {
        return Err(format!("{what}: accepted, yet no event was appended"));
    }
    tally.accepted.fetch_add(1, Ordering::Relaxed);
    if let Some(s) = expect {
        // Read it back: the ticket and its events hold the string exactly.
        let id = match ticket {
            None => a.body["id"].as_str().unwrap_or_default().to_string(),
            Some(id) => id,
        };
        let reader = if c.name == "create" {
            &fx.hot
        } else {
            &fx.disp
        };
        let t = app.get(&format!("/api/v1/tickets/{id}"), reader).await;
        let evs = app
            .get(&format!("/api/v1/tickets/{id}/events"), reader)
            .await;
        if !(holds(&t.body, &s) || holds(&evs.body, &s)) {
            return Err(format!(
                "{what}: {s:?} was accepted but is not returned verbatim"
            ));
        }
        tally.verbatim.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoiled_command_bodies_are_refused_cleanly_or_kept_verbatim() {
    for engine in engines().await {
        let started = std::time::Instant::now();
        let app = TestApp::spawn(engine).await;
        let fx = Fixture::new(&app).await;
        let cmds = commands();
        let handle = tokio::runtime::Handle::current();
        let tally = Tally::default();
        let mut runner = TestRunner::new(Config {
            cases: cases(),
            failure_persistence: None,
            max_shrink_iters: 64,
            ..Config::default()
        });
        // Each command's valid body first, as it is: it must be accepted (a parser
        // that refuses everything would pass the spoiled cases alone).
        for c in &cmds {
            if let Err(e) = run_case(&app, &fx, c, &Mutation::Keep, &tally).await {
                panic!("{engine:?}: {e}");
            }
        }
        let strategy = (0..cmds.len(), mutation());
        let result = tokio::task::block_in_place(|| {
            runner.run(&strategy, |(i, m)| {
                handle
                    .block_on(run_case(&app, &fx, &cmds[i], &m, &tally))
                    .map_err(TestCaseError::fail)
            })
        });
        if let Err(e) = result {
            panic!("{engine:?}: {e}");
        }
        eprintln!(
            "{engine:?}: {} spoiled command bodies in {:.1} s: {} refused, {} accepted ({} read back verbatim)",
            cases(),
            started.elapsed().as_secs_f64(),
            tally.refused.load(Ordering::Relaxed),
            tally.accepted.load(Ordering::Relaxed),
            tally.verbatim.load(Ordering::Relaxed),
        );
        // Not vacuous: the valid bodies went in, and some spoiled ones with text
        // were accepted and read back verbatim.
        assert!(
            tally.accepted.load(Ordering::Relaxed) > cmds.len(),
            "{engine:?}: no spoiled body was accepted"
        );
        assert!(
            tally.verbatim.load(Ordering::Relaxed) > 0,
            "{engine:?}: no accepted text was read back"
        );
        assert!(tally.refused.load(Ordering::Relaxed) > 0, "{engine:?}");
        app.finish().await;
    }
}

// ---------------------------------------------------------------------------------
// Raw bytes.

/// Sends `body` and checks the answer is a clean refusal with `expect` (any 4xx
/// when None) that leaves no trace.
#[allow(clippy::too_many_arguments)]
async fn refused(
    app: &TestApp,
    path: &str,
    token: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    expect: Option<u16>,
    what: &str,
) {
    let before = footprint(app).await;
    let a = send_raw(
        app,
        reqwest::Method::POST,
        path,
        Some(token),
        content_type,
        Some(body.clone()),
        true,
    )
    .await
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    check_answer("post", path, &body, &a).unwrap_or_else(|e| panic!("{what}: {e}"));
    match expect {
        Some(s) => assert_eq!(a.status, s, "{what}: {}", a.text),
        None => assert!((400..500).contains(&a.status), "{what}: {}", a.text),
    }
    assert_eq!(footprint(app).await, before, "{what}: appended nothing");
}

#[tokio::test]
async fn raw_bodies_are_refused_cleanly() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let id = app.new_ticket().await["id"].as_str().unwrap().to_string();
        let create = "/api/v1/tickets".to_string();
        let comment = format!("/api/v1/tickets/{id}/comment");
        let extension = format!("/api/v1/tickets/{id}/request-extension");
        let json_ct = Some("application/json");
        let valid_create = ticket_body().to_string();

        for (path, tok, valid) in [
            (&create, &hot, valid_create.clone()),
            (&comment, &disp, json!({"text": "备注"}).to_string()),
        ] {
            let w = |s: &str| format!("{engine:?} {path}: {s}");
            // Not UTF-8: bytes inside a string, and a body of nothing but garbage.
            let mut bad = valid.clone().into_bytes();
            let at = bad.iter().position(|b| *b == b':').unwrap() + 2;
            bad.splice(at..at, [0xff, 0xfe, 0xc0, 0x80]);
            refused(&app, path, tok, json_ct, bad, Some(400), &w("non-UTF-8")).await;
            refused(
                &app,
                path,
                tok,
                json_ct,
                vec![0xff, 0x00, 0xfe, 0x7b],
                Some(400),
                &w("binary"),
            )
            .await;
            // Empty, whitespace, truncated, a BOM, trailing garbage.
            refused(&app, path, tok, json_ct, vec![], Some(400), &w("empty")).await;
            refused(
                &app,
                path,
                tok,
                json_ct,
                b"   \n".to_vec(),
                Some(400),
                &w("blank"),
            )
            .await;
            let cut = valid.as_bytes()[..valid.len() / 2].to_vec();
            refused(&app, path, tok, json_ct, cut, Some(400), &w("truncated")).await;
            let bom = [b"\xef\xbb\xbf".as_slice(), valid.as_bytes()].concat();
            refused(&app, path, tok, json_ct, bom, Some(400), &w("BOM")).await;
            let tail = format!("{valid} {{}}").into_bytes();
            refused(&app, path, tok, json_ct, tail, Some(400), &w("trailing")).await;
            // A form where JSON is expected: not JSON's media type, 415.
            refused(
                &app,
                path,
                tok,
                Some("application/x-www-form-urlencoded"),
                b"title=x&text=y".to_vec(),
                Some(415),
                &w("a form"),
            )
            .await;
            // Over the 1 MiB limit: 413 as a problem document.
            let mut huge = valid.clone().into_bytes();
            huge.truncate(huge.len() - 1);
            huge.extend(format!(",\"pad\":\"{}\"}}", "x".repeat(2 << 20)).into_bytes());
            refused(&app, path, tok, json_ct, huge, Some(413), &w("2 MB")).await;
            // Not even JSON in form, with no content type: 415 before the body is read.
            refused(
                &app,
                path,
                tok,
                None,
                vec![b'{'; 4096],
                Some(415),
                &w("no type"),
            )
            .await;
        }

        // Valid JSON sent as text/plain (what a browser may send cross-site without a
        // preflight) is refused with 415, and never half a write.
        let before = app.count_rows("events").await;
        let a = send_raw(
            &app,
            reqwest::Method::POST,
            &comment,
            Some(&disp),
            Some("text/plain; charset=utf-8"),
            Some(json!({"text": "纯文本"}).to_string().into_bytes()),
            true,
        )
        .await
        .unwrap();
        check_answer("post", &comment, b"", &a).unwrap();
        let appended = app.count_rows("events").await - before;
        assert!(
            a.status == 415 && appended == 0,
            "text/plain: {} and {appended} events",
            a.status
        );

        // Numbers out of range: 1e999 is not a number JSON readers agree on (400);
        // 2^70 days does not fit (422 naming the field).
        let mut b = ticket_body().to_string();
        b = b.replace("37.5", "1e999");
        refused(
            &app,
            &create,
            &hot,
            json_ct,
            b.into_bytes(),
            Some(400),
            "lat 1e999",
        )
        .await;
        for days in ["1180591620717411303424", "1e999", "-1", "4294967296", "3.5"] {
            let body = format!("{{\"days\": {days}, \"reason\": \"r\"}}");
            let hand = app.token(Role::Handler, "zhzf").await;
            refused(
                &app,
                &extension,
                &hand,
                json_ct,
                body.into_bytes(),
                None,
                &format!("days {days}"),
            )
            .await;
        }

        // Duplicated keys: refused, never "the last one wins" silently.
        refused(
            &app,
            &comment,
            &disp,
            json_ct,
            br#"{"text": "a", "text": "b"}"#.to_vec(),
            Some(422),
            "duplicated key",
        )
        .await;
        let dup = ticket_body()
            .to_string()
            .replacen('{', r#"{"title": "第一个","#, 1);
        refused(
            &app,
            &create,
            &hot,
            json_ct,
            dup.into_bytes(),
            Some(422),
            "duplicated title",
        )
        .await;
        app.finish().await;
    }
}

// ---------------------------------------------------------------------------------
// Query and path parameters.

/// GETs `path` and checks the answer: below 500, a clean refusal if refused.
/// Returns the status.
async fn get_checked(app: &TestApp, path: &str, token: &str) -> u16 {
    let a = send_raw(
        app,
        reqwest::Method::GET,
        path,
        Some(token),
        None,
        None,
        false,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    check_answer("get", path, path.as_bytes(), &a).unwrap_or_else(|e| panic!("{e}"));
    a.status
}

#[tokio::test]
async fn hostile_query_parameters_are_refused_cleanly() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let analyst = app.token(Role::Analyst, "etdz").await;
        for _ in 0..3 {
            app.new_ticket().await;
        }
        let before = footprint(&app).await;
        let huge = "9".repeat(5000);
        let uuid = Uuid::now_v7();
        let must_refuse = [
            "/api/v1/tickets?limit=%FF".to_string(),
            "/api/v1/tickets?state=%FF%FE".into(),
            "/api/v1/tickets?cursor=%FF".into(),
            "/api/v1/tickets?limit=99999999999999999999999".into(),
            format!("/api/v1/tickets?limit={huge}"),
            "/api/v1/tickets?limit=9223372036854775807".into(),
            "/api/v1/tickets?limit=-1".into(),
            "/api/v1/tickets?limit=0".into(),
            "/api/v1/tickets?limit=501".into(),
            "/api/v1/tickets?limit=1e3".into(),
            "/api/v1/tickets?limit=1&limit=2".into(),
            "/api/v1/tickets?cursor=-1".into(),
            "/api/v1/tickets?cursor=garbage".into(),
            "/api/v1/tickets?cursor=%27%3B%20DROP%20TABLE%20events%3B%20--".into(),
            format!("/api/v1/tickets?cursor=9223372036854775807_{uuid}"),
            format!("/api/v1/tickets?cursor=-9223372036854775808_{uuid}"),
            format!("/api/v1/tickets?cursor=1_{uuid}%00"),
            "/api/v1/tickets?state=closed%00".into(),
            "/api/v1/tickets?state=%27%20OR%201%3D1%20--".into(),
            "/api/v1/tickets?overdue=maybe".into(),
            "/api/v1/tickets?overdue=true&cursor=o-1".into(),
            "/api/v1/tickets?overdue=true&cursor=o99999999999999999999".into(),
            "/api/v1/tickets?overdue=true&cursor=%FF".into(),
            "/api/v1/tickets?overdue=true&unit=%00".into(),
            "/api/v1/tickets?overdue=true&unit=%27%3B%20DROP%20TABLE%20events%3B%20--".into(),
            "/api/v1/events?after=-1".into(),
            "/api/v1/events?after=%FF".into(),
            "/api/v1/events?after=99999999999999999999".into(),
            "/api/v1/events?after=garbage".into(),
            "/api/v1/events?limit=0".into(),
            "/api/v1/events?limit=1001".into(),
            "/api/v1/events?limit=9223372036854775807".into(),
            "/api/v1/events?limit=-9223372036854775808".into(),
            format!("/api/v1/events?limit={huge}"),
            "/api/v1/events/stream?from=garbage".into(),
            "/api/v1/events/stream?after=%FF".into(),
        ];
        for path in &must_refuse {
            let s = get_checked(&app, path, &disp).await;
            assert!((400..500).contains(&s), "{engine:?} {path}: {s}");
        }
        // Extreme but well-formed: answered (an empty page) or refused, never a 5xx.
        let may_answer = [
            format!("/api/v1/tickets?cursor=8210298412799999999_{uuid}"),
            format!("/api/v1/tickets?cursor=-8334601228800000000_{uuid}"),
            format!("/api/v1/tickets?cursor=0_{uuid}"),
            "/api/v1/tickets?overdue=true&cursor=o9223372036854775807".into(),
            "/api/v1/tickets?overdue=true&cursor=o9223372036854775000&limit=500".into(),
            "/api/v1/tickets?unit=%27%3B%20DROP%20TABLE%20events%3B%20--".into(),
            format!("/api/v1/tickets?unit={}", "长".repeat(3000)),
            "/api/v1/tickets?unit=%00".into(),
            "/api/v1/events?after=9223372036854775807".into(),
            "/api/v1/events?after=9223372036854775807&limit=1000".into(),
            "/api/v1/tickets?limit=500".into(),
            "/api/v1/events?limit=1000".into(),
        ];
        for path in &may_answer {
            get_checked(&app, path, &disp).await;
        }

        // Statistics: dates, granularity and satisfaction garbage.
        let stats_refused = [
            "from=garbage",
            "to=%FF",
            "from=2024-13-45",
            "from=2024-02-30",
            "from=2025-01-01&to=2024-01-01",
            "granularity=week",
            "granularity=%FF",
            "granularity=day%00",
            "satisfaction=lenient",
            "unit=%00",
            "unit=%27%3B%20DROP%20TABLE%20events%3B%20--",
            "from=1900-01-01&to=2100-12-31&granularity=day",
            "from=0001-01-01&to=9999-12-31&granularity=day",
            "from=0000-01-01&to=0001-01-01",
            "from=10000-01-01",
            "from=-262143-01-01&to=%2B262142-12-31&granularity=day",
            "from=%2B262142-01-01&to=%2B262142-12-31&granularity=year",
            "from=%2B262142-12-01&to=%2B262142-12-31&granularity=day",
            "from=%2B262142-12-01&to=%2B262142-12-31&granularity=month",
            "from=%2B262142-10-01&to=%2B262142-12-31&granularity=quarter",
            "from=-262143-01-01&to=-262143-01-31&granularity=day",
            "from=-262143-01-01&to=-262143-12-31&granularity=year",
        ];
        for q in stats_refused {
            let path = format!("/api/v1/stats/units?{q}");
            let s = get_checked(&app, &path, &analyst).await;
            assert!((400..500).contains(&s), "{engine:?} {path}: {s}");
        }
        for q in [
            "from=2024-01-01&to=2024-01-01&granularity=day",
            "from=2024-01&to=2024-03&granularity=month",
            "from=0001-01-01&to=0001-12-31&granularity=year",
            "from=9999-01-01&to=9999-12-31&granularity=quarter",
        ] {
            get_checked(&app, &format!("/api/v1/stats/units?{q}"), &analyst).await;
        }
        // Appraisal periods.
        for q in [
            "period=garbage",
            "period=%FF",
            "period=2024-Q9",
            "period=99999999999-Q1",
            "period=%2B262142",
            "period=-262143-01",
            "period=2024&profile=%27%3B--",
            "period=2024&unit=%00",
        ] {
            let path = format!("/api/v1/appraisal?{q}");
            let s = get_checked(&app, &path, &analyst).await;
            assert!((400..500).contains(&s), "{engine:?} {path}: {s}");
        }
        assert_eq!(
            footprint(&app).await,
            before,
            "{engine:?}: reads wrote nothing"
        );
        app.finish().await;
    }
}

/// A request written straight to the socket, so that no client normalises the path
/// (`..` segments, `%2e%2e`). Returns the status and the whole answer.
async fn raw_http(app: &TestApp, target: &str, token: &str) -> (u16, String) {
    let addr = app.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let rq = format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(rq.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{target}: no status line: {text:?}"));
    (status, text)
}

#[tokio::test]
async fn hostile_path_parameters_are_refused_cleanly() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let id = app.new_ticket().await["id"].as_str().unwrap().to_string();
        let before = footprint(&app).await;
        let long = "a".repeat(4000);
        let dotted = format!("..%2F..%2F{}", "0".repeat(58));
        let gets = [
            "/api/v1/tickets/not-a-uuid".to_string(),
            "/api/v1/tickets/%FF".into(),
            "/api/v1/tickets/%00".into(),
            format!("/api/v1/tickets/{id}%00"),
            format!("/api/v1/tickets/{long}"),
            "/api/v1/tickets/%27%3B%20DROP%20TABLE%20events%3B%20--".into(),
            "/api/v1/tickets/00000000-0000-0000-0000-000000000000".into(),
            "/api/v1/tickets/not-a-uuid/events".into(),
            "/api/v1/tickets/%FF/events".into(),
            format!("/api/v1/tickets/{id}/attachments/..%2F..%2Fetc%2Fpasswd"),
            format!("/api/v1/tickets/{id}/attachments/%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
            format!("/api/v1/tickets/{id}/attachments/{dotted}"),
            format!("/api/v1/tickets/{id}/attachments/%FF"),
            format!("/api/v1/tickets/{id}/attachments/{}", "a".repeat(64)),
            "/api/v1/tickets/not-a-uuid/attachments/..%2F..%2Fetc%2Fpasswd".into(),
            "/api/v1/attachments/..%2F..%2Fetc%2Fpasswd".into(),
            "/api/v1/attachments/..%5C..%5Cetc%5Cpasswd".into(),
            "/api/v1/attachments/%2Fetc%2Fpasswd".into(),
            format!("/api/v1/attachments/{dotted}"),
            "/api/v1/attachments/%FF".into(),
            "/api/v1/attachments/%00".into(),
            format!("/api/v1/attachments/{}", "a".repeat(64)),
            format!("/api/v1/attachments/{long}"),
        ];
        for path in &gets {
            let s = get_checked(&app, path, &disp).await;
            assert!((400..500).contains(&s), "{engine:?} {path}: {s}");
        }
        // Commands at hostile paths append nothing.
        for path in [
            "/api/v1/tickets/not-a-uuid/comment".to_string(),
            "/api/v1/tickets/%FF/comment".into(),
            format!("/api/v1/tickets/{id}/%FF"),
            format!("/api/v1/tickets/{id}/comment%00"),
            format!("/api/v1/tickets/{id}/..%2Fcomment"),
        ] {
            refused(
                &app,
                &path,
                &hot,
                Some("application/json"),
                json!({"text": "x"}).to_string().into_bytes(),
                None,
                &format!("{engine:?} POST {path}"),
            )
            .await;
        }
        // Unnormalised traversal straight on the socket.
        for target in [
            format!("/api/v1/tickets/{id}/attachments/../../../../etc/passwd"),
            "/api/v1/attachments/../../../../etc/passwd".to_string(),
            "/api/v1/attachments/....//....//etc/passwd".into(),
            "/api/v1/attachments/%2e%2e/%2e%2e/%2e%2e/etc/passwd".into(),
            "/api/v1/attachments/..\\..\\etc\\passwd".into(),
        ] {
            let (status, text) = raw_http(&app, &target, &disp).await;
            assert!(
                (400..500).contains(&status),
                "{engine:?} {target}: {status}: {text}"
            );
            assert!(!text.contains("root:"), "{engine:?} {target}: {text}");
        }
        assert_eq!(footprint(&app).await, before, "{engine:?}: nothing written");
        app.finish().await;
    }
}
