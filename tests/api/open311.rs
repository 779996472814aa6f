//! Open311 GeoReport v2 at /open311/v2/: a client posts a request with a form body
//! exactly as `curl -d` sends it, reads it back by id and by filters, gets each error
//! in GeoReport's `[{"code", "description"}]` shape, and a retry is not doubled.
//! Then what real clients send: georeport 0.3.1's reads without a key (its exact
//! requests, as `tests/clients/georeport_check.py` makes them with the client
//! itself), a multipart POST with its `media` photo, discovery, the jurisdiction,
//! CORS, and every Open311 operation of the OpenAPI document.

use serde_json::{Value, json};
use yiwang::auth::Role;

use crate::support::{TestApp, engines};

struct Answer {
    status: u16,
    content_type: String,
    replayed: bool,
    text: String,
    body: Value,
}

/// A raw form body as `curl -d a=1 -d b=2` sends it: joined with `&`, not
/// percent-encoded, `Content-Type: application/x-www-form-urlencoded`.
async fn post_form(app: &TestApp, path: &str, body: &str) -> Answer {
    let r = app
        .client
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    answer(r).await
}

async fn get(app: &TestApp, path: &str) -> Answer {
    let r = app
        .client
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .expect("request");
    answer(r).await
}

async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let replayed = r.headers().get("idempotent-replayed").is_some();
    let text = r.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        content_type,
        replayed,
        text,
        body,
    }
}

/// A GeoReport error: the status, and `[{"code": status, "description": …}]`.
#[track_caller]
fn assert_error(a: &Answer, status: u16, mentions: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert!(
        a.content_type.starts_with("application/json"),
        "{}",
        a.content_type
    );
    let e = &a.body[0];
    assert_eq!(e["code"], status, "{}", a.text);
    let d = e["description"].as_str().unwrap_or("");
    assert!(d.contains(mentions), "{d:?} should mention {mentions:?}");
    assert_eq!(a.body.as_array().map(Vec::len), Some(1));
}

/// The spec's example, with a yiwang token and a Chinese description sent raw.
fn spec_form(key: &str) -> String {
    format!(
        "api_key={key}&service_code=city.exposed_garbage&lat=37.5012&long=122.1005\
         &address_string=皇冠街道海滨北路12号&description=小区门口垃圾三天未清运\n请尽快处理\
         &first_name=先生&last_name=赵&phone=(138) 0000-0000&email=zhao@example.com\
         &media_url=http://example.com/photo.jpg"
    )
}

#[tokio::test]
async fn a_request_posted_as_the_spec_shows_is_read_back_with_its_status() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let hand = app.token(Role::Handler, "zhzf").await;

        // The catalogue, without a key.
        let s = get(&app, "/open311/v2/services.json").await;
        assert_eq!(s.status, 200, "{}", s.text);
        let services = s.body.as_array().expect("a list");
        assert_eq!(services.len(), app.app.org.get().categories().len());
        let garbage = services
            .iter()
            .find(|x| x["service_code"] == "city.exposed_garbage")
            .expect("the category is a service");
        assert_eq!(garbage["metadata"], false);
        assert_eq!(garbage["type"], "realtime");
        assert_eq!(garbage["group"], "城市管理");
        assert!(garbage["service_name"].is_string() && garbage["keywords"].is_string());
        let d = get(&app, "/open311/v2/services/city.exposed_garbage.json").await;
        assert_eq!(d.status, 200);
        assert_eq!(
            d.body,
            json!({"service_code": "city.exposed_garbage", "attributes": []})
        );
        let x = get(&app, "/open311/v2/services.xml").await;
        assert_eq!(x.status, 200);
        assert!(x.content_type.starts_with("text/xml"));
        assert!(
            x.text.contains("<services><service>")
                && x.text
                    .contains("<service_code>city.exposed_garbage</service_code>")
        );

        // POST requests.json, as curl -d sends it.
        let a = post_form(&app, "/open311/v2/requests.json", &spec_form(&hot)).await;
        assert_eq!(a.status, 201, "{}", a.text);
        assert!(a.content_type.starts_with("application/json"));
        let created = &a.body[0];
        let id = created["service_request_id"]
            .as_str()
            .expect("an id")
            .to_string();
        assert!(
            created["service_notice"]
                .as_str()
                .unwrap()
                .contains("工单编号")
        );
        assert!(created.as_object().unwrap().contains_key("account_id"));

        // The same ticket through the API: same command path, contact kept aside.
        let admin = app.token(Role::Admin, "etdz").await;
        let t = app.get(&format!("/api/v1/tickets/{id}"), &admin).await;
        assert_eq!(t.status, 200);
        assert_eq!(t.body["source"], "hotline");
        assert_eq!(t.body["category"], "city.exposed_garbage");
        assert_eq!(t.body["title"], "小区门口垃圾三天未清运");
        assert_eq!(t.body["location"]["lat"], 37.5012);
        assert_eq!(t.body["location"]["address"], "皇冠街道海滨北路12号");
        assert_eq!(t.body["reporter"]["name"], "赵先生");
        assert_eq!(t.body["reporter"]["phone"], "138 0000-0000");
        assert!(
            t.body["description"]
                .as_str()
                .unwrap()
                .ends_with("media_url: http://example.com/photo.jpg")
        );

        // Read back by id: open, no contact.
        let path = format!("/open311/v2/requests/{id}.json?api_key={disp}");
        let r = get(&app, &path).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let req = &r.body[0];
        assert_eq!(req["service_request_id"], id.as_str());
        assert_eq!(req["status"], "open");
        assert_eq!(req["service_code"], "city.exposed_garbage");
        assert_eq!(req["lat"], 37.5012);
        assert_eq!(req["long"], 122.1005);
        assert_eq!(req["address"], "皇冠街道海滨北路12号");
        assert!(
            req["expected_datetime"].is_null(),
            "no handle deadline before dispatch"
        );
        let centre = app.app.org.get().unit("etdz").unwrap().name.clone();
        assert_eq!(req["agency_responsible"], centre.as_str());
        assert!(req["status_notes"].as_str().unwrap().contains("accepted"));
        for field in [
            "service_name",
            "description",
            "requested_datetime",
            "updated_datetime",
        ] {
            assert!(req[field].is_string(), "{field}: {req}");
        }
        assert!(
            !r.text.contains("0000-0000") && !r.text.contains("赵先生"),
            "no contact: {}",
            r.text
        );

        // Dispatched: the unit answers for it, with the handle deadline.
        let tp = |a: &str| format!("/api/v1/tickets/{id}/{a}");
        assert_eq!(
            app.post(&tp("assign"), &disp, json!({"unit": "zhzf"}))
                .await
                .status,
            200
        );
        let r = get(&app, &path).await;
        let zhzf = app.app.org.get().unit("zhzf").unwrap().name.clone();
        assert_eq!(r.body[0]["agency_responsible"], zhzf.as_str());
        assert!(r.body[0]["expected_datetime"].is_string());
        assert_eq!(r.body[0]["status"], "open");

        // A second request, from a grid worker in their grid.
        let grid = app.token(Role::GridWorker, "hg-01-g01").await;
        let body = format!(
            "api_key={grid}&service_code=city.street_vendor&address_string=皇冠街道夜市&description=占道经营"
        );
        let body = if app.app.org.get().category("city.street_vendor").is_some() {
            body
        } else {
            body.replace("city.street_vendor", "city.exposed_garbage")
        };
        let g = post_form(&app, "/open311/v2/requests.json", &body).await;
        assert_eq!(g.status, 201, "{}", g.text);
        let gid = g.body[0]["service_request_id"]
            .as_str()
            .unwrap()
            .to_string();
        let t = app.get(&format!("/api/v1/tickets/{gid}"), &admin).await;
        assert_eq!(t.body["source"], "grid");
        assert_eq!(t.body["location"]["grid"], "hg-01-g01");

        // Verified is closed for GeoReport.
        for (who, action, b) in [
            (&hand, "sign", json!({"handler": "钱工"})),
            (&hand, "handle", json!({"result": "已清运"})),
            (&disp, "verify", json!({"passed": true, "note": "现场核实"})),
        ] {
            assert_eq!(app.post(&tp(action), who, b).await.status, 200, "{action}");
        }
        let r = get(&app, &path).await;
        assert_eq!(r.body[0]["status"], "closed");
        assert!(
            r.body[0]["status_notes"]
                .as_str()
                .unwrap()
                .contains("verified")
        );

        // By filters.
        let list = |q: String| {
            let app = &app;
            let disp = disp.clone();
            async move {
                let a = get(app, &format!("/open311/v2/requests.json?api_key={disp}{q}")).await;
                assert_eq!(a.status, 200, "{q}: {}", a.text);
                a.body
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["service_request_id"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            }
        };
        let all = list(String::new()).await;
        assert!(all.contains(&id) && all.contains(&gid), "{all:?}");
        assert_eq!(list("&status=closed".into()).await, vec![id.clone()]);
        assert_eq!(list("&status=open".into()).await, vec![gid.clone()]);
        assert_eq!(
            list(format!("&service_request_id={id},{gid}")).await.len(),
            2
        );
        assert_eq!(
            list(format!("&service_request_id={gid}&status=closed")).await,
            vec![gid.clone()],
            "named requests ignore the other filters"
        );
        let ours = list("&service_code=city.exposed_garbage".into()).await;
        assert!(ours.contains(&id));
        let now = chrono::Utc::now();
        let past = (now - chrono::Duration::days(30)).to_rfc3339();
        let soon = (now + chrono::Duration::hours(1)).to_rfc3339();
        let enc = |s: &str| s.replace('+', "%2B");
        assert_eq!(
            list(format!(
                "&start_date={}&end_date={}",
                enc(&past),
                enc(&soon)
            ))
            .await
            .len(),
            2
        );
        let old = (now - chrono::Duration::days(60)).to_rfc3339();
        assert!(
            list(format!("&start_date={}&end_date={}", enc(&old), enc(&past)))
                .await
                .is_empty()
        );
        assert!(list(format!("&start_date={}", enc(&soon))).await.is_empty());

        // A token sees its own scope only: another township's handler sees nothing.
        let far = app.token(Role::Handler, "sthj").await;
        let a = get(&app, &format!("/open311/v2/requests.json?api_key={far}")).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.body, json!([]));
        let a = get(
            &app,
            &format!("/open311/v2/requests/{id}.json?api_key={far}"),
        )
        .await;
        assert_error(&a, 404, &id);

        // XML.
        let x = get(
            &app,
            &format!("/open311/v2/requests/{id}.xml?api_key={disp}"),
        )
        .await;
        assert_eq!(x.status, 200);
        assert!(x.content_type.starts_with("text/xml"), "{}", x.content_type);
        assert!(
            x.text
                .starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>")
        );
        assert!(x.text.contains("<service_requests><request>"));
        assert!(
            x.text
                .contains(&format!("<service_request_id>{id}</service_request_id>"))
        );
        assert!(x.text.contains("<status>closed</status>"));
        let x = post_form(
            &app,
            "/open311/v2/requests.xml",
            &format!("api_key={hot}&service_code=nope&lat=1&long=2"),
        )
        .await;
        assert_eq!(x.status, 400);
        assert!(
            x.text
                .contains("<errors><error><code>400</code><description>"),
            "{}",
            x.text
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn each_error_is_a_georeport_error() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let before = app.count_rows("events").await;
        let post = |body: String| {
            let app = &app;
            async move { post_form(app, "/open311/v2/requests.json", &body).await }
        };
        let ok = "service_code=city.exposed_garbage&lat=37.5&long=122.1&description=垃圾";

        // 403: no key, an unknown key, a role that does not report.
        assert_error(&post(ok.to_string()).await, 403, "api_key");
        assert_error(&post(format!("api_key=yw_nope&{ok}")).await, 403, "api_key");
        assert_error(
            &post(format!("api_key={disp}&{ok}")).await,
            403,
            "dispatcher",
        );
        // 400: the service, the location, the values.
        assert_error(
            &post(format!("api_key={hot}&lat=37.5&long=122.1")).await,
            400,
            "service_code",
        );
        assert_error(
            &post(format!(
                "api_key={hot}&service_code=city.nope&lat=37.5&long=122.1"
            ))
            .await,
            400,
            "city.nope",
        );
        assert_error(
            &post(format!(
                "api_key={hot}&service_code=city.exposed_garbage&description=x"
            ))
            .await,
            400,
            "location",
        );
        assert_error(
            &post(format!(
                "api_key={hot}&service_code=city.exposed_garbage&lat=37.5"
            ))
            .await,
            400,
            "long",
        );
        assert_error(
            &post(format!(
                "api_key={hot}&service_code=city.exposed_garbage&lat=95&long=122.1"
            ))
            .await,
            400,
            "lat",
        );
        assert_error(
            &post(format!(
                "api_key={hot}&service_code=city.exposed_garbage&lat=north&long=122.1"
            ))
            .await,
            400,
            "lat",
        );
        let long = "长".repeat(10_001);
        assert_error(
            &post(format!("api_key={hot}&description={long}&service_code=city.exposed_garbage&lat=37.5&long=122.1")).await,
            400,
            "description",
        );
        // Not a form.
        let r = app
            .client
            .post(format!("{}/open311/v2/requests.json", app.base))
            .json(&json!({"api_key": hot, "service_code": "city.exposed_garbage"}))
            .send()
            .await
            .unwrap();
        assert_error(&answer(r).await, 400, "x-www-form-urlencoded");
        // 404: unknown ids, services and resources.
        assert_error(
            &get(
                &app,
                &format!(
                    "/open311/v2/requests/{}.json?api_key={disp}",
                    uuid::Uuid::new_v4()
                ),
            )
            .await,
            404,
            "no service request",
        );
        assert_error(
            &get(
                &app,
                &format!("/open311/v2/requests/42.json?api_key={disp}"),
            )
            .await,
            404,
            "42",
        );
        assert_error(
            &get(&app, "/open311/v2/services/city.nope.json").await,
            404,
            "city.nope",
        );
        assert_error(&get(&app, "/open311/v2/nothing.json").await, 404, "nothing");
        // A read-only resource refuses a POST with a 405 naming GET.
        let r = post_form(&app, "/open311/v2/services.json", "a=1").await;
        assert_error(&r, 405, "GET");
        // Reads need a key; bad filters are 400.
        assert_error(
            &get(&app, "/open311/v2/requests.json").await,
            403,
            "api_key",
        );
        assert_error(
            &get(
                &app,
                &format!("/open311/v2/requests/{}.json", uuid::Uuid::new_v4()),
            )
            .await,
            403,
            "api_key",
        );
        let q = |s: &str| format!("/open311/v2/requests.json?api_key={disp}&{s}");
        assert_error(&get(&app, &q("status=pending")).await, 400, "status");
        assert_error(
            &get(
                &app,
                &q(&format!(
                    "service_request_id={}&status=pending",
                    uuid::Uuid::new_v4()
                )),
            )
            .await,
            400,
            "status",
        );
        assert_error(
            &get(&app, &q("start_date=yesterday")).await,
            400,
            "start_date",
        );
        assert_error(
            &get(&app, &q("service_code=city.nope")).await,
            400,
            "service_code",
        );
        assert_error(
            &get(
                &app,
                &q("start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z"),
            )
            .await,
            400,
            "90 days",
        );
        assert_error(
            &get(
                &app,
                &q("start_date=2026-06-01T00:00:00Z&end_date=2026-01-01T00:00:00Z"),
            )
            .await,
            400,
            "after",
        );
        assert_eq!(
            app.count_rows("events").await,
            before,
            "no error appended anything"
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn a_retry_of_the_same_form_is_not_doubled() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let form = spec_form(&hot);
        let first = post_form(&app, "/open311/v2/requests.json", &form).await;
        assert_eq!(first.status, 201, "{}", first.text);
        assert!(!first.replayed);
        let events = app.count_rows("events").await;
        let again = post_form(&app, "/open311/v2/requests.json", &form).await;
        assert_eq!(again.status, 201, "{}", again.text);
        assert!(again.replayed, "the retry is answered from the first");
        assert_eq!(again.body, first.body);
        assert_eq!(app.count_rows("events").await, events, "nothing appended");
        assert_eq!(app.count_rows("ticket_view").await, 1);

        // Another form is another request; so is the same form from another user.
        let other = post_form(
            &app,
            "/open311/v2/requests.json",
            &form.replace("三天", "四天"),
        )
        .await;
        assert_eq!(other.status, 201);
        assert_ne!(
            other.body[0]["service_request_id"],
            first.body[0]["service_request_id"]
        );
        let hot2 = app.token(Role::HotlineAgent, "hg").await;
        let theirs = post_form(&app, "/open311/v2/requests.json", &spec_form(&hot2)).await;
        assert_eq!(theirs.status, 201, "{}", theirs.text);
        assert_ne!(
            theirs.body[0]["service_request_id"],
            first.body[0]["service_request_id"]
        );
        assert_eq!(app.count_rows("ticket_view").await, 3);
        app.finish().await;
    }
}

// ---------------------------------------------------------------------------------
// Real clients: the exact requests of georeport 0.3.1 (python-requests) and of a
// mobile app's multipart POST, against the service with the edge settings of `serve`.

use yiwang::http::open311::Settings as Open311;
use yiwang::http::{Edge, cors};

/// The same service (database, app) behind a router with these edge settings, as
/// `yiwang serve --open311-public-reads …` builds it; its base URL.
async fn serve_edge(app: &TestApp, edge: Edge) -> String {
    let router = yiwang::http::app_with_edge(
        app.app.clone(),
        yiwang::http::limits::Settings::default(),
        edge,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn public(jurisdiction: Option<&str>) -> Edge {
    Edge {
        open311: Open311 {
            public_reads: true,
            jurisdiction: jurisdiction.map(str::to_string),
        },
        ..Edge::default()
    }
}

/// A GET as georeport 0.3.1 sends it: `requests.get(url, params=…)`, whose headers
/// are python-requests' own (recorded from the client: no others).
async fn georeport_get(client: &reqwest::Client, url: &str) -> Answer {
    let r = client
        .get(url)
        .header("user-agent", "python-requests/2.34.2")
        .header("accept-encoding", "gzip, deflate")
        .header("accept", "*/*")
        .header("connection", "keep-alive")
        .send()
        .await
        .expect("request");
    answer_decoded(r).await
}

/// An answer, gunzipped when it came compressed (python-requests accepts gzip).
async fn answer_decoded(r: reqwest::Response) -> Answer {
    use std::io::Read;
    let status = r.status().as_u16();
    let h = r.headers().clone();
    let header = |n: &str| {
        h.get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let bytes = r.bytes().await.expect("body");
    let text = if header("content-encoding") == "gzip" {
        let mut s = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .expect("gzip");
        s
    } else {
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    };
    Answer {
        status,
        content_type: header("content-type"),
        replayed: h.get("idempotent-replayed").is_some(),
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// A multipart body as python-requests (urllib3's `encode_multipart_formdata`)
/// writes it: the fields, then the file part `media` with its name and type.
fn multipart(fields: &[(&str, &str)], media: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "3d6b6a416f9b5d2fa7fbd8a6ac54c6b3";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    for (name, ct, bytes) in media {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"{name}\"\r\nContent-Type: {ct}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_multipart(client: &reqwest::Client, url: &str, ct: &str, body: Vec<u8>) -> Answer {
    let r = client
        .post(url)
        .header("user-agent", "python-requests/2.34.2")
        .header("accept-encoding", "gzip, deflate")
        .header("accept", "*/*")
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("request");
    answer_decoded(r).await
}

/// Exactly the fields of GeoReport's service request (the spec's example).
const PUBLIC_FIELDS: [&str; 17] = [
    "address",
    "address_id",
    "agency_responsible",
    "description",
    "expected_datetime",
    "lat",
    "long",
    "media_url",
    "requested_datetime",
    "service_code",
    "service_name",
    "service_notice",
    "service_request_id",
    "status",
    "status_notes",
    "updated_datetime",
    "zipcode",
];

/// The text of each `<name>…</name>` of an XML answer.
fn xml_values(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split(&close).next().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn georeport_reads_a_curl_posted_request_without_a_key_when_public_reads_are_on() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let open = serve_edge(&app, public(Some("weihai-etdz"))).await;
        let closed = serve_edge(&app, Edge::default()).await;
        let c = reqwest::Client::new();

        // Posted as curl -d sends it (README's example), a phone in the description.
        let form = format!(
            "api_key={hot}&service_code=city.exposed_garbage&lat=37.5012&long=122.1005\
             &address_string=皇冠街道海滨北路12号&description=小区门口垃圾三天未清运，联系电话13800001111 邮箱zhao@example.com\
             &first_name=先生&last_name=赵&phone=13800001111&jurisdiction_id=weihai-etdz"
        );
        let r = c
            .post(format!("{open}/open311/v2/requests.json"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("user-agent", "curl/8.14.1")
            .header("accept", "*/*")
            .body(form)
            .send()
            .await
            .unwrap();
        let a = answer(r).await;
        assert_eq!(a.status, 201, "{}", a.text);
        let id = a.body[0]["service_request_id"]
            .as_str()
            .unwrap()
            .to_string();

        // georeport's get_service_request(id), JSON, jurisdiction set: no key.
        let by_id = format!("{open}/open311/v2/requests/{id}.json?jurisdiction_id=weihai-etdz");
        let r = georeport_get(&c, &by_id).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let req = &r.body[0];
        let mut fields: Vec<&str> = req
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        fields.sort();
        assert_eq!(fields, PUBLIC_FIELDS, "exactly the spec's fields");
        assert_eq!(req["service_request_id"], id.as_str());
        assert_eq!(req["status"], "open");
        assert_eq!(req["lat"], 37.5012);
        let d = req["description"].as_str().unwrap();
        assert!(
            d.contains("138****1111") && d.contains("z***@example.com"),
            "{d}"
        );
        assert!(
            !r.text.contains("13800001111") && !r.text.contains("赵"),
            "{}",
            r.text
        );
        assert!(req["media_url"].is_null());
        // The same without the jurisdiction, and in the list (its default window).
        let r = georeport_get(&c, &format!("{open}/open311/v2/requests/{id}.json")).await;
        assert_eq!(r.status, 200);
        let r = georeport_get(&c, &format!("{open}/open311/v2/requests.json?status=open")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            r.body
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["service_request_id"] == id.as_str())
        );
        assert!(!r.text.contains("13800001111"));

        // XML: get_service_request and get_service_requests(service_request_id=…).
        let r = georeport_get(
            &c,
            &format!("{open}/open311/v2/requests/{id}.xml?jurisdiction_id=weihai-etdz"),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.content_type.starts_with("text/xml"));
        assert_eq!(xml_values(&r.text, "service_request_id"), vec![id.clone()]);
        assert!(xml_values(&r.text, "description")[0].contains("138****1111"));
        assert!(!r.text.contains("13800001111"));
        let r = georeport_get(
            &c,
            &format!(
                "{open}/open311/v2/requests.xml?service_request_id={id}&jurisdiction_id=weihai-etdz"
            ),
        )
        .await;
        assert_eq!(
            xml_values(&r.text, "service_request_id"),
            vec![id.clone()],
            "{}",
            r.text
        );

        // With a key: the key's scope and the description as written.
        let r = georeport_get(
            &c,
            &format!("{open}/open311/v2/requests/{id}.json?api_key={hot}"),
        )
        .await;
        assert_eq!(r.status, 200);
        assert!(
            r.body[0]["description"]
                .as_str()
                .unwrap()
                .contains("13800001111")
        );
        let far = app.token(Role::Handler, "sthj").await;
        let r = georeport_get(
            &c,
            &format!("{open}/open311/v2/requests/{id}.json?api_key={far}"),
        )
        .await;
        assert_error(&r, 404, &id);

        // Another jurisdiction: a 400, JSON or XML, reads and posts.
        let r = georeport_get(
            &c,
            &format!("{open}/open311/v2/requests/{id}.json?jurisdiction_id=elsewhere"),
        )
        .await;
        assert_error(&r, 400, "jurisdiction_id");
        let r = georeport_get(
            &c,
            &format!("{open}/open311/v2/services.xml?jurisdiction_id=elsewhere"),
        )
        .await;
        assert_eq!(r.status, 400);
        assert!(r.text.contains("<code>400</code>"), "{}", r.text);
        let before = app.count_rows("events").await;
        let r = c
            .post(format!("{open}/open311/v2/requests.json"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("api_key={hot}&service_code=city.exposed_garbage&lat=37.5&long=122.1&jurisdiction_id=elsewhere"))
            .send()
            .await
            .unwrap();
        assert_error(&answer(r).await, 400, "weihai-etdz");
        assert_eq!(app.count_rows("events").await, before, "nothing appended");

        // The api_key in the query string of a POST, as some clients send it.
        let r = c
            .post(format!("{open}/open311/v2/requests.json?api_key={hot}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("service_code=city.exposed_garbage&lat=37.5&long=122.1&description=query key")
            .send()
            .await
            .unwrap();
        assert_eq!(answer(r).await.status, 201);

        // Public reads off (the default): the same requests get 403, JSON and XML.
        for url in [
            format!("{closed}/open311/v2/requests/{id}.json"),
            format!("{closed}/open311/v2/requests.json"),
        ] {
            assert_error(&georeport_get(&c, &url).await, 403, "api_key");
        }
        for url in [
            format!("{closed}/open311/v2/requests/{id}.xml"),
            format!("{closed}/open311/v2/requests.xml"),
        ] {
            let r = georeport_get(&c, &url).await;
            assert_eq!(r.status, 403, "{}", r.text);
            assert!(
                r.text.contains("<errors><error><code>403</code>"),
                "{}",
                r.text
            );
        }
        // Unconfigured jurisdiction: accepted and ignored.
        let r = georeport_get(
            &c,
            &format!("{closed}/open311/v2/services.json?jurisdiction_id=anything"),
        )
        .await;
        assert_eq!(r.status, 200);
        app.finish().await;
    }
}

#[tokio::test]
async fn a_multipart_post_with_a_photo_shows_its_media_url() {
    let photo: &[u8] = include_bytes!("../fixtures/photo.png");
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let open = serve_edge(&app, public(None)).await;
        let closed = serve_edge(&app, Edge::default()).await;
        let c = reqwest::Client::new();
        let url = format!("{open}/open311/v2/requests.json");
        let fields = [
            ("api_key", hot.as_str()),
            ("service_code", "city.exposed_garbage"),
            ("address_string", "皇冠街道夜市"),
            ("description", "占道经营，见照片"),
        ];
        let (ct, body) = multipart(&fields, &[("photo.png", "image/png", photo)]);
        let a = post_multipart(&c, &url, &ct, body.clone()).await;
        assert_eq!(a.status, 201, "{}", a.text);
        let id = a.body[0]["service_request_id"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(!a.replayed);

        // The photo is an attachment of the ticket, as the attachments API keeps one.
        let admin = app.token(Role::Admin, "etdz").await;
        let t = app.get(&format!("/api/v1/tickets/{id}"), &admin).await;
        let hash = t.body["photos"][0]["hash"]
            .as_str()
            .expect("a photo")
            .to_string();
        let p = app
            .client
            .get(format!(
                "{}/api/v1/tickets/{id}/attachments/{hash}",
                app.base
            ))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(p.status(), 200);
        assert_eq!(&p.bytes().await.unwrap()[..], photo);

        // Reads give its media_url, which serves it (public reads on: no key).
        let media = format!("{open}/open311/v2/requests/{id}/media");
        let r = georeport_get(&c, &format!("{open}/open311/v2/requests/{id}.json")).await;
        assert_eq!(r.body[0]["media_url"], media.as_str(), "{}", r.text);
        let r = georeport_get(&c, &format!("{open}/open311/v2/requests/{id}.xml")).await;
        assert_eq!(xml_values(&r.text, "media_url"), vec![media.clone()]);
        let m = c.get(&media).send().await.unwrap();
        assert_eq!(m.status(), 200);
        assert_eq!(m.headers()["content-type"], "image/png");
        assert_eq!(&m.bytes().await.unwrap()[..], photo);
        // Public reads off: the photo needs the key too.
        let m = georeport_get(&c, &format!("{closed}/open311/v2/requests/{id}/media")).await;
        assert_error(&m, 403, "api_key");
        let m = c
            .get(format!(
                "{closed}/open311/v2/requests/{id}/media?api_key={hot}"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(m.status(), 200);
        let m = georeport_get(
            &c,
            &format!("{open}/open311/v2/requests/{}/media", uuid::Uuid::new_v4()),
        )
        .await;
        assert_error(&m, 404, "media");

        // The same form with the same photo again (another boundary): one request.
        let events = app.count_rows("events").await;
        let again = post_multipart(&c, &url, &ct, body).await;
        assert_eq!(again.status, 201, "{}", again.text);
        assert!(again.replayed);
        assert_eq!(again.body, a.body);
        assert_eq!(app.count_rows("events").await, events);

        // Bad parts: clear errors, nothing written.
        let attachments = app.count_rows("attachments").await;
        let (ct2, two) = multipart(
            &fields,
            &[("a.png", "image/png", photo), ("b.png", "image/png", photo)],
        );
        assert_error(
            &post_multipart(&c, &url, &ct2, two).await,
            400,
            "one media part",
        );
        let (ct3, text) = multipart(
            &fields,
            &[(
                "notes.txt",
                "image/png",
                &b"not a photo at all, only words"[..],
            )],
        );
        assert_error(&post_multipart(&c, &url, &ct3, text).await, 415, "media");
        let big = vec![0u8; (yiwang::attachments::DEFAULT_MAX_BYTES + 1) as usize];
        let mut png = photo.to_vec();
        png.extend_from_slice(&big);
        let (ct4, large) = multipart(&fields, &[("big.png", "image/png", &png)]);
        assert_error(&post_multipart(&c, &url, &ct4, large).await, 413, "media");
        let (ct5, nokey) = multipart(&fields[1..], &[("photo.png", "image/png", photo)]);
        assert_error(&post_multipart(&c, &url, &ct5, nokey).await, 403, "api_key");
        let (ct6, nocode) = multipart(
            &[fields[0], fields[2]],
            &[("photo.png", "image/png", photo)],
        );
        assert_error(
            &post_multipart(&c, &url, &ct6, nocode).await,
            400,
            "service_code",
        );
        assert_error(
            &post_multipart(&c, &url, "multipart/form-data", b"--x\r\n".to_vec()).await,
            400,
            "multipart",
        );
        let r = c
            .post(&url)
            .header("content-type", "text/plain")
            .body("api_key=x")
            .send()
            .await
            .unwrap();
        assert_error(&answer(r).await, 400, "multipart/form-data");
        assert_eq!(app.count_rows("events").await, events, "nothing appended");
        assert_eq!(
            app.count_rows("attachments").await,
            attachments,
            "no attachment kept"
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn discovery_names_the_endpoint_in_json_and_xml() {
    let app = TestApp::spawn(crate::support::Engine::Sqlite).await;
    let base = serve_edge(&app, Edge::default()).await;
    let c = reqwest::Client::new();
    let d = georeport_get(&c, &format!("{base}/open311/discovery.json")).await;
    assert_eq!(d.status, 200, "{}", d.text);
    assert!(d.content_type.starts_with("application/json"));
    for k in ["changeset", "contact", "key_service"] {
        assert!(
            d.body[k].as_str().is_some_and(|s| !s.is_empty()),
            "{k}: {}",
            d.text
        );
    }
    let e = &d.body["endpoints"][0];
    assert_eq!(e["url"], format!("{base}/open311/v2"));
    assert_eq!(e["specification"], "http://wiki.open311.org/GeoReport_v2");
    assert_eq!(e["type"], "production");
    assert_eq!(e["formats"], json!(["application/json", "text/xml"]));
    assert_eq!(e["changeset"], d.body["changeset"]);
    // The endpoint it names answers.
    let s = georeport_get(&c, &format!("{}/services.json", e["url"].as_str().unwrap())).await;
    assert_eq!(s.status, 200);
    let x = georeport_get(&c, &format!("{base}/open311/discovery.xml")).await;
    assert_eq!(x.status, 200);
    assert!(x.content_type.starts_with("text/xml"));
    assert_eq!(
        xml_values(&x.text, "url"),
        vec![format!("{base}/open311/v2")]
    );
    assert_eq!(
        xml_values(&x.text, "format"),
        vec!["application/json", "text/xml"]
    );
    assert_eq!(xml_values(&x.text, "type"), vec!["production"]);
    // Behind a TLS proxy, the URL says https.
    let r = c
        .get(format!("{base}/open311/discovery.json"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(
        v["endpoints"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    app.finish().await;
}

/// The CORS headers of an answer.
fn cors_headers(r: &reqwest::Response) -> Vec<(String, String)> {
    r.headers()
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("access-control-"))
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect()
}

#[tokio::test]
async fn cors_lets_any_origin_call_open311_and_listed_origins_read_the_api() {
    let app = TestApp::spawn(crate::support::Engine::Sqlite).await;
    let admin = app.token(Role::Admin, "etdz").await;
    let plain = serve_edge(&app, Edge::default()).await;
    let listed = serve_edge(
        &app,
        Edge {
            cors: cors::Settings {
                origins: vec![cors::parse_origin("https://dash.example.gov").unwrap()],
            },
            ..Edge::default()
        },
    )
    .await;
    let c = reqwest::Client::new();
    let origin = "https://dash.example.gov";

    for base in [&plain, &listed] {
        // Open311: any origin, the answer and the preflight.
        let r = c
            .get(format!("{base}/open311/v2/services.json"))
            .header("origin", "https://elsewhere.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let r = c
            .request(
                reqwest::Method::OPTIONS,
                format!("{base}/open311/v2/requests.json"),
            )
            .header("origin", "https://elsewhere.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        let methods = r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            methods.contains("POST") && methods.contains("GET"),
            "{methods}"
        );
        assert!(
            r.headers()["access-control-allow-headers"]
                .to_str()
                .unwrap()
                .contains("content-type")
        );
        // A resource that is only read says so, preflight or not.
        let r = c
            .request(
                reqwest::Method::OPTIONS,
                format!("{base}/open311/v2/services.json"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["allow"], "GET,HEAD");
        // Pages: none.
        let r = c
            .get(format!("{base}/"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(cors_headers(&r), vec![]);
    }

    // /api/v1 by default: no CORS header at all, and no preflight answer.
    let r = c
        .get(format!("{plain}/api/v1/units"))
        .bearer_auth(&admin)
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(cors_headers(&r), vec![]);
    assert!(
        r.headers()
            .get("vary")
            .is_none_or(|v| !v.to_str().unwrap().contains("origin"))
    );
    let r = c
        .request(reqwest::Method::OPTIONS, format!("{plain}/api/v1/units"))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(cors_headers(&r), vec![]);

    // With the origin listed: reads from it, preflight included.
    let r = c
        .request(reqwest::Method::OPTIONS, format!("{listed}/api/v1/tickets"))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], origin);
    assert!(
        r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    assert!(
        r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("GET")
    );
    assert!(
        r.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    let r = c
        .get(format!("{listed}/api/v1/units"))
        .bearer_auth(&admin)
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], origin);
    assert!(
        r.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("etag")
    );
    // Another origin, or a command: no allowing header.
    let r = c
        .get(format!("{listed}/api/v1/units"))
        .bearer_auth(&admin)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = c
        .request(reqwest::Method::OPTIONS, format!("{listed}/api/v1/tickets"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = c
        .post(format!("{listed}/api/v1/tickets"))
        .bearer_auth(&admin)
        .header("origin", origin)
        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
        .json(&crate::support::ticket_body())
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    app.finish().await;
}

#[tokio::test]
async fn every_open311_operation_of_the_openapi_document_answers_as_documented() {
    let app = TestApp::spawn(crate::support::Engine::Sqlite).await;
    let hot = app.token(Role::HotlineAgent, "etdz").await;
    let base = serve_edge(&app, public(None)).await;
    let c = reqwest::Client::new();
    let created = post_form(
        &app,
        "/open311/v2/requests.json",
        &format!(
            "api_key={hot}&service_code=city.exposed_garbage&lat=37.5&long=122.1&description=x"
        ),
    )
    .await;
    let id = created.body[0]["service_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = yiwang::http::openapi::document();
    let mut seen = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/open311/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let concrete = path
                .replace("{service_code}", "city.exposed_garbage")
                .replace("{service_request_id}", &id);
            let r = match method.as_str() {
                "get" => c.get(format!("{base}{concrete}")).send().await.unwrap(),
                "post" => c
                    .post(format!("{base}{concrete}"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("api_key={hot}&service_code=city.exposed_garbage&lat=37.5&long=122.1&description={concrete}"))
                    .send()
                    .await
                    .unwrap(),
                other => panic!("{other} {path}"),
            };
            let status = r.status().as_u16().to_string();
            let documented = &op["responses"][&status];
            assert!(
                documented.is_object(),
                "{method} {path} answered {status}, not documented"
            );
            let ct = r.headers()["content-type"]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_string();
            let media = documented["content"].as_object().unwrap();
            assert!(
                media.contains_key(&ct)
                    || (ct.starts_with("image/") && media.contains_key("image/*")),
                "{method} {path}: {ct} not among {:?}",
                media.keys().collect::<Vec<_>>()
            );
            seen += 1;
        }
    }
    assert_eq!(
        seen, 13,
        "discovery, services, a service, requests, a request (each in two formats), two POSTs and the photo"
    );
    app.finish().await;
}
