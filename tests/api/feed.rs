//! The global feed and the live SSE stream.

use serde_json::json;
use yiwang::auth::Role;

use crate::helpers::{act, sse_events};
use crate::support::{TestApp, engines};

#[tokio::test]
async fn the_feed_pages_by_position() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let admin = app.token(Role::Admin, "etdz").await;
        for _ in 0..5 {
            app.new_ticket().await;
        }
        app.all_events().await; // settled (PostgreSQL: no older transaction open)
        let r = app.get("/api/v1/events?after=0&limit=3", &admin).await;
        let p1: Vec<i64> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["position"].as_i64().unwrap())
            .collect();
        assert_eq!(p1.len(), 3);
        let next = r.body["next_cursor"].as_i64().unwrap();
        assert_eq!(next, p1[2]);
        let r = app
            .get(&format!("/api/v1/events?after={next}&limit=100"), &admin)
            .await;
        let p2: Vec<i64> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["position"].as_i64().unwrap())
            .collect();
        assert_eq!(p2.len(), 2);
        let all: Vec<i64> = p1.iter().chain(&p2).copied().collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        for k in [
            "position",
            "stream_id",
            "version",
            "type",
            "occurred_at",
            "recorded_at",
            "data",
            "metadata",
        ] {
            assert!(r.body["items"][0].get(k).is_some(), "event JSON lacks {k}");
        }
        app.finish().await;
    }
}

/// The first `n` events of the stream, as (id, type).
async fn read_sse(resp: reqwest::Response, n: usize) -> Vec<(i64, String)> {
    sse_events(resp, n)
        .await
        .into_iter()
        .map(|e| (e.id.expect("an event id"), e.event))
        .collect()
}

#[tokio::test]
async fn the_live_stream_delivers_new_events_and_resumes_from_last_event_id() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let admin = app.token(Role::Admin, "etdz").await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let id = app.new_ticket().await["id"].as_str().unwrap().to_string();
        let resp = app
            .client
            .get(format!("{}/api/v1/events/stream", app.base))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let reader = tokio::spawn(read_sse(resp, 2));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        act(&app, &disp, &id, "assign", json!({"unit": "zhzf"})).await;
        let got = reader.await.unwrap();
        assert_eq!(got[0].1, "TicketAccepted");
        assert_eq!(got[1].1, "TicketAssigned", "a new event arrives live");

        // Resume after the first event: only the second comes.
        let resp = app
            .client
            .get(format!("{}/api/v1/events/stream", app.base))
            .bearer_auth(&admin)
            .header("Last-Event-ID", got[0].0.to_string())
            .send()
            .await
            .unwrap();
        let again = read_sse(resp, 1).await;
        assert_eq!(again[0], got[1]);
        app.finish().await;
    }
}

/// The first `n` events of the stream, as (type, stream id).
async fn read_sse_streams(resp: reqwest::Response, n: usize) -> Vec<(String, String)> {
    sse_events(resp, n)
        .await
        .into_iter()
        .map(|e| {
            let data = e.data.expect("event data");
            let stream = data["stream_id"].as_str().unwrap_or_default().to_string();
            (e.event, stream)
        })
        .collect()
}

/// `?ticket=` (issue 22, point 9: the ticket page follows its own ticket): only that
/// ticket's events come, old and new; a bad id is a 422 naming the parameter, a
/// ticket the caller may not see a 404.
#[tokio::test]
async fn the_live_stream_follows_one_ticket() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let a = app.new_ticket().await["id"].as_str().unwrap().to_string();
        let b = app.new_ticket().await["id"].as_str().unwrap().to_string();
        let resp = app
            .client
            .get(format!(
                "{}/api/v1/events/stream?ticket={a}&access_token={disp}",
                app.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let reader = tokio::spawn(read_sse_streams(resp, 2));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        for id in [&b, &a] {
            act(&app, &disp, id, "assign", json!({"unit": "zhzf"})).await;
        }
        let got = reader.await.unwrap();
        assert_eq!(
            got,
            vec![
                ("TicketAccepted".to_string(), a.clone()),
                ("TicketAssigned".to_string(), a.clone())
            ],
            "only the followed ticket's events, the other's assignment left out"
        );

        let r = app
            .get("/api/v1/events/stream?ticket=20261207-000001", &disp)
            .await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert_eq!(r.body["field"], "ticket", "{}", r.body);
        let r = app
            .get(
                &format!("/api/v1/events/stream?ticket={}", uuid::Uuid::new_v4()),
                &disp,
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.body);
        // A grid worker of another grid may not see it: as if it did not exist.
        let other = app.token(Role::GridWorker, "hg-01-g02").await;
        let r = app
            .get(&format!("/api/v1/events/stream?ticket={a}"), &other)
            .await;
        assert_eq!(r.status, 404, "{}", r.body);
        app.finish().await;
    }
}
