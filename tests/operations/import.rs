//! `yiwang import FILE.ndjson`, run as an operator runs it (the real binary) against a
//! fresh database on each engine: good tickets go in with their own times and
//! working-day deadlines, a ticket with a bad line leaves nothing, a second run adds
//! nothing, and an unreadable line is named by its number.

use crate::support;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use yiwang::store::{Pool, RecordedEvent};

use support::{Run, TestDb, engines, yiwang};

async fn import(url: &str, file: &std::path::Path) -> Run {
    yiwang(url, &["import", &file.display().to_string()]).await
}

async fn count_events(url: &str) -> i64 {
    let sql = "SELECT COUNT(*) FROM events";
    match yiwang::store::open(url, true).await.expect("open").pool() {
        Pool::Postgres(p) => sqlx::query_scalar(sql).fetch_one(&p).await.expect("count"),
        Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(&p).await.expect("count"),
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("an RFC 3339 time")
        .with_timezone(&Utc)
}

/// The stream of the ticket with reference `r` whose first line is at `first`.
async fn stream(url: &str, r: &str, first: &str) -> Vec<RecordedEvent> {
    let id = yiwang::import::ticket_id(r, at(first)).expect("an id");
    yiwang::store::open(url, true)
        .await
        .expect("open")
        .read_stream(id)
        .await
        .expect("read stream")
}

fn line(ticket: &str, when: &str, actor: (&str, &str, &str), action: &str, body: Value) -> String {
    json!({
        "ticket": ticket,
        "at": when,
        "actor": {"user": actor.0, "role": actor.1, "unit": actor.2},
        "action": action,
        "body": body,
    })
    .to_string()
}

const HOT: (&str, &str, &str) = ("王话务", "hotline_agent", "etdz");
const DISP: (&str, &str, &str) = ("李派单", "dispatcher", "etdz");
const HAND: (&str, &str, &str) = ("钱承办", "handler", "zhzf");
const GRID: (&str, &str, &str) = ("孙网格", "grid_worker", "hg-01-g01");
const HG_DISP: (&str, &str, &str) = ("周派单", "dispatcher", "hg");

fn complaint() -> Value {
    json!({
        "source": "hotline", "category": "city.exposed_garbage", "urgency": "normal",
        "title": "小区门口垃圾堆积", "description": "垃圾三天未清运",
        "location": {"address": "皇冠街道", "lat": 37.5, "lon": 122.1, "grid": "hg-01-g01"},
        "reporter": {"name": "赵先生", "phone": "13800000000"}
    })
}

/// Three tickets, their lines interleaved: L-1 from accepted to closed, L-2 with a
/// verification before anything was handled (line 4), L-3 a grid worker's report
/// fixed on the spot, a repeat of L-1, verified by its township.
fn history() -> Vec<String> {
    vec![
        line("L-1", "2026-09-29T02:00:00Z", HOT, "create", complaint()),
        line("L-2", "2026-09-29T03:00:00Z", HOT, "create", complaint()),
        line(
            "L-1",
            "2026-09-30T03:00:00Z",
            DISP,
            "assign",
            json!({"unit": "zhzf"}),
        ),
        line(
            "L-2",
            "2026-09-30T04:00:00Z",
            DISP,
            "verify",
            json!({"passed": true, "note": "?"}),
        ),
        line(
            "L-1",
            "2026-10-08T01:00:00Z",
            HAND,
            "sign",
            json!({"handler": "钱工"}),
        ),
        line(
            "L-3",
            "2026-10-09T01:00:00Z",
            GRID,
            "create",
            json!({
                "source": "grid", "category": "city.exposed_garbage", "title": "垃圾又堆起来了",
                "location": {"grid": "hg-01-g01"}, "related_to": "L-1",
                "self_handled": {"result": "已当场清理"}
            }),
        ),
        line(
            "L-1",
            "2026-10-09T02:00:00Z",
            HAND,
            "handle",
            json!({"result": "已清运"}),
        ),
        line(
            "L-3",
            "2026-10-09T05:00:00Z",
            HG_DISP,
            "verify",
            json!({"passed": true, "note": "现场核实"}),
        ),
        line(
            "L-1",
            "2026-10-10T02:00:00Z",
            DISP,
            "verify",
            json!({"passed": true, "note": "现场核实"}),
        ),
        line(
            "L-1",
            "2026-10-12T01:00:00Z",
            HOT,
            "feedback",
            json!({"satisfaction": "satisfied"}),
        ),
        line(
            "L-1",
            "2026-10-12T02:00:00Z",
            DISP,
            "close",
            json!({"code": "resolved"}),
        ),
        line(
            "L-2",
            "2026-10-12T03:00:00Z",
            DISP,
            "assign",
            json!({"unit": "zhzf"}),
        ),
    ]
}

fn write(dir: &tempfile::TempDir, name: &str, lines: &[String]) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write the file");
    path
}

#[tokio::test]
async fn good_tickets_go_in_at_their_own_times_and_a_ticket_with_a_bad_line_leaves_nothing() {
    for engine in engines().await {
        let db = TestDb::new(engine).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let lines = history();
        let file = write(&dir, "legacy.ndjson", &lines);

        let r = import(&db.url, &file).await;
        assert!(!r.ok, "a bad line fails the run: {r:?}");
        assert!(
            r.stdout
                .contains("line 4: ticket L-2: 409: cannot verify it: ticket L-2 is accepted"),
            "{engine:?}: the bad line by number and reason: {r:?}"
        );
        assert_eq!(
            r.stdout.matches("line ").count(),
            1,
            "only the bad line is named: {r:?}"
        );
        for s in [
            "lines read: 12",
            "tickets imported: 2",
            "tickets refused: 1",
            "events appended: 10",
        ] {
            assert!(r.stdout.contains(s), "{engine:?}: says {s:?}: {r:?}");
        }
        assert!(r.stderr.contains("1 bad line(s)"), "{r:?}");

        // L-1: every step, at the line's time, by the line's actor.
        let l1 = stream(&db.url, "L-1", "2026-09-29T02:00:00Z").await;
        let types: Vec<&str> = l1.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "TicketAccepted",
                "TicketAssigned",
                "TicketSigned",
                "TicketHandled",
                "VerificationPassed",
                "CitizenFeedbackRecorded",
                "TicketClosed"
            ],
            "{engine:?}"
        );
        let times: Vec<DateTime<Utc>> = l1.iter().map(|e| e.occurred_at).collect();
        let expected: Vec<DateTime<Utc>> = [0, 2, 4, 6, 8, 9, 10]
            .iter()
            .map(|&i| {
                let v: Value = serde_json::from_str(&lines[i]).expect("json");
                at(v["at"].as_str().expect("at"))
            })
            .collect();
        assert_eq!(times, expected, "{engine:?}: occurred_at is each line's at");
        let actors: Vec<&str> = l1
            .iter()
            .map(|e| e.metadata["actor"].as_str().expect("actor"))
            .collect();
        assert_eq!(
            actors,
            [
                "王话务",
                "李派单",
                "钱承办",
                "钱承办",
                "李派单",
                "王话务",
                "李派单"
            ]
        );
        assert_eq!(l1[2].metadata["unit"], "zhzf");
        assert!(
            l1[0].data["number"]
                .as_str()
                .is_some_and(|n| n.starts_with("20260929-")),
            "numbered by the day it was accepted: {}",
            l1[0].data
        );
        // Dispatched on Wednesday 2026-09-30: the National Day holiday (Oct 1-7) does
        // not count. Sign within 1 working day: Thursday Oct 8; handle within 5:
        // Oct 8, 9, 10 (an adjusted working Saturday), 12, 13; each at 24:00 Shanghai.
        assert_eq!(
            at(l1[1].data["sign_due_at"].as_str().expect("sign due")),
            at("2026-10-08T16:00:00Z"),
            "{}",
            l1[1].data
        );
        assert_eq!(
            at(l1[1].data["handle_due_at"].as_str().expect("handle due")),
            at("2026-10-13T16:00:00Z"),
            "{}",
            l1[1].data
        );

        // L-3: accepted and handled in one line, related to L-1 by its reference.
        let l3 = stream(&db.url, "L-3", "2026-10-09T01:00:00Z").await;
        let types: Vec<&str> = l3.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(
            types,
            ["TicketAccepted", "TicketHandled", "VerificationPassed"],
            "{engine:?}"
        );
        assert_eq!(
            l3[0].data["related_to"],
            json!(l1[0].stream_id.to_string()),
            "the reference L-1 became L-1's id"
        );
        assert_eq!(
            l3[0].data["centre"], "hg",
            "a grid report waits at its township"
        );
        assert_eq!(l3[2].occurred_at, at("2026-10-09T05:00:00Z"));

        // L-2 had a bad line: none of its lines are in, not even the good ones before it.
        assert!(
            stream(&db.url, "L-2", "2026-09-29T03:00:00Z")
                .await
                .is_empty(),
            "{engine:?}"
        );
        assert_eq!(count_events(&db.url).await, 10, "{engine:?}");

        // The same file again: nothing new.
        let again = import(&db.url, &file).await;
        assert!(!again.ok, "L-2 is still bad: {again:?}");
        for s in [
            "tickets imported: 0",
            "tickets already imported: 2",
            "lines already imported: 9",
            "tickets refused: 1",
            "events appended: 0",
            "line 4: ticket L-2: 409",
        ] {
            assert!(
                again.stdout.contains(s),
                "{engine:?}: says {s:?}: {again:?}"
            );
        }
        assert_eq!(
            count_events(&db.url).await,
            10,
            "{engine:?}: nothing appended"
        );

        // The file fixed (L-2's bad line dropped) and extended at the end of L-3's
        // history: L-2 goes in whole, L-3 gets just its new line.
        let mut fixed: Vec<String> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 3)
            .map(|(_, l)| l.clone())
            .collect();
        fixed.push(line(
            "L-3",
            "2026-10-20T01:00:00Z",
            HG_DISP,
            "comment",
            json!({"text": "复查无反弹"}),
        ));
        let file = write(&dir, "legacy-fixed.ndjson", &fixed);
        let third = import(&db.url, &file).await;
        assert!(third.ok, "{engine:?}: {third:?}");
        for s in [
            "lines read: 12",
            "lines applied: 3",
            "lines already imported: 9",
            "tickets imported: 2",
            "tickets already imported: 1",
            "tickets refused: 0",
            "events appended: 3",
        ] {
            assert!(
                third.stdout.contains(s),
                "{engine:?}: says {s:?}: {third:?}"
            );
        }
        let l2 = stream(&db.url, "L-2", "2026-09-29T03:00:00Z").await;
        assert_eq!(l2.len(), 2, "{engine:?}");
        assert_eq!(l2[1].occurred_at, at("2026-10-12T03:00:00Z"));
        let l3 = stream(&db.url, "L-3", "2026-10-09T01:00:00Z").await;
        assert_eq!(l3.len(), 4, "{engine:?}");
        assert_eq!(l3[3].event_type, "TicketCommented");
        assert_eq!(count_events(&db.url).await, 13, "{engine:?}");
        // Imported through the store: every chain, view and the tally check out.
        let v = yiwang(&db.url, &["verify"]).await;
        assert!(v.ok, "{engine:?}: {v:?}");
        assert!(v.stdout.contains("verified 13 events"), "{v:?}");
        db.drop_db().await;
    }
}

#[tokio::test]
async fn unreadable_lines_are_named_by_number_and_the_rest_goes_in() {
    for engine in engines().await {
        let db = TestDb::new(engine).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let good = line("M-1", "2026-11-02T02:00:00Z", HOT, "create", complaint());
        let lines = vec![
            good,
            String::new(),
            r#"{"ticket": "M-2", "at": "2026-11-02T03:00:00Z", "actor": "#.to_string(),
            line("M-3", "2026-11-02T04:00:00Z", HOT, "create", complaint()),
            line(
                "M-3",
                "2026-11-02T05:00:00Z",
                DISP,
                "dispatch",
                json!({"unit": "zhzf"}),
            ),
            line(
                "M-4",
                "2026-11-02T06:00:00Z",
                HOT,
                "create",
                json!({"source": "hotline"}),
            ),
            line(
                "M-5",
                "2026-11-02T07:00:00Z",
                ("王五", "boss", "etdz"),
                "create",
                complaint(),
            ),
            line("M-6", "2026-11-02T08:00:00Z", HOT, "create", complaint()),
            line(
                "M-6",
                "2026-11-02T07:00:00Z",
                DISP,
                "assign",
                json!({"unit": "zhzf"}),
            ),
            line(
                "M-7",
                "2026-11-02T09:00:00Z",
                HOT,
                "create",
                json!({
                    "source": "hotline", "category": "city.exposed_garbage", "title": "t",
                    "location": {"grid": "hg-01-g01"}, "related_to": "M-404"
                }),
            ),
        ];
        let file = write(&dir, "broken.ndjson", &lines);
        let r = import(&db.url, &file).await;
        assert!(!r.ok, "{r:?}");
        for s in [
            "line 3: not valid JSON: EOF while parsing a value at column",
            "line 5: ticket M-3: action: unknown action \"dispatch\"; actions are create, assign,",
            "line 6: ticket M-4: 422 body.category: missing field `category`",
            "line 7: ticket M-5: actor.role: unknown role \"boss\"",
            "line 9: ticket M-6: at 2026-11-02T07:00:00Z is before the at of line 8",
            "line 10: ticket M-7: 422 body.related_to: \"M-404\" is neither a ticket of this file nor a ticket id",
            "lines read: 9",
            "tickets imported: 1",
            "tickets refused: 5",
            "events appended: 1",
        ] {
            assert!(r.stdout.contains(s), "{engine:?}: says {s:?}: {r:?}");
        }
        assert_eq!(
            stream(&db.url, "M-1", "2026-11-02T02:00:00Z").await.len(),
            1,
            "{engine:?}"
        );
        assert_eq!(count_events(&db.url).await, 1, "{engine:?}");
        db.drop_db().await;
    }
}

async fn import_jobs(url: &str, file: &std::path::Path, jobs: &str) -> Run {
    let file = file.display().to_string();
    yiwang(url, &["import", "--jobs", jobs, &file]).await
}

/// Forty repeat complaints, each naming the one before it, imported eight at a time:
/// each waits for the ticket it names, so the whole chain goes in. A ticket naming
/// a refused one is refused as the live API refuses it, and a ticket named before
/// its own first line is judged by whether it was there before the run, as a run in
/// file order judges it.
#[tokio::test]
async fn a_chain_of_related_tickets_goes_in_whole_with_eight_jobs() {
    for engine in engines().await {
        let db = TestDb::new(engine).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let base = at("2026-11-02T02:00:00Z");
        let when = |minutes: i64| {
            (base + chrono::Duration::minutes(minutes))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        let n = 40;
        let mut lines = Vec::new();
        for i in 1..=n {
            let mut body = complaint();
            if i > 1 {
                body["related_to"] = json!(format!("C-{}", i - 1));
            }
            let r = format!("C-{i}");
            lines.push(line(&r, &when(2 * i), HOT, "create", body));
            lines.push(line(
                &r,
                &when(2 * i + 1),
                DISP,
                "assign",
                json!({"unit": "zhzf"}),
            ));
        }
        let related = |r: &str| {
            let mut b = complaint();
            b["related_to"] = json!(r);
            b
        };
        lines.push(line("B-1", &when(200), HOT, "create", complaint()));
        lines.push(line(
            "B-1",
            &when(201),
            DISP,
            "verify",
            json!({"passed": true, "note": "?"}),
        ));
        lines.push(line("B-2", &when(202), HOT, "create", related("B-1")));
        lines.push(line("F-1", &when(203), HOT, "create", related("F-2")));
        lines.push(line("F-2", &when(204), HOT, "create", complaint()));
        let file = write(&dir, "chain.ndjson", &lines);

        let r = import_jobs(&db.url, &file, "8").await;
        assert!(!r.ok, "{r:?}");
        let (b2, f1) = (2 * n + 3, 2 * n + 4);
        for s in [
            format!("line {b2}: ticket B-2: 404: related_to names no ticket "),
            format!("line {f1}: ticket F-1: 404: related_to names no ticket "),
            "tickets imported: 41".to_string(),
            "tickets refused: 3".to_string(),
            format!("events appended: {}", 2 * n + 1),
        ] {
            assert!(r.stdout.contains(&s), "{engine:?}: says {s:?}: {r:?}");
        }
        for i in 2..=n {
            let s = stream(&db.url, &format!("C-{i}"), &when(2 * i)).await;
            assert_eq!(s.len(), 2, "{engine:?} C-{i}");
            let before = yiwang::import::ticket_id(&format!("C-{}", i - 1), at(&when(2 * (i - 1))))
                .expect("id");
            assert_eq!(
                s[0].data["related_to"],
                json!(before.to_string()),
                "{engine:?}: C-{i} is related to C-{}",
                i - 1
            );
        }

        // Again: nothing new for what went in; F-2 was there before this run, so
        // F-1 now goes in.
        let r = import_jobs(&db.url, &file, "8").await;
        for s in [
            "tickets imported: 1",
            "tickets already imported: 41",
            "tickets refused: 2",
            "events appended: 1",
        ] {
            assert!(r.stdout.contains(s), "{engine:?}: says {s:?}: {r:?}");
        }
        assert_eq!(count_events(&db.url).await, 2 * n + 2, "{engine:?}");
        db.drop_db().await;
    }
}
