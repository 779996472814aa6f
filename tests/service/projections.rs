//! The projection runner and the unit statistics (issue 4): incremental equals
//! rebuild, exactly-once batches, leases, and the stats API's answers and refusals.

use crate::support;

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use yiwang::auth::Role;
use yiwang::clock::Clock;
use yiwang::projections::{self, Lease, Projection};

use support::{TestApp, engines};

fn bj(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{s}+08:00"))
        .unwrap()
        .with_timezone(&Utc)
}

/// What a dashboard reads: the figures at every granularity, and the overdue list.
async fn snapshot(app: &TestApp, tok: &str) -> String {
    let mut out = String::new();
    for q in [
        "granularity=day&from=2026-09-20&to=2026-10-20",
        "granularity=month&from=2026-09-01&to=2026-12-31",
        "granularity=quarter&from=2026-07-01&to=2026-12-31",
        "granularity=year&from=2026-01-01&to=2026-12-31",
        "granularity=month&from=2026-09-01&to=2026-12-31&unit=hg",
    ]
    .map(|q| format!("/api/v1/stats/units?{q}"))
    .into_iter()
    .chain(
        [
            "period=2026-09",
            "period=2026-Q4",
            "period=2026",
            "period=2026-10&profile=beijing-three-rates",
        ]
        .map(|q| format!("/api/v1/appraisal?{q}")),
    )
    .chain(
        [
            "from=2026-09-01&to=2026-12-31",
            "unit=hg&from=2026-09-20&to=2026-10-20",
            "unit=hg-01-g01&from=2026-10-01&to=2026-10-01",
        ]
        .map(|q| format!("/api/v1/stats/people?{q}")),
    ) {
        let r = app.get(&q, tok).await;
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        out.push_str(&r.body.to_string());
        out.push('\n');
    }
    let r = app.get("/api/v1/tickets?overdue=true&limit=500", tok).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ids: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    out.push_str(&ids.join(","));
    out
}

/// Rebuilds every projection from zero and drives it to the end of the feed, batch
/// by batch from an empty read model, as a new runner would.
async fn rebuild_in_batches(app: &TestApp) {
    for p in projections::all(&app.app.projection_handles()) {
        p.reset().await.unwrap();
        while projections::step(&app.app.store, p.as_ref(), projections::BATCH)
            .await
            .unwrap()
            .is_some()
        {}
    }
}

/// Rebuilds every projection in one pass, as `yiwang replay` does; the checkpoint
/// ends at the last position of the feed.
async fn rebuild(app: &TestApp) {
    let last = app
        .app
        .store
        .read_all(0, i64::MAX)
        .await
        .unwrap()
        .last()
        .map_or(0, |e| e.position);
    for p in projections::all(&app.app.projection_handles()) {
        let seen = std::sync::atomic::AtomicU64::new(0);
        let n = p
            .rebuild(&app.app.store, &|n| {
                seen.store(n, std::sync::atomic::Ordering::Relaxed)
            })
            .await
            .unwrap();
        assert_eq!(seen.into_inner(), n, "progress reached the count");
        assert_eq!(p.checkpoint().await.unwrap(), last, "{}", p.name());
    }
}

/// The daily counters give the same figures as counting the episode and occurrence
/// rows (`stats::compute`, the reference), for every unit, period and granularity.
async fn counters_match_the_rows(app: &TestApp, now: DateTime<Utc>, label: &str) {
    use yiwang::projections::periods::{self, Granularity};
    use yiwang::projections::stats::{self, Request};
    let org = app.app.org.get();
    let pool = app.app.store.pool();
    let d = |s: &str| periods::parse_date(s).unwrap();
    for (g, from, to) in [
        (Granularity::Day, "2026-09-20", "2026-10-25"),
        (Granularity::Month, "2026-08-01", "2026-12-31"),
        (Granularity::Quarter, "2026-01-01", "2026-12-31"),
        (Granularity::Year, "2025-01-01", "2026-12-31"),
    ] {
        let ps = periods::between(g, d(from), d(to));
        if g != Granularity::Day {
            // The report lists the area rules read equal the accepted rows.
            let mut seen = 0;
            for p in &ps {
                let from_lists = stats::area_reports(&pool, None, None, p).await.unwrap();
                use yiwang::projections::facts::Kind;
                // A report closed as a duplicate, invalid or withdrawn is taken back
                // by its `report_voided` row (issue 21).
                let accepted = [Kind::Accepted, Kind::ReportVoided];
                let rows = stats::occurrences(&pool, &accepted, None, None, p.start, p.end)
                    .await
                    .unwrap();
                let month_start = |at: i64| {
                    let t = chrono::DateTime::from_timestamp_micros(at).unwrap();
                    let day = yiwang::sla::calendar::business_date(t);
                    periods::Period::containing(Granularity::Month, day)
                        .start
                        .timestamp_micros()
                };
                let mut a: Vec<_> = from_lists
                    .iter()
                    .flat_map(|r| {
                        r.items.iter().map(move |e| {
                            (
                                r.unit.clone(),
                                r.source.clone(),
                                r.category.clone(),
                                *e,
                                r.at,
                            )
                        })
                    })
                    .collect();
                let mut b: Vec<_> = stats::AreaReport::from_rows(&rows)
                    .into_iter()
                    .map(|r| (r.unit, r.source, r.category, r.items[0], month_start(r.at)))
                    .collect();
                a.sort();
                b.sort();
                assert_eq!(a, b, "{label}: area reports in {}", p.label);
                seen += b.len();
            }
            assert!(seen > 0, "{label}: the history has reports");
        }
        let units: Vec<String> = org
            .subtree(&org.root().code)
            .into_iter()
            .map(str::to_string)
            .collect();
        for own_only in [false, true] {
            let req = Request {
                org: &org,
                units: units.clone(),
                own_only,
                periods: ps.clone(),
                now,
            };
            let (eps, occs) = stats::fetch(&pool, None, ps[0].start, ps[ps.len() - 1].end)
                .await
                .unwrap();
            let rows = stats::compute(&req, &eps, &occs);
            let daily = stats::fetch_daily(&pool, None, &ps, now, stats::Turnarounds::Read)
                .await
                .unwrap();
            let counted = stats::compute_daily(&req, &daily);
            // With evidence (what the appraisal reads): every field equal, the
            // turnaround values compared as multisets.
            let with_evidence =
                stats::figures_with_evidence(&pool, None, &req, true, stats::Turnarounds::Read)
                    .await
                    .unwrap();
            for (i, (a, b)) in rows.cells.iter().zip(&with_evidence.cells).enumerate() {
                let (mut a, mut b) = (a.clone(), b.clone());
                a.turnaround_secs.sort_unstable();
                b.turnaround_secs.sort_unstable();
                assert_eq!(
                    a, b,
                    "{label}: cell {i} with evidence (own only: {own_only})"
                );
            }
            if g == Granularity::Year {
                // A year read with its quarters is summed from theirs: the same
                // figures as the year read alone.
                let year = periods::Period::parse("2026").unwrap();
                let quarters = Request {
                    periods: year.quarters(),
                    ..req.clone()
                };
                let alone = Request {
                    periods: vec![year.clone()],
                    ..req.clone()
                };
                let skip = stats::Turnarounds::Skip;
                let all = yiwang::projections::daily::Lists::ALL;
                let together = stats::figures_with_evidence_of(
                    &pool,
                    None,
                    &[&quarters, &alone],
                    true,
                    all,
                    skip,
                )
                .await
                .unwrap();
                let by_itself = stats::figures_with_evidence(&pool, None, &alone, true, skip)
                    .await
                    .unwrap();
                assert_eq!(together.len(), 2);
                assert_eq!(
                    together[1].cells, by_itself.cells,
                    "{label}: the year summed from its quarters (own only: {own_only})"
                );
                assert!(
                    by_itself.cells.iter().any(|c| c.received > 0),
                    "{label}: the year has figures"
                );
            }
            for (ui, u) in units.iter().enumerate() {
                for (pi, p) in ps.iter().enumerate() {
                    let a = stats::StatsItem::new(&org, u, p, rows.get(ui, pi), false);
                    let b = stats::StatsItem::new(&org, u, p, counted.get(ui, pi), false);
                    assert_eq!(
                        serde_json::to_value(&a).unwrap(),
                        serde_json::to_value(&b).unwrap(),
                        "{label}: {u} {} (own only: {own_only})",
                        p.label
                    );
                }
            }
        }
    }
}

/// Random commands by plausible actors (many are refused: that appends nothing).
async fn random_history(
    app: &TestApp,
    clock: &Clock,
    rng: &mut StdRng,
    ids: &mut Vec<String>,
    n: usize,
) {
    let hot = app.token(Role::HotlineAgent, "etdz").await;
    let grid = app.token(Role::GridWorker, "hg-01-g01").await;
    let disp = app.token(Role::Dispatcher, "etdz").await;
    let twn = app.token(Role::Dispatcher, "hg").await;
    let units = ["zhzf", "scjg", "sthj"];
    let agencies = ["hg-zfzd", "hg-scjgs"];
    let mut handlers = Vec::new();
    for u in units.iter().chain(agencies.iter()) {
        handlers.push((u.to_string(), app.token(Role::Handler, u).await));
    }
    let cats = [
        "city.exposed_garbage",
        "city.road_spillage",
        "market.consumer_complaint",
        "city.illegal_construction",
    ];
    // The appraisal's entries and withdrawals land between the tickets' events: the
    // projections skip them, in batches of any size (drawn without the random
    // generator, so the tickets' history stays the seed's).
    let appraiser = app.token(Role::Appraiser, "hg").await;
    let mut entries: Vec<String> = Vec::new();
    for i in 0..n {
        if i % 9 == 4 {
            let mut body = json!({"unit": "hg-zfzd", "item": "archives.finding", "count": 1,
                                  "period": clock.now().format("%Y-%m").to_string(),
                                  "note": "档案检查"});
            if let Some(t) = ids.last() {
                body["tickets"] = json!([t]);
            }
            let r = app
                .post("/api/v1/appraisal/entries", &appraiser, body)
                .await;
            assert_eq!(r.status, 201, "{}", r.body);
            entries.push(r.body["id"].as_str().unwrap().to_string());
        }
        if i % 18 == 13
            && let Some(e) = entries.pop()
        {
            let r = app
                .post(
                    &format!("/api/v1/appraisal/entries/{e}/withdraw"),
                    &appraiser,
                    json!({"reason": "复核"}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
        // Time moves by minutes to days, across weekends and the National Day holiday.
        let step = match rng.random_range(0..10) {
            0..=5 => Duration::minutes(rng.random_range(1..240)),
            6..=8 => Duration::hours(rng.random_range(4..30)),
            _ => Duration::days(rng.random_range(1..4)),
        };
        clock.set(clock.now() + step);
        let roll = rng.random_range(0..100);
        if ids.is_empty() || roll < 15 {
            let mut body = support::ticket_body();
            body["category"] = json!(cats[rng.random_range(0..cats.len())]);
            let tok = match rng.random_range(0..10) {
                0..=3 => {
                    body["source"] = json!("grid");
                    if rng.random_bool(0.25) {
                        body["self_handled"] = json!({"result": "已自行处置"});
                    }
                    &grid
                }
                // Issue 21's sources: the city's findings through the hotline, the
                // squad's own patrol.
                4 => {
                    body["source"] = json!("city_supervision");
                    &hot
                }
                5 => {
                    body["source"] = json!("patrol");
                    &handlers[3].1
                }
                _ => &hot,
            };
            // A repeat complaint names an earlier ticket; a handler's patrol report
            // could only name one its unit may read, so it names none.
            if !ids.is_empty() && body["source"] != "patrol" && rng.random_bool(0.2) {
                body["related_to"] = json!(ids[rng.random_range(0..ids.len())]);
            }
            let r = app.post("/api/v1/tickets", tok, body).await;
            assert_eq!(r.status, 201, "{}", r.body);
            ids.push(r.body["id"].as_str().unwrap().to_string());
            continue;
        }
        let id = ids[rng.random_range(0..ids.len())].clone();
        // Mostly the handler of the ticket's unit (else the command is refused).
        let cur = app.get(&format!("/api/v1/tickets/{id}"), &disp).await.body;
        let (_, h_tok) = handlers
            .iter()
            .find(|(u, _)| cur["unit"].as_str() == Some(u.as_str()) && rng.random_bool(0.9))
            .unwrap_or(&handlers[rng.random_range(0..handlers.len())]);
        let at_township = cur["centre"].as_str() == Some("hg");
        let centre = if at_township { &twn } else { &disp };
        let pool = if at_township {
            &agencies[..]
        } else {
            &units[..]
        };
        let target = pool[rng.random_range(0..pool.len())];
        // Mostly what the ticket's state calls for, sometimes anything at all.
        let pick = match (
            cur["state"].as_str(),
            cur["handler"].is_null(),
            rng.random_range(0..20),
        ) {
            (_, _, 0..=2) => rng.random_range(0..13),
            // Sometimes not a place of its own: closed as a duplicate, invalid or
            // withdrawn (the area report lists take it back, issue 21).
            (Some("accepted"), _, r) if r % 4 == 3 => 13,
            (Some("accepted"), _, _) => 0,
            (Some("assigned"), true, r) => [2, 2, 2, 2, 2, 2, 2, 4, 7, 7][r as usize % 10],
            (Some("assigned"), false, r) => [8, 8, 8, 8, 8, 5, 6, 6, 7, 7][r as usize % 10],
            (Some("handled"), _, _) => 10,
            (Some("verified"), _, r) => {
                if r % 2 == 0 {
                    11
                } else {
                    12
                }
            }
            _ => rng.random_range(0..13),
        };
        let (tok, action, body) = match pick {
            0 | 1 => (centre, "assign", json!({ "unit": target })),
            2 | 3 => (h_tok, "sign", json!({"handler": "王"})),
            4 => (h_tok, "return", json!({"reason": "非本单位职责"})),
            5 => (
                h_tok,
                "request-extension",
                json!({"days": rng.random_range(1..4), "reason": "需协调"}),
            ),
            6 => (
                centre,
                "decide-extension",
                json!({"approved": rng.random_bool(0.6)}),
            ),
            7 => (centre, "supervise", json!({"note": "请加快"})),
            8 | 9 => (h_tok, "handle", json!({"result": "已处理"})),
            10 => (
                centre,
                "verify",
                json!({"passed": rng.random_bool(0.7), "note": "核查"}),
            ),
            11 => {
                let s = ["satisfied", "basically_satisfied", "unsatisfied"][rng.random_range(0..3)];
                (&hot, "feedback", json!({ "satisfaction": s }))
            }
            13 => {
                let other = ids[rng.random_range(0..ids.len())].clone();
                let body = match rng.random_range(0..3) {
                    0 => json!({"code": "duplicate", "duplicate_of": other}),
                    1 => json!({"code": "invalid"}),
                    _ => json!({"code": "withdrawn"}),
                };
                (centre, "close", body)
            }
            _ => (centre, "close", json!({"code": "resolved"})),
        };
        let r = app
            .post(&format!("/api/v1/tickets/{id}/{action}"), tok, body)
            .await;
        // 404: a unit that may not even see the ticket (issue 19).
        assert!(
            [200, 403, 404, 409, 422].contains(&r.status),
            "{action}: {} {}",
            r.status,
            r.body
        );
    }
}

#[tokio::test]
async fn incremental_projection_equals_a_rebuild_from_zero() {
    for engine in engines().await {
        for seed in [7u64, 2026] {
            let clock = Clock::manual(bj("2026-09-24T09:00:00"));
            let app = TestApp::spawn_with_clock(engine, clock.clone()).await;
            let admin = app.token(Role::Admin, "etdz").await;
            let mut rng = StdRng::seed_from_u64(seed);
            let mut ids = Vec::new();
            for round in 0..4 {
                random_history(&app, &clock, &mut rng, &mut ids, 45).await;
                // Incrementally, in small batches of random size, with one runner
                // (and its in-memory cache) per round. With seed 2026 the cache holds
                // two tickets' facts: nearly every event misses it and reads the facts
                // back, as a live runner's (`unit_stats::LIVE_CACHE`) does for a
                // ticket quiet for weeks.
                // Every event of the history in sight first (see `settle`).
                app.settle().await;
                let handles = app.app.projection_handles();
                let ps = if seed == 2026 {
                    projections::with_facts_cache(&handles, 2)
                } else {
                    projections::all(&handles)
                };
                for p in &ps {
                    loop {
                        let n = rng.random_range(1..12);
                        match projections::step(&app.app.store, p.as_ref(), n)
                            .await
                            .unwrap()
                        {
                            Some(_) => {}
                            None => break,
                        }
                    }
                }
                let incremental = snapshot(&app, &admin).await;
                counters_match_the_rows(
                    &app,
                    clock.now(),
                    &format!("{engine:?} seed {seed} round {round}"),
                )
                .await;
                rebuild_in_batches(&app).await;
                let batched = snapshot(&app, &admin).await;
                assert_eq!(
                    incremental, batched,
                    "{engine:?} seed {seed} round {round}, in batches"
                );
                // Last the one-pass rebuild: the next round continues on its rows.
                rebuild(&app).await;
                let rebuilt = snapshot(&app, &admin).await;
                assert_eq!(incremental, rebuilt, "{engine:?} seed {seed} round {round}");
            }
            // The history exercised what the figures count.
            let r = app
                .get(
                    "/api/v1/stats/units?granularity=year&from=2026-01-01",
                    &admin,
                )
                .await;
            let all = &r.body["items"][0];
            assert_eq!(all["unit"], "etdz");
            for f in [
                "received",
                "signed",
                "due_to_finish",
                "handled",
                "returns",
                "supervisions",
                "feedback",
            ] {
                assert!(
                    all[f].as_u64().unwrap() > 0,
                    "{engine:?} seed {seed}: no {f} in {all}"
                );
            }
            assert!(
                r.body["items"].as_array().unwrap().len() > 2,
                "units beneath etdz are listed too"
            );
            // Grid reports were fixed on the spot; reports were taken back.
            let r = app
                .get("/api/v1/stats/people?from=2026-01-01&to=2026-12-31", &admin)
                .await;
            let g = &r.body["grid_workers"][0];
            assert!(
                g["self_handled"].as_i64() > Some(0),
                "{engine:?} seed {seed}: {}",
                r.body
            );
            let year = yiwang::projections::periods::Period::parse("2026").unwrap();
            let voided = yiwang::projections::stats::occurrences(
                &app.app.store.pool(),
                &[yiwang::projections::facts::Kind::ReportVoided],
                None,
                None,
                year.start,
                year.end,
            )
            .await
            .unwrap();
            assert!(
                voided.len() > 1,
                "{engine:?} seed {seed}: reports were closed as duplicate, invalid or withdrawn"
            );
            assert!(
                r.body["handlers"].as_array().unwrap().len() > 2,
                "{engine:?} seed {seed}: {}",
                r.body
            );
            app.finish().await;
        }
    }
}

#[tokio::test]
async fn a_batch_is_applied_once_even_by_two_runners() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        for _ in 0..3 {
            let id = app.new_ticket().await["id"].as_str().unwrap().to_string();
            let r = app
                .post(
                    &format!("/api/v1/tickets/{id}/assign"),
                    &disp,
                    json!({"unit": "zhzf"}),
                )
                .await;
            assert_eq!(r.status, 200);
        }
        let a = projections::unit_stats::UnitStats::new(
            app.app.store.pool(),
            app.app.org.clone(),
            app.app.sla.calendar.clone(),
        );
        let b = projections::unit_stats::UnitStats::new(
            app.app.store.pool(),
            app.app.org.clone(),
            app.app.sla.calendar.clone(),
        );
        let from = a.checkpoint().await.unwrap();
        // On PostgreSQL the feed stops short of any older transaction still open in
        // the cluster (another test's, say): wait for the horizon to pass ours.
        let mut events = Vec::new();
        for _ in 0..200 {
            events = app.app.store.read_all(from, 100).await.unwrap();
            if events.len() >= 6 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(events.len(), 6);
        let first = a.apply(from, events.clone()).await.unwrap();
        assert!(first.applied);
        let second = b.apply(from, events).await.unwrap();
        assert!(!second.applied, "the checkpoint had moved: nothing written");
        assert_eq!(app.count_rows("stats_episodes").await, 3);
        assert_eq!(
            app.count_rows("stats_occurrences").await,
            3,
            "one Accepted occurrence per ticket, not two"
        );
        assert_eq!(b.checkpoint().await.unwrap(), first.to);
        app.finish().await;
    }
}

#[tokio::test]
async fn one_process_holds_a_lease_until_it_lets_go_or_dies() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let pool = app.app.store.pool();
        let mut a = Lease::new(pool.clone(), "unit_stats", "a");
        let mut b = Lease::new(pool.clone(), "unit_stats", "b");
        assert!(a.acquire(false).await.unwrap());
        assert!(!b.acquire(false).await.unwrap(), "held by a");
        assert_eq!(
            Lease::holder(&pool, "unit_stats").await.unwrap().as_deref(),
            Some("a")
        );
        a.release().await.unwrap();
        assert!(b.acquire(false).await.unwrap(), "released: b takes over");
        assert!(!a.acquire(false).await.unwrap());
        // A replay takes it by force; the runner that held it loses it.
        let mut r = Lease::new(pool.clone(), "unit_stats", "replay");
        assert!(r.acquire(true).await.unwrap());
        assert_eq!(
            Lease::holder(&pool, "unit_stats").await.unwrap().as_deref(),
            Some("replay")
        );
        app.finish().await;
    }
}

#[tokio::test]
async fn stats_refuse_what_they_cannot_answer() {
    for engine in engines().await {
        let app = TestApp::spawn(engine).await;
        let analyst = app.token(Role::Analyst, "hg").await;
        let grid = app.token(Role::GridWorker, "hg-01-g01").await;
        for (q, field) in [
            ("granularity=week", "granularity"),
            ("from=2026-13-01", "from"),
            ("from=2026-10-02&to=2026-10-01", "from"),
            (
                "granularity=day&from=2020-01-01&to=2026-01-01",
                "granularity",
            ),
            ("unit=nowhere", "unit"),
            ("satisfaction=lenient", "satisfaction"),
        ] {
            let r = app.get(&format!("/api/v1/stats/units?{q}"), &analyst).await;
            assert_eq!(r.status, 422, "{q}: {}", r.body);
            assert_eq!(r.header("content-type"), Some("application/problem+json"));
            assert!(r.body.to_string().contains(field), "{q}: {}", r.body);
        }
        let r = app.get("/api/v1/stats/units?unit=zhzf", &analyst).await;
        assert_eq!(
            r.status, 403,
            "a township analyst cannot read a district department"
        );
        let r = app.get("/api/v1/stats/units", &grid).await;
        assert_eq!(r.status, 403);
        let r = app
            .get("/api/v1/stats/units?granularity=year", &analyst)
            .await;
        assert_eq!(r.status, 200);
        let items = r.body["items"].as_array().unwrap();
        assert_eq!(items[0]["unit"], "hg", "the caller's unit by default");
        assert_eq!(
            items[0]["turnaround_hours"],
            json!({"mean": null, "median": null, "p90": null})
        );
        let csv = app
            .send(
                reqwest::Method::GET,
                "/api/v1/stats/units?granularity=year",
                Some(&analyst),
                None,
                &[("accept", "text/csv".into())],
            )
            .await;
        assert_eq!(csv.status, 200);
        assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
        let text = match &csv.body {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert!(text.starts_with("unit,unit_name,period,received"), "{text}");
        app.finish().await;
    }
}

/// The runner that keeps up starts a round at most every `round_every` (0.1 s on
/// PostgreSQL), so a stream of commands is folded a period at a time, not an
/// append batch at a time (issue 24: the rounds' own reads and commits were two
/// thirds of PostgreSQL's statements at 16 clients); and what it folds is all of
/// it, each event once, on either engine.
#[tokio::test]
async fn a_runner_keeping_up_folds_a_stream_of_commands_in_paced_rounds() {
    for engine in engines().await {
        let app = std::sync::Arc::new(TestApp::spawn(engine).await);
        let handles = app.app.projection_handles();
        let metrics = handles.metrics.clone();
        let started = std::time::Instant::now();
        projections::spawn(handles);
        let hot = app.token(Role::HotlineAgent, "etdz").await;
        let mut writers = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (app, hot) = (app.clone(), hot.clone());
            writers.spawn(async move {
                for _ in 0..15 {
                    let r = app
                        .post("/api/v1/tickets", &hot, support::ticket_body())
                        .await;
                    assert_eq!(r.status, 201, "create: {}", r.body);
                }
            });
        }
        while let Some(done) = writers.join_next().await {
            done.expect("a writer task");
        }
        let last = app.max_position().await;
        let total = app.count_rows("events").await as u64;
        for name in ["unit_stats", "people_stats"] {
            let events = metrics.projection_events.with_label_values(&[name]);
            let batches = metrics.projection_batches.with_label_values(&[name]);
            // Caught up: every event applied by this runner, and its checkpoint there.
            let waiting = std::time::Instant::now();
            while events.get() < total {
                assert!(
                    waiting.elapsed() < std::time::Duration::from_secs(60),
                    "{name} applied {} of {total} events",
                    events.get()
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert_eq!(events.get(), total, "{name}: each event once");
            let p = projections::all(&app.app.projection_handles())
                .into_iter()
                .find(|p| p.name() == name)
                .unwrap();
            assert_eq!(p.checkpoint().await.unwrap(), last, "{name}");
            // One round per period at most, each a batch: the 240 creates of the
            // run (in some 20-80 append batches) come in far fewer. (SQLite's
            // runners have no period: each append batch wakes them.)
            let every = projections::round_every(&app.app.store.pool());
            let n = batches.get();
            assert!(n >= 1, "{name}: no batch");
            if !every.is_zero() {
                let periods = started.elapsed().as_secs_f64() / every.as_secs_f64();
                assert!(
                    (n as f64) <= periods.ceil() + 1.0,
                    "{engine:?} {name}: {n} batches in {periods:.1} periods of {every:?}"
                );
            }
        }
        // Every ticket's facts are there, once.
        assert_eq!(app.count_rows("stats_tickets").await, 240);
        let app = std::sync::Arc::into_inner(app).expect("the writers are done");
        app.finish().await;
    }
}
