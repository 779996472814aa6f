//! Issue 19, findings 8, 9 and 11: what lands in the permanent log is bounded
//! (request ids, import keys, characters that are not text), commands are JSON only,
//! Open311's XML stays well-formed whatever a stored ticket holds, and what the
//! service serves cannot be framed, sniffed, cached with a citizen's contact or run
//! as a page.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use yiwang::auth::{Actor, Role};

use crate::support::{Resp, TestApp, conforms, engines, ticket_body, upload_part};

/// Row counts of the tables a command or an upload writes.
async fn footprint(app: &TestApp) -> [i64; 5] {
    [
        app.count_rows("events").await,
        app.count_rows("idempotency_keys").await,
        app.count_rows("ticket_view").await,
        app.count_rows("contacts").await,
        app.count_rows("attachments").await,
    ]
}

fn key() -> (&'static str, String) {
    ("Idempotency-Key", Uuid::new_v4().to_string())
}

/// A POST with a fresh Idempotency-Key and the given extra headers.
async fn post_with(
    app: &TestApp,
    path: &str,
    token: &str,
    body: &Value,
    headers: &[(&str, String)],
) -> Resp {
    let mut h = vec![key()];
    h.extend(headers.iter().cloned());
    app.send(reqwest::Method::POST, path, Some(token), Some(body), &h)
        .await
}

// ---------------------------------------------------------------------------------
// Finding 8: request ids and Idempotency-Keys.

#[tokio::test]
async fn request_ids_that_cannot_be_kept_are_replaced_in_the_answer_and_the_log() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let long = "a".repeat(200_000);
        let cases: [(&str, String, bool); 6] = [
            ("kept", "req-2026.12.07:abc_XYZ-09".into(), true),
            ("128 characters", "b".repeat(128), true),
            ("129 characters", "c".repeat(129), false),
            ("200 KB", long, false),
            (
                "an import's form",
                "import legacy-2025.ndjson:42".into(),
                false,
            ),
            ("other characters", "id/<script>;x=1".into(), false),
        ];
        for (what, sent, kept) in cases {
            let r = post_with(
                &app,
                "/api/v1/tickets",
                &hot,
                &ticket_body(),
                &[("X-Request-Id", sent.clone())],
            )
            .await;
            let w = format!("{engine:?} {what}");
            assert_eq!(r.status, 201, "{w}: {}", r.body);
            let answered = r
                .header("x-request-id")
                .expect("an X-Request-Id")
                .to_string();
            if kept {
                assert_eq!(answered, sent, "{w}");
            } else {
                assert_ne!(answered, sent, "{w}");
                assert!(
                    Uuid::parse_str(&answered).is_ok(),
                    "{w}: a fresh id: {answered}"
                );
            }
            let id = r.body["id"].as_str().expect("id");
            let ev = app
                .get(&format!("/api/v1/tickets/{id}/events"), &disp)
                .await;
            assert_eq!(ev.status, 200, "{w}");
            let stored = ev.body["items"][0]["metadata"]["request_id"]
                .as_str()
                .expect("request_id in the metadata");
            assert_eq!(stored, answered, "{w}: the log has the id answered");
        }
        // Two ids at once: neither is kept.
        let r = app
            .send(
                reqwest::Method::GET,
                "/api/v1/me",
                Some(&hot),
                None,
                &[
                    ("X-Request-Id", "one".into()),
                    ("X-Request-Id", "two".into()),
                ],
            )
            .await;
        assert_eq!(r.status, 200);
        let answered = r.header("x-request-id").unwrap_or("");
        assert!(Uuid::parse_str(answered).is_ok(), "{answered}");
        app.finish().await;
    }
}

#[tokio::test]
async fn idempotency_keys_of_the_import_are_refused_over_http() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let id = app.new_ticket().await["id"]
            .as_str()
            .expect("id")
            .to_string();
        let before = footprint(&app).await;
        let forged = format!("import:{}", "0".repeat(64));
        for k in [forged.clone(), forged.to_uppercase(), "Import:x".into()] {
            for (path, token, body) in [
                ("/api/v1/tickets".to_string(), &hot, ticket_body()),
                (
                    format!("/api/v1/tickets/{id}/comment"),
                    &disp,
                    json!({"text": "备注"}),
                ),
            ] {
                let r = app
                    .send(
                        reqwest::Method::POST,
                        &path,
                        Some(token),
                        Some(&body),
                        &[("Idempotency-Key", k.clone())],
                    )
                    .await;
                assert_eq!(r.status, 422, "{engine:?} {path} {k}: {}", r.body);
                assert_eq!(r.body["field"], "Idempotency-Key", "{}", r.body);
                assert!(
                    r.body["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("import")),
                    "{}",
                    r.body
                );
            }
        }
        assert_eq!(
            footprint(&app).await,
            before,
            "{engine:?}: nothing appended"
        );
        // A key that only contains the word is an ordinary key.
        let r = app
            .send(
                reqwest::Method::POST,
                "/api/v1/tickets",
                Some(&hot),
                Some(&ticket_body()),
                &[("Idempotency-Key", format!("my-import:{}", Uuid::new_v4()))],
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        app.finish().await;
    }
}

// ---------------------------------------------------------------------------------
// Finding 9: characters that are not text, and Open311's XML.

/// Noncharacters and bidirectional controls, each refused wherever it is put.
const NOT_TEXT: [char; 8] = [
    '\u{FFFF}',
    '\u{FFFE}',
    '\u{FDD0}',
    '\u{1FFFF}',
    '\u{10FFFE}',
    '\u{202E}',
    '\u{202A}',
    '\u{2066}',
];

#[tokio::test]
async fn noncharacters_and_bidi_controls_are_refused_naming_the_field() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let gw = app.token(Role::GridWorker, "hg-01-g01").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let id = app.new_ticket().await["id"]
            .as_str()
            .expect("id")
            .to_string();
        let before = footprint(&app).await;
        let grid_report = || {
            let mut b = ticket_body();
            b["source"] = json!("grid");
            b["self_handled"] = json!({"result": "已处理"});
            b
        };
        // (path, token, body, the field's path in the body, its name in the 422)
        let t = format!("/api/v1/tickets/{id}");
        let cases: Vec<(String, &str, Value, &str)> = vec![
            ("/api/v1/tickets".into(), &hot, ticket_body(), "title"),
            ("/api/v1/tickets".into(), &hot, ticket_body(), "description"),
            (
                "/api/v1/tickets".into(),
                &hot,
                ticket_body(),
                "location.address",
            ),
            (
                "/api/v1/tickets".into(),
                &hot,
                ticket_body(),
                "reporter.name",
            ),
            (
                "/api/v1/tickets".into(),
                &gw,
                grid_report(),
                "self_handled.result",
            ),
            (
                format!("{t}/assign"),
                &disp,
                json!({"unit": "zhzf", "note": "n"}),
                "note",
            ),
            (
                format!("{t}/sign"),
                &disp,
                json!({"handler": "h"}),
                "handler",
            ),
            (
                format!("{t}/return"),
                &disp,
                json!({"reason": "r"}),
                "reason",
            ),
            (
                format!("{t}/request-extension"),
                &disp,
                json!({"days": 2, "reason": "r"}),
                "reason",
            ),
            (
                format!("{t}/supervise"),
                &disp,
                json!({"note": "n"}),
                "note",
            ),
            (
                format!("{t}/handle"),
                &disp,
                json!({"result": "r"}),
                "result",
            ),
            (
                format!("{t}/verify"),
                &disp,
                json!({"passed": true, "note": "n"}),
                "note",
            ),
            (format!("{t}/comment"), &disp, json!({"text": "t"}), "text"),
        ];
        for (path, token, body, field) in &cases {
            for (i, c) in NOT_TEXT.iter().enumerate() {
                let mut b = body.clone();
                let mut at = &mut b;
                for part in field.split('.') {
                    at = &mut at[part];
                }
                *at = json!(format!("前{c}后"));
                let r = app.post(path, token, b).await;
                let w = format!("{engine:?} {path} {field} U+{:04X}", *c as u32);
                assert_eq!(r.status, 422, "{w}: {}", r.body);
                assert_eq!(r.body["field"], *field, "{w}: {}", r.body);
                let cp = format!("U+{:04X}", *c as u32);
                assert!(
                    r.body["detail"].as_str().is_some_and(|d| d.contains(&cp)),
                    "{w}: the detail names the character: {}",
                    r.body
                );
                // Once per field is enough for the (slower) whole-body variants.
                if i > 2 && path == "/api/v1/tickets" {
                    break;
                }
            }
        }
        // Open311's form: the same rules, in GeoReport's error shape.
        for (form_field, value) in [
            ("description", "垃圾\u{FFFF}堆积"),
            ("address_string", "皇冠\u{202E}街道"),
            ("first_name", "\u{2066}赵"),
            ("media_url", "http://x/\u{FDD0}"),
        ] {
            let mut form = vec![
                ("api_key", hot.clone()),
                ("service_code", "city.exposed_garbage".into()),
                ("address_string", "皇冠街道".into()),
                ("description", "垃圾堆积".into()),
            ];
            form.retain(|(k, _)| *k != form_field);
            form.push((form_field, value.to_string()));
            let body = serde_urlencoded::to_string(&form).expect("form");
            let r = app
                .client
                .post(format!("{}/open311/v2/requests.json", app.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .expect("post");
            assert_eq!(r.status().as_u16(), 400, "{engine:?} {form_field}");
            let e: Value = r.json().await.expect("json");
            let d = e[0]["description"].as_str().unwrap_or("");
            let named = if form_field == "first_name" {
                "first_name/last_name"
            } else if form_field == "media_url" {
                "description"
            } else {
                form_field
            };
            assert!(d.starts_with(named), "{engine:?} {form_field}: {e}");
        }
        assert_eq!(
            footprint(&app).await,
            before,
            "{engine:?}: nothing appended"
        );
        // Ordinary text with marks that are not overrides still goes in.
        let mut b = ticket_body();
        b["title"] = json!("العربية \u{200F}abc\u{200E} 中文 🙂");
        assert_eq!(app.post("/api/v1/tickets", &hot, b).await.status, 201);
        app.finish().await;
    }
}

/// What XML 1.0 forbids in a document: its `Char` production's complement.
fn xml_forbidden(c: char) -> bool {
    !matches!(c as u32, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// Whether a real XML parser (python3's expat) reads `text`; None when python3 is
/// not there.
fn python_parses(text: &str) -> Option<Result<(), String>> {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E; E.fromstring(sys.stdin.buffer.read())",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to python3");
    let out = child.wait_with_output().expect("python3 ran");
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

#[tokio::test]
async fn open311_xml_is_well_formed_with_a_ticket_stored_before_the_fix() {
    // The parser must be one that refuses what XML forbids, or the test proves
    // nothing.
    match python_parses("<a>\u{FFFF}</a>") {
        Some(Err(_)) => {}
        Some(Ok(())) => panic!("python3's parser took U+FFFF"),
        None => eprintln!("python3 not found: the strict hand check alone"),
    }
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        // Through the application directly, as the import does and as tickets
        // accepted before the API refused such characters were stored.
        let actor = Actor {
            token_id: "test".into(),
            user: "old-client".into(),
            role: Role::HotlineAgent,
            unit: "etdz".into(),
        };
        let input = match yiwang::app::commands::parse_command(
            "create",
            ticket_body().to_string().as_bytes(),
        )
        .expect("a valid body")
        {
            yiwang::app::commands::ParsedCommand::Create(mut t) => {
                t.title = "旧\u{FFFF}工单".into();
                t.description = "U+FFFE \u{FFFE}, U+FFFF \u{FFFF}, a bell \u{7}, NUL-free".into();
                t.location.address = Some("皇冠\u{FFFF}街道".into());
                t
            }
            _ => unreachable!("a create body"),
        };
        let meta = yiwang::app::commands::CommandMeta {
            idempotency_key: Uuid::new_v4().to_string(),
            request_hash: "before-the-fix".into(),
            if_match: None,
            request_id: "before-the-fix".into(),
        };
        let reply = app.app.create(&actor, input, meta).await.expect("stored");
        let id = serde_json::from_str::<Value>(&reply.body).expect("json")["id"]
            .as_str()
            .expect("id")
            .to_string();
        // Another, ordinary ticket on the same page.
        app.new_ticket().await;
        for path in [
            format!("/open311/v2/requests.xml?api_key={disp}"),
            format!("/open311/v2/requests/{id}.xml?api_key={disp}"),
            format!("/open311/v2/requests.xml?api_key={disp}&service_request_id={id}"),
        ] {
            let r = app
                .client
                .get(format!("{}{path}", app.base))
                .send()
                .await
                .expect("get");
            assert_eq!(r.status().as_u16(), 200, "{engine:?} {path}");
            let text = r.text().await.expect("text");
            assert!(
                text.contains(&format!("<service_request_id>{id}</service_request_id>")),
                "{engine:?} {path}: the ticket is listed: {text}"
            );
            let bad: Vec<String> = text
                .chars()
                .filter(|c| xml_forbidden(*c))
                .map(|c| format!("U+{:04X}", c as u32))
                .collect();
            assert!(bad.is_empty(), "{engine:?} {path}: forbidden {bad:?}");
            assert!(
                text.contains("U+FFFF \u{FFFD}") && text.contains("U+FFFE \u{FFFD}"),
                "{engine:?} {path}: each replaced by U+FFFD: {text}"
            );
            if let Some(parsed) = python_parses(&text) {
                parsed.unwrap_or_else(|e| panic!("{engine:?} {path}: not well-formed: {e}"));
            }
        }
        app.finish().await;
    }
}

// ---------------------------------------------------------------------------------
// Commands are JSON.

/// A raw POST: (status, content type, body).
async fn raw_post(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> (u16, String, Value) {
    let mut rq = app
        .client
        .post(format!("{}{path}", app.base))
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .body(body.to_string());
    if let Some(t) = token {
        rq = rq.bearer_auth(t);
    }
    if let Some(ct) = content_type {
        rq = rq.header("content-type", ct);
    }
    let r = rq.send().await.expect("post");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = r.text().await.expect("text");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if let Err(why) = conforms("post", path, status, &ct, &body) {
        panic!("{why}");
    }
    (status, ct, body)
}

#[tokio::test]
async fn commands_without_a_json_content_type_are_415() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let id = app.new_ticket().await["id"]
            .as_str()
            .expect("id")
            .to_string();
        let create = (
            "/api/v1/tickets".to_string(),
            &hot,
            ticket_body().to_string(),
        );
        let comment = (
            format!("/api/v1/tickets/{id}/comment"),
            &disp,
            json!({"text": "备注"}).to_string(),
        );
        let before = footprint(&app).await;
        for (path, token, body) in [&create, &comment] {
            for ct in [
                Some("text/plain"),
                Some("text/plain; charset=utf-8"),
                Some("application/x-www-form-urlencoded"),
                Some("multipart/form-data; boundary=x"),
                Some("application/jsonx"),
                Some("application/json-patch+json"),
                None,
            ] {
                let w = format!("{engine:?} {path} {ct:?}");
                let (s, rct, b) = raw_post(&app, path, Some(token), ct, body).await;
                assert_eq!(s, 415, "{w}: {b}");
                assert!(rct.starts_with("application/problem+json"), "{w}: {rct}");
                let detail = b["detail"].as_str().unwrap_or("");
                assert!(
                    detail.contains("Content-Type: application/json"),
                    "{w}: says what to send: {detail}"
                );
            }
            // Without a token, the 401 comes first.
            let (s, _, _) = raw_post(&app, path, None, Some("text/plain"), body).await;
            assert_eq!(s, 401, "{engine:?} {path}");
        }
        assert_eq!(
            footprint(&app).await,
            before,
            "{engine:?}: nothing appended"
        );
        // application/json with parameters, in any case, is JSON.
        for ct in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
        ] {
            for (path, token, body) in [&create, &comment] {
                let (s, _, b) = raw_post(&app, path, Some(token), Some(ct), body).await;
                assert!(s == 200 || s == 201, "{engine:?} {path} {ct}: {s} {b}");
            }
        }
        // Open311's form stays a form.
        let form = serde_urlencoded::to_string([
            ("api_key", hot.as_str()),
            ("service_code", "city.exposed_garbage"),
            ("address_string", "皇冠街道"),
            ("description", "垃圾堆积"),
        ])
        .expect("form");
        let (s, _, b) = raw_post(
            &app,
            "/open311/v2/requests.json",
            None,
            Some("application/x-www-form-urlencoded"),
            &form,
        )
        .await;
        assert_eq!(s, 201, "{engine:?}: {b}");
        app.finish().await;
    }
}

// ---------------------------------------------------------------------------------
// Finding 11: serving.

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn the_api_docs_may_not_be_framed_or_sniffed() {
    let app = TestApp::spawn(crate::support::Engine::Sqlite).await;
    for path in [
        "/api/docs",
        "/api/docs/init.js",
        "/api/docs/swagger-ui-bundle.js",
        "/api/docs/swagger-ui.css",
    ] {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let csp = header(&r, "content-security-policy");
        for part in [
            "default-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {part} in {csp:?}");
        }
        assert!(
            !csp.contains("script-src"),
            "{path}: scripts only from this origin (default-src): {csp:?}"
        );
        assert_eq!(header(&r, "x-frame-options"), "DENY", "{path}");
        assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{path}");
    }
    app.finish().await;
}

/// A JPEG whose structure a naive search would misread: an EXIF APP1 segment with
/// a thumbnail (its own SOI and EOI) inside, then a scan whose entropy-coded data
/// holds a stuffed `FF 00` and a restart marker, then the real EOI.
fn jpeg_with_thumbnail() -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8];
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&[0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x04, b't', b'n', 0xFF, 0xD9]);
    b.extend_from_slice(&[0xFF, 0xE1]);
    b.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    b.extend_from_slice(&app1);
    // A comment that says EOI in its bytes.
    b.extend_from_slice(&[0xFF, 0xFE, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xD9]);
    // SOS with a 6-byte header, then entropy-coded data.
    b.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 0x3F, 0]);
    b.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xFF, 0x00]);
    // Different content per call (no 0xFF among it).
    b.extend(Uuid::new_v4().as_bytes().iter().map(|x| x & 0x7F));
    b.extend_from_slice(&[0xFF, 0xD9]);
    b
}

fn png_image() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend_from_slice(
        b"\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89",
    );
    // A tEXt chunk whose data spells IEND (and differs per call), then the real IEND.
    b.extend_from_slice(b"\x00\x00\x00\x10tEXtIEND\xaeB`\x82");
    b.extend_from_slice(&Uuid::new_v4().simple().to_string().as_bytes()[..8]);
    b.extend_from_slice(b"\x00\x00\x00\x00");
    b.extend_from_slice(b"\x00\x00\x00\x00IEND\xaeB`\x82");
    b
}

fn webp_image() -> Vec<u8> {
    let mut payload = b"WEBPVP8L".to_vec();
    payload.extend_from_slice(&8u32.to_le_bytes());
    payload.extend_from_slice(&Uuid::new_v4().as_bytes()[..8]);
    let mut b = b"RIFF".to_vec();
    b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(&payload);
    b
}

const TRAILER: &[u8] = b"<script>alert(document.domain)</script>\xFF\xD9\x00\x00\x00\x00IEND";

#[tokio::test]
async fn attachments_are_served_sandboxed_and_stored_without_trailing_bytes() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let gw = app.token(Role::GridWorker, "hg-01-g01").await;
        for (image, content_type, ext) in [
            (jpeg_with_thumbnail(), "image/jpeg", "jpg"),
            (png_image(), "image/png", "png"),
            (webp_image(), "image/webp", "webp"),
        ] {
            let w = format!("{engine:?} {content_type}");
            let mut sent = image.clone();
            sent.extend_from_slice(TRAILER);
            let (s, a) = upload_part(&app, &gw, "file", "photo.jpg", &sent).await;
            assert_eq!(s, 201, "{w}: {a}");
            assert_eq!(a["content_type"], content_type, "{w}");
            assert_eq!(a["size"], image.len(), "{w}: the trailer is gone");
            let hash = a["hash"].as_str().expect("hash").to_string();
            assert_eq!(
                hash,
                hex::encode(Sha256::digest(&image)),
                "{w}: the hash is of the image alone"
            );
            let on_disk = app.app.attachments.dir.join(&hash[..2]).join(&hash);
            assert_eq!(std::fs::read(&on_disk).expect("file"), image, "{w}");

            let r = app
                .client
                .get(format!("{}/api/v1/attachments/{hash}", app.base))
                .bearer_auth(&gw)
                .send()
                .await
                .expect("get");
            assert_eq!(r.status().as_u16(), 200, "{w}");
            assert_eq!(header(&r, "content-type"), content_type, "{w}");
            assert_eq!(
                header(&r, "content-disposition"),
                format!("inline; filename=\"{hash}.{ext}\""),
                "{w}"
            );
            assert_eq!(
                header(&r, "content-security-policy"),
                "default-src 'none'; sandbox",
                "{w}"
            );
            assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{w}");
            let served = r.bytes().await.expect("bytes");
            assert_eq!(served.as_ref(), image.as_slice(), "{w}");
            assert!(
                !served.windows(7).any(|x| x == b"<script"),
                "{w}: no script served"
            );
        }
        // The ticket's route serves it the same way.
        let (_, a) = upload_part(&app, &gw, "file", "p.jpg", &jpeg_with_thumbnail()).await;
        let hash = a["hash"].as_str().expect("hash").to_string();
        let mut body = ticket_body();
        body["source"] = json!("grid");
        body["photos"] = json!([hash]);
        let t = app.post("/api/v1/tickets", &gw, body).await;
        assert_eq!(t.status, 201, "{}", t.body);
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let r = app
            .client
            .get(format!(
                "{}/api/v1/tickets/{}/attachments/{hash}",
                app.base,
                t.body["id"].as_str().expect("id")
            ))
            .bearer_auth(&disp)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            header(&r, "content-security-policy"),
            "default-src 'none'; sandbox"
        );
        assert!(header(&r, "content-disposition").starts_with("inline; filename="));

        // An image whose end is not there is refused, and leaves nothing.
        let rows = app.count_rows("attachments").await;
        let cut_jpeg = &jpeg_with_thumbnail()[..30];
        let mut cut_png = png_image();
        cut_png.truncate(cut_png.len() - 12);
        cut_png.extend_from_slice(b"<html><script>alert(1)</script></html>");
        let mut lying_webp = webp_image();
        lying_webp[4] = 0xF0;
        for (what, bytes) in [
            ("a JPEG cut short", cut_jpeg.to_vec()),
            ("a PNG without IEND", cut_png),
            ("a WebP longer than its file", lying_webp),
        ] {
            let (s, e) = upload_part(&app, &gw, "file", "p.jpg", &bytes).await;
            assert_eq!(s, 415, "{engine:?} {what}: {e}");
        }
        assert_eq!(app.count_rows("attachments").await, rows, "{engine:?}");
        app.finish().await;
    }
}

#[tokio::test]
async fn answers_with_an_unmasked_contact_are_not_stored_by_caches() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let no_store = |r: &Resp| r.header("cache-control") == Some("no-store");

        // The creation answer, shown in full to the hotline agent.
        let r = post_with(&app, "/api/v1/tickets", &hot, &ticket_body(), &[]).await;
        assert_eq!(r.status, 201);
        assert_eq!(r.body["reporter"]["masked"], false, "{}", r.body);
        assert!(no_store(&r), "{engine:?}: create: {:?}", r.headers);
        let id = r.body["id"].as_str().expect("id").to_string();

        // Its replay.
        let k = Uuid::new_v4().to_string();
        let first = app
            .send(
                reqwest::Method::POST,
                "/api/v1/tickets",
                Some(&hot),
                Some(&ticket_body()),
                &[("Idempotency-Key", k.clone())],
            )
            .await;
        let replay = app
            .send(
                reqwest::Method::POST,
                "/api/v1/tickets",
                Some(&hot),
                Some(&ticket_body()),
                &[("Idempotency-Key", k)],
            )
            .await;
        assert_eq!(replay.header("idempotent-replayed"), Some("true"));
        assert_eq!(replay.body["reporter"]["masked"], false);
        assert!(no_store(&first) && no_store(&replay), "{engine:?}: replay");

        // A single ticket read by the hotline agent: full, no-store.
        let r = app.get(&format!("/api/v1/tickets/{id}"), &hot).await;
        assert_eq!(r.body["reporter"]["masked"], false);
        assert!(no_store(&r), "{engine:?}: get");

        // Masked or absent contacts: caches may do as they please.
        let r = app.get(&format!("/api/v1/tickets/{id}"), &disp).await;
        assert_eq!(r.body["reporter"]["masked"], true);
        assert!(!no_store(&r), "{engine:?}: masked");
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/comment"),
                &disp,
                json!({"text": "备注"}),
            )
            .await;
        assert_eq!(r.status, 200);
        assert!(r.body["reporter"].is_null());
        assert!(!no_store(&r), "{engine:?}: an action's answer");
        let r = app.get("/api/v1/tickets", &hot).await;
        assert_eq!(r.status, 200);
        assert!(!no_store(&r), "{engine:?}: a list has no contacts");
        app.finish().await;
    }
}

/// Files below the attachment directory, the temporary ones included.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for d in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = d.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The (name, bytes) parts of a multipart body.
type Parts<'a> = Vec<(&'a str, &'a [u8])>;

/// A multipart body of the given (name, bytes) parts; `close`: with the final
/// boundary.
fn multipart(parts: &Parts, close: bool) -> (String, Vec<u8>) {
    let boundary = format!("yiwang-{}", Uuid::new_v4().simple());
    let mut body = vec![];
    for (i, (name, bytes)) in parts.iter().enumerate() {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"p{i}.jpg\"\r\n\
                 Content-Type: image/jpeg\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    if close {
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    }
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn a_refused_upload_of_two_files_leaves_no_file_and_no_row() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let gw = app.token(Role::GridWorker, "hg-01-g01").await;
        let first = jpeg_with_thumbnail();
        let png = png_image();
        let big = vec![0x41u8; app.app.attachments.max_bytes as usize + 1];
        let cases: [(&str, Parts, bool); 4] = [
            (
                "a second image",
                vec![("file", &first), ("file", &png)],
                true,
            ),
            (
                "a second part that is not an image",
                vec![
                    ("file", &first),
                    ("file", b"not an image at all, just text"),
                ],
                true,
            ),
            (
                "a second part over the limit",
                vec![("file", &first), ("file", &big)],
                true,
            ),
            (
                "a form cut short after the file",
                vec![("file", &first)],
                false,
            ),
        ];
        // The first file's name, were it stored. (On PostgreSQL the tests share one
        // attachment directory, so only SQLite's can be checked whole.)
        let dir = app.app.attachments.dir.clone();
        let first_path = {
            let h = hex::encode(Sha256::digest(&first));
            dir.join(&h[..2]).join(&h)
        };
        let private = engine == crate::support::Engine::Sqlite;
        for (what, parts, close) in cases {
            let (ct, body) = multipart(&parts, close);
            let r = app
                .client
                .post(format!("{}/api/v1/attachments", app.base))
                .bearer_auth(&gw)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .expect("post");
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            assert!(
                (400..500).contains(&status),
                "{engine:?} {what}: {status} {text}"
            );
            assert!(
                !first_path.exists(),
                "{engine:?} {what}: the first file is not kept"
            );
            if private {
                assert_eq!(
                    files_under(&dir),
                    Vec::<std::path::PathBuf>::new(),
                    "{engine:?} {what}: no file left, temporary ones included"
                );
            }
            assert_eq!(
                app.count_rows("attachments").await,
                0,
                "{engine:?} {what}: no row"
            );
        }
        // The same first file alone is stored.
        let (s, a) = upload_part(&app, &gw, "file", "p.jpg", &first).await;
        assert_eq!(s, 201, "{a}");
        assert!(first_path.exists(), "{engine:?}");
        if private {
            assert_eq!(files_under(&dir), vec![first_path]);
        }
        app.finish().await;
    }
}
