//! The evidence lists in parts (migration 0018, `daily::parts`), on both engines: a
//! month's list longer than one part, grown over many projection batches with
//! removals among them, holds what a rebuild (which writes every list whole, in
//! full parts) holds, and answers the same.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use yiwang::auth::Role;
use yiwang::clock::Clock;
use yiwang::projections::daily::parts::PART_ITEMS;
use yiwang::projections::periods::Period;
use yiwang::projections::stats;
use yiwang::store::Pool;

use crate::support::{TestApp, engines, ticket_body};

fn bj(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{s}+08:00"))
        .expect("a time")
        .with_timezone(&Utc)
}

/// The parts of township hg's report lists for October 2026: (list, part, items).
async fn hg_parts(pool: &Pool) -> Vec<(String, String, String)> {
    let month = 2026 * 12 + 9;
    let sql = "SELECT list, part, items FROM stats_evidence_monthly \
               WHERE unit = 'hg' AND month = $1 AND list LIKE 'report:%'";
    let mut rows: Vec<(String, String, String)> = match pool {
        Pool::Sqlite(p) => sqlx::query_as(sql).bind(month).fetch_all(p).await,
        Pool::Postgres(p) => sqlx::query_as(sql).bind(month).fetch_all(p).await,
    }
    .expect("the parts");
    // As bytes, as the service orders them.
    rows.sort();
    rows
}

/// Each list's parts joined in order: (list, items).
fn joined(parts: &[(String, String, String)]) -> Vec<(String, String)> {
    parts
        .chunk_by(|a, b| a.0 == b.0)
        .map(|same| {
            let items: Vec<&str> = same.iter().map(|p| p.2.as_str()).collect();
            (same[0].0.clone(), items.join(","))
        })
        .collect()
}

/// The tickets `stats::area_reports` lists for township hg in `period`, sorted.
async fn area_tickets(app: &TestApp, period: &str) -> Vec<String> {
    let p = Period::parse(period).expect("period");
    let hg = ["hg".to_string()];
    let mut out: Vec<String> = stats::area_reports(&app.app.store.pool(), Some(&hg), None, &p)
        .await
        .expect("area reports")
        .iter()
        .flat_map(|r| r.items.iter().map(|e| e.ticket.to_string()))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn stats_evidence_lists_longer_than_a_part_match_their_rebuild() {
    for engine in engines().await {
        let clock = Clock::manual(bj("2026-10-12T09:00:00"));
        let app = TestApp::spawn_with_clock(engine, clock.clone()).await;
        let gw = app.token(Role::GridWorker, "hg-01-g01").await;
        let disp = app.token(Role::Dispatcher, "hg").await;
        let analyst = app.token(Role::Analyst, "etdz").await;
        let pool = app.app.store.pool();
        let mut live: Vec<String> = Vec::new();
        let mut voided = 0;
        // Rounds of new reports, each round a projection batch of its own, and from
        // the second round on some earlier reports closed as invalid (their items
        // leave the list: removals in earlier parts, not only the last).
        let per_round = PART_ITEMS / 2 + 7;
        for round in 0..6 {
            for _ in 0..per_round {
                let mut b = ticket_body();
                b["source"] = json!("grid");
                b["location"]["grid"] = json!("hg-01-g01");
                let r = app.post("/api/v1/tickets", &gw, b).await;
                assert_eq!(r.status, 201, "grid report: {}", r.body);
                live.push(r.body["id"].as_str().expect("id").to_string());
            }
            if round > 0 {
                // Every ninth report still listed, from the start of the month on.
                let gone: Vec<String> = live.iter().step_by(9).take(8).cloned().collect();
                for id in &gone {
                    let r = app
                        .post(
                            &format!("/api/v1/tickets/{id}/close"),
                            &disp,
                            json!({"code": "invalid"}),
                        )
                        .await;
                    assert_eq!(r.status, 200, "close {id}: {}", r.body);
                }
                live.retain(|t| !gone.contains(t));
                voided += gone.len();
            }
            app.catch_up().await;
            let parts = hg_parts(&pool).await;
            for (list, part, items) in &parts {
                let n = items.split(',').count();
                assert!(
                    !items.is_empty() && n <= PART_ITEMS,
                    "{engine:?} round {round}: {list} part {part:?} holds {n} items"
                );
            }
        }
        live.sort();
        assert_eq!(voided, 40, "{engine:?}: removals were made");
        assert!(
            live.len() > 2 * PART_ITEMS,
            "{engine:?}: {} listed",
            live.len()
        );
        assert_eq!(area_tickets(&app, "2026-10").await, live, "{engine:?}");
        assert_eq!(area_tickets(&app, "2026-Q4").await, live, "{engine:?}");
        let incremental = hg_parts(&pool).await;
        let lists = joined(&incremental);
        assert_eq!(lists.len(), 1, "{engine:?}: one category, one list");
        assert!(
            incremental.len() >= 3,
            "{engine:?}: the list is in parts: {}",
            incremental.len()
        );
        let month = "/api/v1/appraisal?period=2026-10";
        let before: Value = app.get(month, &analyst).await.body;
        assert!(
            before.to_string().contains(&live[live.len() - 1]),
            "{engine:?}: the appraisal lists the reports"
        );

        // A rebuild writes the same list, in full parts.
        for p in yiwang::projections::all(&app.app.projection_handles()) {
            p.rebuild(&app.app.store, &|_| {}).await.expect("rebuild");
        }
        let rebuilt = hg_parts(&pool).await;
        assert_eq!(joined(&rebuilt), lists, "{engine:?}: the list as rebuilt");
        assert_eq!(
            rebuilt.len(),
            live.len().div_ceil(PART_ITEMS),
            "{engine:?}: full parts"
        );
        assert_eq!(area_tickets(&app, "2026-10").await, live, "{engine:?}");
        let after: Value = app.get(month, &analyst).await.body;
        assert_eq!(after, before, "{engine:?}: the appraisal as rebuilt");
        app.finish().await;
    }
}
