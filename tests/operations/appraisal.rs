//! The appraisal's ledger in the operator's commands (issue 21): entries, a
//! withdrawal, evaluations, a submitted and reopened year, grades and a bulletin are
//! events of the log like a ticket's, so `yiwang verify` covers them, `export` and
//! `restore` carry them (to the same engine and the other), and `replay` rebuilds
//! the projections past them without a warning, every appraisal answer the same.

use crate::support;

use std::path::Path;

use serde_json::{Value, json};
use yiwang::auth::Role;

use support::{Engine, Run, TestApp, TestDb, engines, yiwang};

fn without_as_of(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("as_of");
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

/// Records a year of appraisal on `app`; returns the paths whose answers must
/// survive, and an admin's token.
async fn ledger(app: &TestApp) -> (Vec<String>, String) {
    let hg = app.token(Role::Appraiser, "hg").await;
    let fl = app.token(Role::Appraiser, "fl").await;
    let district = app.token(Role::Appraiser, "etdz").await;
    let admin = app.token(Role::Admin, "etdz").await;
    let ticket = app.new_ticket().await;
    let post = |token: &str, path: &str, body: Value| {
        let (token, path) = (token.to_string(), path.to_string());
        async move {
            let r = app.post(&path, &token, body).await;
            assert!(r.status == 200 || r.status == 201, "{path}: {}", r.body);
            r.body
        }
    };
    const E: &str = "/api/v1/appraisal/entries";
    post(
        &hg,
        E,
        json!({"unit": "hg-zfzd", "period": "2026-03", "item": "archives.finding", "count": 2,
               "note": "卷宗不全", "tickets": [ticket["id"]]}),
    )
    .await;
    let wrong = post(
        &hg,
        E,
        json!({"unit": "hg-zfzd", "period": "2026-Q1", "item": "regulation.case_file",
               "count": 1, "note": "录错"}),
    )
    .await;
    post(
        &hg,
        &format!("{E}/{}/withdraw", wrong["id"].as_str().expect("id")),
        json!({"reason": "录错单位"}),
    )
    .await;
    post(
        &hg,
        E,
        json!({"unit": "hg-zfzd", "period": "2026-Q1", "item": "bonus.media_city", "count": 1,
               "note": "市级媒体正面报道"}),
    )
    .await;
    for (token, unit, points) in [
        (&hg, "zhzf", 21.0),
        (&fl, "zhzf", 26.5),
        (&hg, "scjg", 28.0),
    ] {
        post(
            token,
            E,
            json!({"unit": unit, "period": "2026", "item": "township_evaluation",
                   "points": points, "note": "年度评价", "grade_word": "较好"}),
        )
        .await;
    }
    let year = json!({"township": "hg", "year": 2026});
    post(&hg, "/api/v1/appraisal/submissions", year.clone()).await;
    post(
        &district,
        "/api/v1/appraisal/submissions/reopen",
        json!({"township": "hg", "year": 2026, "reason": "补录"}),
    )
    .await;
    post(&hg, "/api/v1/appraisal/submissions", year).await;
    for (y, g) in [(2025, 3), (2026, 4)] {
        post(
            &district,
            "/api/v1/appraisal/grades",
            json!({"unit": "zhzf", "year": y, "grade": g, "note": "评定"}),
        )
        .await;
    }
    let bulletin = post(
        &hg,
        "/api/v1/appraisal/bulletins",
        json!({"period": "2026-03"}),
    )
    .await;
    app.catch_up().await;
    let paths = vec![
        "/api/v1/appraisal?period=2026-03&unit=hg".to_string(),
        "/api/v1/appraisal?period=2026-Q1&unit=hg".to_string(),
        "/api/v1/appraisal?period=2026".to_string(),
        "/api/v1/appraisal/ranking?period=2026&kind=department".to_string(),
        "/api/v1/appraisal/ranking?period=2026-Q1&kind=enforcement".to_string(),
        "/api/v1/appraisal/entries".to_string(),
        "/api/v1/appraisal/submissions".to_string(),
        "/api/v1/appraisal/bulletins".to_string(),
        format!(
            "/api/v1/appraisal/bulletins/{}",
            bulletin["id"].as_str().expect("id")
        ),
    ];
    (paths, admin)
}

async fn answers(app: &TestApp, token: &str, paths: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for p in paths {
        let r = app.get(p, token).await;
        assert_eq!(r.status, 200, "{p}: {}", r.body);
        out.push(without_as_of(r.body));
    }
    out
}

fn verified(r: &Run, events: usize) {
    assert!(r.ok, "{r:?}");
    assert!(
        r.stdout.contains(&format!("verified {events} events"))
            && r.stdout.contains("every hash chain is intact"),
        "{r:?}"
    );
}

async fn round_trip(from: Engine, to: &[Engine]) {
    let src = TestApp::spawn(from).await;
    let (paths, admin) = ledger(&src).await;
    let before = answers(&src, &admin, &paths).await;
    let events = src.all_events().await;
    let appraisal = events
        .iter()
        .filter(|e| e.event_type.starts_with("Appraisal"))
        .count();
    // 6 entries, 1 withdrawal, 3 year events, 2 grades, 1 bulletin.
    assert_eq!(appraisal, 13, "{from:?}");
    assert!(
        before[0].to_string().contains("\"entry\":"),
        "the answers compared hold entries: {}",
        before[0]
    );

    // verify covers them.
    verified(&yiwang(&src.db.url, &["verify"]).await, events.len());

    // replay rebuilds the projections past them, silently, and nothing changes.
    let r = yiwang(&src.db.url, &["replay"]).await;
    assert!(r.ok, "{r:?}");
    assert!(
        !r.stderr.contains("skips an event") && !r.stdout.contains("skips an event"),
        "replay warned about appraisal events: {r:?}"
    );
    assert_eq!(
        answers(&src, &admin, &paths).await,
        before,
        "{from:?} replay"
    );

    // export, then restore on each target engine.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("backup.ndjson");
    let ex = yiwang(
        &src.db.url,
        &["export", "--out", &file.display().to_string()],
    )
    .await;
    assert!(ex.ok, "{ex:?}");
    for &engine in to {
        let db = TestDb::new(engine).await;
        let r = restore(&db.url, &file).await;
        assert!(r.ok, "{from:?} -> {engine:?}: {r:?}");
        let dst = TestApp::attach(db, yiwang::clock::Clock::system()).await;
        dst.catch_up().await;
        assert_eq!(dst.all_events().await, events, "{from:?} -> {engine:?}");
        assert_eq!(
            answers(&dst, &admin, &paths).await,
            before,
            "{from:?} -> {engine:?}"
        );
        verified(&yiwang(&dst.db.url, &["verify"]).await, events.len());
        // The restored ledger takes commands on: the year stays submitted.
        let hg = dst.token(Role::Appraiser, "hg").await;
        let r = dst
            .post(
                "/api/v1/appraisal/entries",
                &hg,
                json!({"unit": "hg-zfzd", "period": "2026-05", "item": "archives.finding",
                       "count": 1, "note": "n"}),
            )
            .await;
        assert_eq!(r.status, 409, "{}", r.body);
        dst.finish().await;
    }
    src.finish().await;
}

async fn restore(url: &str, file: &Path) -> Run {
    yiwang(url, &["restore", &file.display().to_string()]).await
}

#[tokio::test]
async fn the_ledger_survives_verify_replay_export_and_restore() {
    let all = engines().await;
    for &from in &all {
        round_trip(from, &all).await;
    }
}
