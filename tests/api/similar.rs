//! `GET /api/v1/tickets/similar` (issue 22, point 4): before the hotline creates a
//! ticket, the open tickets of the same category near the point or in the same grid,
//! created in the last days, nearest first, as the caller may see them.

use chrono::{Duration, TimeZone, Utc};
use serde_json::{Value, json};
use yiwang::auth::Role;
use yiwang::clock::Clock;

use crate::support::{TestApp, engines, ticket_body};

/// A hotline ticket of `category` at (`lat`, `lon`) in `grid`; returns its JSON.
async fn ticket_at(app: &TestApp, category: &str, lat: f64, lon: f64, grid: &str) -> Value {
    let hot = app.token(Role::HotlineAgent, "etdz").await;
    let mut b = ticket_body();
    b["category"] = json!(category);
    b["location"] = json!({"address": "皇冠街道某小区", "lat": lat, "lon": lon, "grid": grid});
    let r = app.post("/api/v1/tickets", &hot, b).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

fn numbers(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["ticket"]["number"].as_str().expect("number").to_string())
        .collect()
}

fn number(t: &Value) -> String {
    t["number"].as_str().expect("number").to_string()
}

const GARBAGE: &str = "city.exposed_garbage";

#[tokio::test]
async fn the_same_category_nearby_or_in_the_grid_is_found_nearest_first() {
    for engine in engines().await {
        let start = Utc
            .with_ymd_and_hms(2026, 11, 2, 2, 0, 0)
            .single()
            .expect("time");
        let clock = Clock::manual(start);
        let app = TestApp::spawn_with_clock(engine, clock.clone()).await;
        // Nine days ago: outside the default week.
        let old = ticket_at(&app, GARBAGE, 37.5, 122.1, "hg-01-g01").await;
        clock.set(start + Duration::days(9));
        // ~111 m north and ~44 m east of (37.5, 122.1), both in hg-01-g01.
        let near = ticket_at(&app, GARBAGE, 37.501, 122.1, "hg-01-g01").await;
        let nearer = ticket_at(&app, GARBAGE, 37.5, 122.1005, "hg-01-g01").await;
        // The same place, another category.
        let other = ticket_at(&app, "city.street_vendor", 37.5, 122.1, "hg-01-g01").await;
        // ~2.8 km away, another grid; and ~2.2 km away in the asked grid.
        let far = ticket_at(&app, GARBAGE, 37.525, 122.1, "hg-02-g01").await;
        let far_same_grid = ticket_at(&app, GARBAGE, 37.48, 122.1, "hg-01-g01").await;
        // Nearby but closed (as invalid, from accepted).
        let closed = ticket_at(&app, GARBAGE, 37.5002, 122.1, "hg-01-g01").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let id = closed["id"].as_str().expect("id");
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/close"),
                &disp,
                json!({"code": "invalid"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);

        let hot = app.token(Role::HotlineAgent, "etdz").await;
        // By the point alone: the two nearby, nearest first, with their distance.
        let r = app
            .get(
                &format!("/api/v1/tickets/similar?category={GARBAGE}&lat=37.5&lon=122.1"),
                &hot,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(numbers(&r.body), vec![number(&nearer), number(&near)]);
        let items = r.body["items"].as_array().expect("items");
        assert_eq!(items[0]["distance_m"], 44);
        assert_eq!(items[1]["distance_m"], 111);
        assert_eq!(items[0]["same_grid"], false);
        assert!(items[0]["ticket"]["reporter"].is_null());

        // With the grid too: the far one in the same grid comes after, with its distance.
        let r = app
            .get(
                &format!(
                    "/api/v1/tickets/similar?category={GARBAGE}&lat=37.5&lon=122.1&grid=hg-01-g01"
                ),
                &hot,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            numbers(&r.body),
            vec![number(&nearer), number(&near), number(&far_same_grid)]
        );
        assert_eq!(r.body["items"][2]["same_grid"], true);
        assert_eq!(r.body["items"][2]["distance_m"], 2224);

        // By the grid alone: no distance, newest first.
        let r = app
            .get(
                &format!("/api/v1/tickets/similar?category={GARBAGE}&grid=hg-01-g01"),
                &hot,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            numbers(&r.body),
            vec![number(&far_same_grid), number(&nearer), number(&near)]
        );
        assert!(r.body["items"][0]["distance_m"].is_null());

        // A wider radius reaches the far one in the other grid; a longer window the old one.
        let r = app
            .get(
                &format!(
                    "/api/v1/tickets/similar?category={GARBAGE}&lat=37.5&lon=122.1&radius_m=3000&days=10"
                ),
                &hot,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            numbers(&r.body),
            vec![
                number(&old),
                number(&nearer),
                number(&near),
                number(&far_same_grid),
                number(&far)
            ]
        );
        // The other category, asked for, is found alone.
        let r = app
            .get(
                "/api/v1/tickets/similar?category=city.street_vendor&lat=37.5&lon=122.1",
                &hot,
            )
            .await;
        assert_eq!(numbers(&r.body), vec![number(&other)]);
        app.finish().await;
    }
}

#[tokio::test]
async fn only_tickets_the_caller_may_see_are_listed() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let t = ticket_at(&app, GARBAGE, 37.5, 122.1, "hg-01-g01").await;
        let path = format!("/api/v1/tickets/similar?category={GARBAGE}&lat=37.5&lon=122.1");
        // The district's dispatcher and the grid's own worker see it.
        for (role, unit) in [(Role::Dispatcher, "etdz"), (Role::GridWorker, "hg-01-g01")] {
            let tok = app.token(role, unit).await;
            let r = app.get(&path, &tok).await;
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(numbers(&r.body), vec![number(&t)], "{role:?} {unit}");
        }
        // The worker of the next grid and another township's dispatcher do not.
        for (role, unit) in [(Role::GridWorker, "hg-01-g02"), (Role::Dispatcher, "fl")] {
            let tok = app.token(role, unit).await;
            let r = app.get(&path, &tok).await;
            assert_eq!(r.status, 200, "{}", r.body);
            assert!(numbers(&r.body).is_empty(), "{role:?} {unit}: {}", r.body);
        }
        app.finish().await;
    }
}

#[tokio::test]
async fn a_bad_parameter_is_named() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        for (query, field) in [
            ("lat=37.5&lon=122.1", "category"),
            ("category=no.such&lat=37.5&lon=122.1", "category"),
            ("category=city.exposed_garbage", "lat"),
            ("category=city.exposed_garbage&lat=37.5", "lon"),
            ("category=city.exposed_garbage&lon=122.1", "lat"),
            ("category=city.exposed_garbage&lat=north&lon=122.1", "lat"),
            ("category=city.exposed_garbage&lat=95&lon=122.1", "lat"),
            ("category=city.exposed_garbage&lat=37.5&lon=190", "lon"),
            ("category=city.exposed_garbage&grid=nowhere", "grid"),
            (
                "category=city.exposed_garbage&grid=hg-01-g01&days=0",
                "days",
            ),
            (
                "category=city.exposed_garbage&grid=hg-01-g01&days=365",
                "days",
            ),
            (
                "category=city.exposed_garbage&grid=hg-01-g01&days=1.5",
                "days",
            ),
            (
                "category=city.exposed_garbage&lat=37.5&lon=122.1&radius_m=abc",
                "radius_m",
            ),
            (
                "category=city.exposed_garbage&lat=37.5&lon=122.1&radius_m=0",
                "radius_m",
            ),
            (
                "category=city.exposed_garbage&lat=37.5&lon=122.1&radius_m=NaN",
                "radius_m",
            ),
            (
                "category=city.exposed_garbage&lat=37.5&lon=122.1&radius_m=99999",
                "radius_m",
            ),
        ] {
            let r = app
                .get(&format!("/api/v1/tickets/similar?{query}"), &hot)
                .await;
            assert_eq!(r.status, 422, "{query}: {}", r.body);
            assert_eq!(r.body["field"], field, "{query}: {}", r.body);
            assert!(
                r.header("content-type")
                    .is_some_and(|c| c.starts_with("application/problem+json")),
                "{query}"
            );
        }
        let r = app
            .send(
                reqwest::Method::GET,
                "/api/v1/tickets/similar?category=city.exposed_garbage&grid=hg-01-g01",
                None,
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, 401);
        app.finish().await;
    }
}

#[tokio::test]
async fn the_map_gives_the_boundaries_the_organisation_file_has_and_no_tiles_by_default() {
    let app = TestApp::spawn(crate::support::Engine::Sqlite).await;
    let gw = app.token(Role::GridWorker, "hg-01-g01").await;
    let r = app.get("/api/v1/map", &gw).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["tiles"].is_null());
    let b = r.body["boundaries"].as_array().expect("boundaries");
    let units: Vec<&str> = b.iter().filter_map(|x| x["unit"].as_str()).collect();
    assert!(
        units.contains(&"hg-01") && units.contains(&"hg-01-g01"),
        "{units:?}"
    );
    let g = b
        .iter()
        .find(|x| x["unit"] == "hg-01-g01")
        .expect("hg-01-g01");
    assert_eq!(g["kind"], "grid");
    assert_eq!(g["geometry"]["type"], "Polygon");
    assert_eq!(g["name"], "皇冠第一社区第1网格");
    // The demo's test point (37.5, 122.1) lies in the grid it names.
    let ring = g["geometry"]["coordinates"][0].as_array().expect("ring");
    let lons: Vec<f64> = ring.iter().filter_map(|p| p[0].as_f64()).collect();
    let lats: Vec<f64> = ring.iter().filter_map(|p| p[1].as_f64()).collect();
    let within = |v: f64, xs: &[f64]| {
        xs.iter().cloned().fold(f64::MAX, f64::min) <= v
            && v <= xs.iter().cloned().fold(f64::MIN, f64::max)
    };
    assert!(within(122.1, &lons) && within(37.5, &lats));
    app.finish().await;
}

#[tokio::test]
async fn a_tile_server_is_named_to_the_pages_and_allowed_by_their_policy() {
    let app = TestApp::spawn(crate::support::Engine::Sqlite).await;
    let hot = app.token(Role::HotlineAgent, "etdz").await;
    let header = |r: &reqwest::Response, n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    // Without a tile server: the intake page and Leaflet under the strict policy.
    for (path, ctype) in [
        ("/intake", "text/html"),
        ("/web/js/intake.js", "text/javascript"),
        ("/web/js/map.js", "text/javascript"),
        ("/web/js/ticket-map.js", "text/javascript"),
        ("/web/vendor/leaflet/leaflet.js", "text/javascript"),
        ("/web/vendor/leaflet/leaflet.css", "text/css"),
        ("/web/vendor/leaflet/images/layers.png", "image/png"),
    ] {
        let r = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 200, "{path}");
        assert!(header(&r, "content-type").starts_with(ctype), "{path}");
        assert_eq!(
            header(&r, "content-security-policy"),
            yiwang::web::CSP,
            "{path}"
        );
    }
    // With one: the map names it, and the pages may load its images (and Leaflet's
    // blank `data:` image); nothing else changes.
    let template = "https://{s}.tiles.example.gov.cn/wmts/{z}/{x}/{y}.png";
    let router = yiwang::http::app_with_edge(
        app.app.clone(),
        yiwang::http::limits::Settings::default(),
        yiwang::http::Edge {
            map: yiwang::http::map::Settings {
                tiles: Some(template.to_string()),
            },
            ..yiwang::http::Edge::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let r = app
        .client
        .get(format!("{base}/api/v1/map"))
        .bearer_auth(&hot)
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(body["tiles"], template);
    for path in ["/intake", "/desk", "/grid"] {
        let r = app
            .client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(
            header(&r, "content-security-policy"),
            yiwang::web::CSP.replace(
                "img-src 'self' blob:",
                "img-src 'self' blob: data: https://*.tiles.example.gov.cn"
            ),
            "{path}"
        );
    }
    app.finish().await;
}
