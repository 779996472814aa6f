//! Open311 GeoReport v2 at /open311/v2/: a client posts a request with a form body
//! exactly as `curl -d` sends it, reads it back by id and by filters, gets each error
//! in GeoReport's `[{"code", "description"}]` shape, and a retry is not doubled.

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
        assert_error(
            &get(&app, "/open311/v2/discovery.json").await,
            404,
            "discovery",
        );
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
