//! The SLA watcher (issue 3 item 5): SlaWarning at 80% of a deadline's time and
//! SlaBreached when it passes, each appended once per deadline, also with two
//! service instances watching one database. Business time is a manual clock; the
//! watcher's rounds are driven with `run_once`, so nothing sleeps.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;
use yiwang::app::App;
use yiwang::auth::Role;
use yiwang::clock::Clock;
use yiwang::sla::watcher::run_once;
use yiwang::sla::{Calendar, SlaSettings};

use crate::support::{TestApp, engines};

/// An instant written in Beijing time.
fn bj(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("a time")
        .with_timezone(&Utc)
}

fn time_of(v: &Value) -> DateTime<Utc> {
    bj(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
}

/// 80% of the way from `start` to `due`, as the watcher's default warns.
fn at_80(start: DateTime<Utc>, due: DateTime<Utc>) -> DateTime<Utc> {
    start + (due - start) * 4 / 5
}

/// One SLA event of the log: (type, deadline, due_at).
type Sla = (String, String, DateTime<Utc>);

fn warning(deadline: &str, due: DateTime<Utc>) -> Sla {
    ("SlaWarning".into(), deadline.into(), due)
}

fn breached(deadline: &str, due: DateTime<Utc>) -> Sla {
    ("SlaBreached".into(), deadline.into(), due)
}

/// The SLA events of a ticket's stream, in order, with their metadata.
async fn sla_log(app: &App, id: Uuid) -> Vec<(Sla, Value)> {
    app.store
        .read_stream(id)
        .await
        .expect("read stream")
        .into_iter()
        .filter(|e| e.event_type == "SlaWarning" || e.event_type == "SlaBreached")
        .map(|e| {
            let deadline = e.data["deadline"].as_str().expect("deadline").to_string();
            let due = time_of(&e.data["due_at"]);
            ((e.event_type, deadline, due), e.metadata)
        })
        .collect()
}

async fn sla_of(app: &App, id: Uuid) -> Vec<Sla> {
    sla_log(app, id).await.into_iter().map(|(s, _)| s).collect()
}

async fn round(app: &App) -> usize {
    run_once(app).await.expect("a watcher round")
}

/// 2026-09-30 10:00 in Beijing: the example, with the National Day
/// holiday inside both deadlines.
fn dispatch_time() -> DateTime<Utc> {
    bj("2026-09-30T10:00:00+08:00")
}

/// Creates a ticket and dispatches it to the city management bureau at the
/// clock's current time; returns (id, sign_due_at, handle_due_at).
async fn dispatched_ticket(app: &TestApp) -> (Uuid, DateTime<Utc>, DateTime<Utc>) {
    let disp = app.token(Role::Dispatcher, "etdz").await;
    let id = app.new_ticket().await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = app
        .post(
            &format!("/api/v1/tickets/{id}/assign"),
            &disp,
            json!({"unit": "zhzf"}),
        )
        .await;
    assert_eq!(r.status, 200, "assign: {}", r.body);
    let d = &r.body["deadlines"];
    (
        Uuid::parse_str(&id).expect("uuid"),
        time_of(&d["sign_due_at"]),
        time_of(&d["handle_due_at"]),
    )
}

#[tokio::test]
async fn the_watcher_warns_and_breaches_each_deadline_once_and_follows_the_ticket() {
    for engine in engines().await {
        let t0 = dispatch_time();
        let clock = Clock::manual(t0);
        let app = TestApp::spawn_with_clock(engine, clock.clone()).await;
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let hand = app.token(Role::Handler, "zhzf").await;
        let (id, sign_due, handle_due) = dispatched_ticket(&app).await;
        assert_eq!(sign_due, bj("2026-10-09T00:00:00+08:00"));
        assert_eq!(handle_due, bj("2026-10-14T00:00:00+08:00"));
        let w = &*app.app;
        let path = format!("/api/v1/tickets/{id}");
        let ticket = |at: DateTime<Utc>| {
            clock.set(at);
            app.get(&path, &disp)
        };

        // Before 80% of the sign time: nothing.
        let sign_warn = at_80(t0, sign_due);
        for at in [
            t0,
            t0 + Duration::hours(1),
            sign_warn - Duration::seconds(1),
        ] {
            clock.set(at);
            assert_eq!(round(w).await, 0, "{engine:?} at {at}");
        }
        assert_eq!(sla_of(w, id).await, vec![]);

        // At 80%: exactly one warning for the sign deadline, by the watcher.
        clock.set(sign_warn);
        assert_eq!(round(w).await, 1, "{engine:?}");
        assert_eq!(round(w).await, 0, "{engine:?}: a second round adds nothing");
        let log = sla_log(w, id).await;
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].0, warning("sign", sign_due));
        assert_eq!(log[0].1["actor"], "sla-watcher");
        assert_eq!(log[0].1["role"], "system");
        assert_eq!(log[0].1["unit"], Value::Null);
        let r = ticket(sign_warn).await;
        assert_eq!(
            (r.body["version"].as_i64(), &r.body["overdue"]),
            (Some(3), &json!(false)),
            "{}",
            r.body
        );
        // The ticket tells the desk it was warned (amber there), of that deadline only.
        assert_eq!(r.body["deadlines"]["sign_warned"], true, "{}", r.body);
        assert_eq!(r.body["deadlines"]["handle_warned"], false, "{}", r.body);

        // At the deadline itself it has not passed; a second later it is breached.
        clock.set(sign_due);
        assert_eq!(round(w).await, 0);
        clock.set(sign_due + Duration::seconds(1));
        assert_eq!(round(w).await, 1);
        assert_eq!(round(w).await, 0);
        assert_eq!(
            sla_of(w, id).await,
            vec![warning("sign", sign_due), breached("sign", sign_due)]
        );
        let r = ticket(sign_due + Duration::seconds(1)).await;
        assert_eq!(r.body["overdue"], true, "{engine:?}: {}", r.body);
        assert_eq!(r.body["deadlines"]["sign"], "missed");

        // Signing (late) stops the sign deadline's events; the handle deadline runs on.
        clock.set(sign_due + Duration::hours(2));
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/sign"),
                &hand,
                json!({"handler": "钱工"}),
            )
            .await;
        assert_eq!(
            r.status, 200,
            "{engine:?}: sign after the watcher: {}",
            r.body
        );
        assert_eq!(
            r.body["version"], 5,
            "accepted, assigned, warning, breach, signed"
        );
        let handle_warn = at_80(t0, handle_due);
        clock.set(handle_warn - Duration::seconds(1));
        assert_eq!(round(w).await, 0);
        let r = ticket(handle_warn - Duration::seconds(1)).await;
        assert_eq!(r.body["overdue"], false, "signed: {}", r.body);
        assert_eq!(r.body["deadlines"]["handle_warned"], false, "{}", r.body);
        clock.set(handle_warn);
        assert_eq!(round(w).await, 1);
        let r = ticket(handle_warn).await;
        assert_eq!(r.body["deadlines"]["handle_warned"], true, "{}", r.body);
        clock.set(handle_due + Duration::seconds(1));
        assert_eq!(round(w).await, 1);
        assert_eq!(round(w).await, 0);
        let r = ticket(handle_due + Duration::seconds(1)).await;
        assert_eq!(r.body["overdue"], true);
        assert_eq!(r.body["deadlines"]["handle"], "missed");

        // An approved extension moves the handle deadline: a fresh warning and
        // breach for the new one, measured from the approval.
        let decided = handle_due + Duration::hours(1);
        clock.set(decided);
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/request-extension"),
                &hand,
                json!({"days": 3, "reason": "需要协调环卫车辆"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/decide-extension"),
                &disp,
                json!({"approved": true}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let new_due = time_of(&r.body["deadlines"]["handle_due_at"]);
        assert!(new_due > handle_due);
        assert_eq!(r.body["overdue"], false, "extended: {}", r.body);
        assert_eq!(round(w).await, 0, "the new deadline starts unwarned");
        let new_warn = at_80(decided, new_due);
        clock.set(new_warn - Duration::seconds(1));
        assert_eq!(round(w).await, 0);
        clock.set(new_warn);
        assert_eq!(round(w).await, 1);
        clock.set(new_due + Duration::seconds(1));
        assert_eq!(round(w).await, 1);
        assert_eq!(round(w).await, 0);
        let r = ticket(new_due + Duration::seconds(1)).await;
        assert_eq!(r.body["overdue"], true);

        assert_eq!(
            sla_of(w, id).await,
            vec![
                warning("sign", sign_due),
                breached("sign", sign_due),
                warning("handle", handle_due),
                breached("handle", handle_due),
                warning("handle", new_due),
                breached("handle", new_due),
            ],
            "{engine:?}"
        );

        // Handled: the watcher leaves it alone for good.
        let r = app
            .post(
                &format!("/api/v1/tickets/{id}/handle"),
                &hand,
                json!({"result": "已清运"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        clock.set(new_due + Duration::days(30));
        assert_eq!(round(w).await, 0);
        let r = app
            .get(&format!("/api/v1/tickets/{id}/events"), &disp)
            .await;
        let types: Vec<&str> = r.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|e| e["type"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            types,
            [
                "TicketAccepted",
                "TicketAssigned",
                "SlaWarning",
                "SlaBreached",
                "TicketSigned",
                "SlaWarning",
                "SlaBreached",
                "ExtensionRequested",
                "ExtensionDecided",
                "SlaWarning",
                "SlaBreached",
                "TicketHandled",
            ]
        );
        app.finish().await;
    }
}

/// Two instances on one database (two `build_app_with_clock`: their own pools,
/// their own SQLite writer, their own watcher), the second one's clock 90 s
/// ahead, each running several rounds at once at every step while dispatchers
/// comment on the tickets: every warning and breach is in the log exactly once.
#[tokio::test]
async fn two_instances_append_each_warning_and_breach_exactly_once() {
    for engine in engines().await {
        let t0 = dispatch_time();
        let skew = Duration::seconds(90);
        let clock_a = Clock::manual(t0);
        let clock_b = Clock::manual(t0 + skew);
        let app = TestApp::spawn_with_clock(engine, clock_a.clone()).await;
        let b = yiwang::app::build_app_with_clock(
            &app.db.url,
            Calendar::embedded(),
            SlaSettings::default(),
            clock_b.clone(),
        )
        .await
        .expect("second instance");
        let a = app.app.clone();
        let disp = app.token(Role::Dispatcher, "etdz").await;
        let hand = app.token(Role::Handler, "zhzf").await;

        let mut tickets = vec![];
        for _ in 0..6 {
            tickets.push(dispatched_ticket(&app).await);
        }
        // Two are signed for at once: only their handle deadline is watched.
        clock_a.set(t0 + Duration::hours(1));
        for (id, _, _) in &tickets[..2] {
            let r = app
                .post(
                    &format!("/api/v1/tickets/{id}/sign"),
                    &hand,
                    json!({"handler": "钱工"}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
        }

        // Every 6 hours for 16 days, past every deadline.
        let mut counted = 0;
        for step in 1..=64 {
            let at = t0 + Duration::hours(6 * step);
            clock_a.set(at);
            clock_b.set(at + skew);
            let rounds = (0..3).flat_map(|_| [run_once(&a), run_once(&b)]);
            let (id, _, _) = tickets[step as usize % tickets.len()];
            let path = format!("/api/v1/tickets/{id}/comment");
            let (results, comment) = tokio::join!(
                futures::future::join_all(rounds),
                app.post(&path, &disp, json!({"text": format!("第{step}次跟进")}))
            );
            assert_eq!(comment.status, 200, "{engine:?}: {}", comment.body);
            for r in results {
                counted += r.expect("a watcher round");
            }
        }

        let mut total = 0;
        for (i, (id, sign_due, handle_due)) in tickets.iter().enumerate() {
            let log = sla_of(&a, *id).await;
            total += log.len();
            let mut seen: BTreeMap<&Sla, usize> = BTreeMap::new();
            for e in &log {
                *seen.entry(e).or_default() += 1;
            }
            let dup: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
            assert!(dup.is_empty(), "{engine:?} ticket {i}: duplicates {dup:?}");
            let mut expected = vec![
                warning("sign", *sign_due),
                breached("sign", *sign_due),
                warning("handle", *handle_due),
                breached("handle", *handle_due),
            ];
            if i < 2 {
                expected.drain(..2);
            }
            let mut got = log.clone();
            got.sort();
            expected.sort();
            assert_eq!(got, expected, "{engine:?} ticket {i}");
            // Both instances see the same stream.
            assert_eq!(sla_of(&b, *id).await, log);
        }
        assert_eq!(total, 4 * 4 + 2 * 2);
        assert_eq!(
            counted, total,
            "{engine:?}: the rounds report exactly the events that went in"
        );
        // And nothing is left to do for either of them.
        assert_eq!(round(&a).await + round(&b).await, 0);
        drop(b);
        app.finish().await;
    }
}

/// The background task `serve` starts: it runs rounds by itself.
#[tokio::test]
async fn the_spawned_watcher_appends_on_its_own() {
    for engine in engines().await {
        let t0 = dispatch_time();
        let clock = Clock::manual(t0);
        let app = TestApp::spawn_with_clock(engine, clock.clone()).await;
        let (id, sign_due, _) = dispatched_ticket(&app).await;
        clock.set(sign_due + Duration::minutes(1));
        let task = yiwang::sla::watcher::spawn(app.app.clone(), StdDuration::from_millis(50));
        let mut log = vec![];
        for _ in 0..100 {
            log = sla_of(&app.app, id).await;
            if !log.is_empty() {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
        // The warning window was missed: the breach alone, once, also after three
        // more rounds of the watcher (counted, not waited for by the clock).
        let rounds = || {
            app.app
                .metrics
                .sla_rounds
                .with_label_values(&["done"])
                .get()
        };
        let seen = rounds();
        for _ in 0..200 {
            if rounds() >= seen + 3 {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(25)).await;
        }
        assert!(rounds() >= seen + 3, "{engine:?}: the watcher stopped");
        task.abort();
        assert_eq!(
            sla_of(&app.app, id).await,
            vec![breached("sign", sign_due)],
            "{engine:?}: {log:?}"
        );
        app.finish().await;
    }
}
