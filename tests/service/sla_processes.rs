//! Issue 3 item 5, "Two `serve` processes on one PostgreSQL emit each SlaWarning /
//! SlaBreached exactly once", proved with real processes: the `yiwang` binary,
//! as an operator runs it.
//!
//! One `serve` at the real time takes six tickets (two of them signed). Then,
//! three times, TWO `serve` processes, started together, run on the same
//! database with a 1 s SLA round and business time shifted
//! (`YIWANG_CLOCK_OFFSET_SECS`) to two seconds before the sign warnings (80% of
//! the sign time), before the handle warnings (the sign deadlines passed), and
//! before the handle deadlines. After each pair the log holds exactly the SLA
//! events due by then; at the end every ticket has one warning and one breach per
//! deadline it should have, its versions are contiguous, its hash chain is
//! intact, and the events the processes' own logs say they appended add up to
//! the events in the store: none was appended twice, none went in unreported.
//!
//! Both engines run. Two processes on one SQLite file are a legitimate setup
//! (each append is a `BEGIN IMMEDIATE` transaction, which serialises writers
//! across processes; the busy timeout makes the other one wait).

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;
use yiwang::store::{self, Store, hash};

use support::{Engine, TestDb, engines, ticket_body};

/// How long any one wait may take before the test gives up.
const WAIT: StdDuration = StdDuration::from_secs(20);
/// Rounds each process must run after the log reached the expected events (the
/// later rounds must find nothing more to append).
const MORE_ROUNDS: usize = 3;
/// Slack around the chosen business instants: the real seconds the test itself
/// takes move business time along, and the tickets were assigned seconds apart.
fn margin() -> Duration {
    Duration::minutes(10)
}

/// One SLA event of a stream: (type, deadline, due_at).
type Sla = (String, String, DateTime<Utc>);

fn warning(kind: &str, due: DateTime<Utc>) -> Sla {
    ("SlaWarning".into(), kind.into(), due)
}

fn breached(kind: &str, due: DateTime<Utc>) -> Sla {
    ("SlaBreached".into(), kind.into(), due)
}

fn time_of(v: &Value) -> DateTime<Utc> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("not a time: {s}: {e}"))
        .with_timezone(&Utc)
}

/// 80% of the way from `start` to `due`, where the watcher warns by default.
fn at_80(start: DateTime<Utc>, due: DateTime<Utc>) -> DateTime<Utc> {
    start + (due - start) * 4 / 5
}

/// A `yiwang serve` child process; killed (and reaped) when dropped, so that no
/// exit path of the test, a failed assertion included, leaves one running.
struct Serve {
    name: String,
    child: Child,
    log: PathBuf,
    base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// Starts `yiwang serve` on a free loopback port with business time shifted by
    /// `offset_secs`, its JSON log (watcher rounds at debug) in `dir/name.log`;
    /// does not wait for it (see [`Serve::ready`]).
    fn spawn(url: &str, offset_secs: i64, dir: &Path, name: &str) -> Serve {
        let log = dir.join(format!("{name}.log"));
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
            l.local_addr().expect("local addr").port()
        };
        let file = std::fs::File::create(&log).expect("create the log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_yiwang"))
            .args(["--database-url", url, "--log-format", "json", "serve"])
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .args(["--sla-interval-secs", "1"])
            .env_remove("YIWANG_DATABASE_URL")
            .env("YIWANG_CLOCK_OFFSET_SECS", offset_secs.to_string())
            .env("RUST_LOG", "info,yiwang::sla::watcher=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("start yiwang serve");
        Serve {
            name: name.to_string(),
            child,
            log,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Waits until the process answers `/healthz`: true. False when it exited
    /// because its port was taken meanwhile (found free, then grabbed by someone
    /// else); any other exit, or no answer within [`WAIT`], fails the test.
    async fn ready(&mut self) -> bool {
        let client = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < WAIT {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let log = self.log_text();
                if log.contains("cannot listen") {
                    return false;
                }
                panic!("{} exited with {status}:\n{log}", self.name);
            }
            let ok = client
                .get(format!("{}/healthz", self.base))
                .timeout(StdDuration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return true;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
        panic!(
            "{} did not answer within {WAIT:?}:\n{}",
            self.name,
            self.log_text()
        );
    }

    /// Starts processes named `names` at once (so that their watchers' rounds run
    /// at about the same moments) and waits until all answer.
    async fn start_all(url: &str, offset_secs: i64, dir: &Path, names: &[&str]) -> Vec<Serve> {
        let mut all: Vec<Serve> = names
            .iter()
            .map(|n| Serve::spawn(url, offset_secs, dir, n))
            .collect();
        for s in &mut all {
            let mut attempts = 1;
            while !s.ready().await {
                assert!(attempts < 3, "{}: no free port in 3 attempts", s.name);
                attempts += 1;
                *s = Serve::spawn(url, offset_secs, dir, &s.name.clone());
            }
        }
        all
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The JSON lines of the log whose message is `msg`.
    fn lines(&self, msg: &str) -> Vec<Value> {
        lines_of(&self.log_text(), msg)
    }

    fn rounds(&self) -> usize {
        self.lines("SLA watcher round done").len()
    }

    /// Stops the process (SIGKILL: the test only stops a process once its watcher
    /// has nothing left to append) and hands back what it logged.
    fn stop(self) -> Log {
        let name = self.name.clone();
        let path = self.log.clone();
        drop(self);
        Log {
            name,
            text: std::fs::read_to_string(path).unwrap_or_default(),
        }
    }
}

/// The JSON lines of `text` whose message is `msg`.
fn lines_of(text: &str, msg: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == msg)
        .collect()
}

/// What a stopped process logged.
struct Log {
    name: String,
    text: String,
}

impl Log {
    /// The SLA events this process says it appended.
    fn appended(&self) -> usize {
        lines_of(&self.text, "SLA events appended")
            .iter()
            .map(|v| {
                let s = v["events"].as_str().unwrap_or("");
                s.matches("SlaWarning(").count() + s.matches("SlaBreached(").count()
            })
            .sum()
    }

    fn lost_races(&self) -> usize {
        lines_of(
            &self.text,
            "SLA append lost a race; deciding again from the stream",
        )
        .len()
    }

    fn rounds(&self) -> usize {
        lines_of(&self.text, "SLA watcher round done").len()
    }
}

/// One run of the binary for a setup subcommand; its stdout.
async fn yiwang(url: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_yiwang"))
        .args(["--database-url", url, "--log-format", "pretty"])
        .args(args)
        .env_remove("YIWANG_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run the yiwang binary");
    assert!(
        out.status.success(),
        "yiwang {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A token made with `yiwang token create` (printed as the last stdout line).
async fn token(url: &str, user: &str, role: &str, unit: &str) -> String {
    let out = yiwang(
        url,
        &[
            "token", "create", "--user", user, "--role", role, "--unit", unit,
        ],
    )
    .await;
    let t = out.lines().last().expect("a token line").trim().to_string();
    assert!(t.starts_with("yw_"), "{out}");
    t
}

async fn post(base: &str, path: &str, token: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("a JSON answer");
    assert!(
        status == 200 || status == 201,
        "POST {path}: {status} {body}"
    );
    body
}

/// A ticket as the one `serve` at the real time left it.
struct Ticket {
    id: Uuid,
    assigned_at: DateTime<Utc>,
    sign_due: DateTime<Utc>,
    handle_due: DateTime<Utc>,
    signed: bool,
}

/// The SLA events of a stream, in order.
async fn sla_of(s: &Store, id: Uuid) -> Vec<Sla> {
    s.read_stream(id)
        .await
        .expect("read stream")
        .into_iter()
        .filter(|e| e.event_type == "SlaWarning" || e.event_type == "SlaBreached")
        .map(|e| {
            let kind = e.data["deadline"].as_str().expect("deadline").to_string();
            (e.event_type, kind, time_of(&e.data["due_at"]))
        })
        .collect()
}

fn sorted(mut v: Vec<Sla>) -> Vec<Sla> {
    v.sort();
    v
}

/// One pair of `serve` processes: where business time starts and what the log
/// must hold once they have run.
struct Phase<'a> {
    name: &'a str,
    /// Business time when the processes start.
    start: DateTime<Utc>,
    expected: &'a BTreeMap<Uuid, Vec<Sla>>,
}

/// Runs two `serve` processes, started at once with business time at
/// `phase.start`, until every ticket's SLA events are `phase.expected` (in any
/// order) and each process has run [`MORE_ROUNDS`] more rounds; then stops both
/// and returns their logs.
async fn two_processes(
    engine: Engine,
    url: &str,
    s: &Store,
    dir: &Path,
    phase: &Phase<'_>,
) -> Vec<Log> {
    let name = phase.name;
    let offset = (phase.start - Utc::now()).num_seconds();
    let both = Serve::start_all(
        url,
        offset,
        dir,
        &[&format!("{name}-a"), &format!("{name}-b")],
    )
    .await;
    for p in &both {
        assert_eq!(
            p.lines("SLA watcher started").len(),
            1,
            "{}: {}",
            p.name,
            p.log_text()
        );
        let shifted = p.lines(
            "business time is shifted from the system clock (YIWANG_CLOCK_OFFSET_SECS): a test or drill setting",
        );
        assert_eq!(shifted.len(), 1, "{}: the offset is warned about", p.name);
        assert_eq!(shifted[0]["offset_secs"], offset);
    }
    let logs_of = |both: &[Serve]| {
        both.iter()
            .map(|p| format!("--- {}\n{}", p.name, p.log_text()))
            .collect::<String>()
    };

    let want: BTreeMap<Uuid, Vec<Sla>> = phase
        .expected
        .iter()
        .map(|(id, v)| (*id, sorted(v.clone())))
        .collect();
    let started = Instant::now();
    loop {
        let mut got = BTreeMap::new();
        for id in want.keys() {
            got.insert(*id, sorted(sla_of(s, *id).await));
        }
        if got == want {
            break;
        }
        let too_many = got.iter().any(|(id, v)| v.len() > want[id].len());
        assert!(
            !too_many && started.elapsed() < WAIT,
            "{engine:?} {name}: after {:?} the SLA events are\n{got:#?}\nnot\n{want:#?}\n{}",
            started.elapsed(),
            logs_of(&both)
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let reached = started.elapsed();

    // A few more rounds of both, which must add nothing.
    let before: Vec<usize> = both.iter().map(Serve::rounds).collect();
    let more = Instant::now();
    while both
        .iter()
        .zip(&before)
        .any(|(p, n)| p.rounds() < n + MORE_ROUNDS)
    {
        assert!(
            more.elapsed() < WAIT,
            "{engine:?} {name}: the watchers stopped running rounds\n{}",
            logs_of(&both)
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    for (id, v) in &want {
        assert_eq!(
            &sorted(sla_of(s, *id).await),
            v,
            "{engine:?} {name}: later rounds appended more to {id}"
        );
    }
    let logs: Vec<Log> = both.into_iter().map(Serve::stop).collect();
    eprintln!(
        "{engine:?} {name} (business time from {}, offset {offset} s): all due events in the log after {reached:?}; {}",
        phase.start,
        logs.iter()
            .map(|l| format!(
                "{} ran {} rounds, appended {}, lost {} race(s)",
                l.name,
                l.rounds(),
                l.appended(),
                l.lost_races()
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    logs
}

/// How long after a pair starts its business time crosses the phase's points:
/// the first rounds find nothing new, then both processes find the same events
/// due in rounds about a second apart, ticking about together.
fn lead() -> Duration {
    Duration::seconds(2)
}

#[tokio::test]
async fn two_serve_processes_append_each_warning_and_breach_exactly_once() {
    for engine in engines().await {
        let began = Instant::now();
        let db = TestDb::new(engine).await;
        let url = db.url.clone();
        let dir = tempfile::tempdir().expect("a folder for the logs");

        yiwang(&url, &["migrate"]).await;
        yiwang(&url, &["org", "load", "--demo"]).await;
        let hot = token(&url, "王接线", "hotline_agent", "etdz").await;
        let disp = token(&url, "李调度", "dispatcher", "etdz").await;
        let hand = token(&url, "钱工", "handler", "zhzf").await;

        // One process at the real time: six tickets to the city management bureau,
        // two of them signed for at once.
        let mut setup = Serve::start_all(&url, 0, dir.path(), &["setup"]).await;
        let base = setup[0].base.clone();
        let mut tickets = vec![];
        for i in 0..6 {
            let t = post(&base, "/api/v1/tickets", &hot, ticket_body()).await;
            let id = t["id"].as_str().expect("id").to_string();
            let path = format!("/api/v1/tickets/{id}");
            let t = post(
                &base,
                &format!("{path}/assign"),
                &disp,
                json!({"unit": "zhzf"}),
            )
            .await;
            assert_eq!(t["state"], "assigned", "{t}");
            assert_eq!(t["urgency"], "normal", "{t}");
            let signed = i < 2;
            if signed {
                let s = post(
                    &base,
                    &format!("{path}/sign"),
                    &hand,
                    json!({"handler": "钱工"}),
                )
                .await;
                assert_eq!(s["deadlines"]["sign"], "met", "{s}");
            }
            tickets.push(Ticket {
                id: Uuid::parse_str(&id).expect("uuid"),
                // The assignment is the ticket's last change in the answer to it.
                assigned_at: time_of(&t["updated_at"]),
                sign_due: time_of(&t["deadlines"]["sign_due_at"]),
                handle_due: time_of(&t["deadlines"]["handle_due_at"]),
                signed,
            });
        }
        let mut logs = vec![setup.pop().expect("one").stop()];

        // Business instants from the deadlines the service returned (the sign
        // deadline is the end, 24:00 Asia/Shanghai, of the next working day, so the
        // spans depend on today's date and the calendar). Each pair starts `lead`
        // before the last of its points, so the events cross while both run.
        let unsigned: Vec<&Ticket> = tickets.iter().filter(|t| !t.signed).collect();
        let latest = |f: &dyn Fn(&Ticket) -> DateTime<Utc>| {
            tickets.iter().map(f).max().expect("six tickets")
        };
        let earliest = |f: &dyn Fn(&Ticket) -> DateTime<Utc>| {
            tickets.iter().map(f).min().expect("six tickets")
        };
        let sign_warning = unsigned
            .iter()
            .map(|t| at_80(t.assigned_at, t.sign_due))
            .max()
            .expect("four unsigned")
            - lead();
        let handle_warning = latest(&|t| at_80(t.assigned_at, t.handle_due)) - lead();
        let handle_breach = latest(&|t| t.handle_due) - lead();
        // Each pair's business time, up to `margin` after its start, lies inside the
        // windows the phase is about (this holds unless the six assignments
        // straddle midnight in Shanghai, a second apart).
        assert!(
            sign_warning + margin() < earliest(&|t| t.sign_due)
                && sign_warning + margin() < earliest(&|t| at_80(t.assigned_at, t.handle_due)),
            "the sign warnings ({sign_warning}) fall before any deadline or handle warning"
        );
        assert!(
            latest(&|t| t.sign_due) < handle_warning
                && handle_warning + margin() < earliest(&|t| t.handle_due),
            "the handle warnings ({handle_warning}) fall after the sign deadlines and before the handle deadlines"
        );

        // What the log must hold after each pair.
        let mut expected: BTreeMap<Uuid, Vec<Sla>> =
            tickets.iter().map(|t| (t.id, vec![])).collect();
        for t in &unsigned {
            expected
                .get_mut(&t.id)
                .expect("listed")
                .push(warning("sign", t.sign_due));
        }
        let s = store::open(&url, false).await.expect("open the store");
        let phase = Phase {
            name: "sign-warning",
            start: sign_warning,
            expected: &expected,
        };
        logs.extend(two_processes(engine, &url, &s, dir.path(), &phase).await);

        for t in &tickets {
            let e = expected.get_mut(&t.id).expect("listed");
            if !t.signed {
                e.push(breached("sign", t.sign_due));
            }
            e.push(warning("handle", t.handle_due));
        }
        let phase = Phase {
            name: "handle-warning",
            start: handle_warning,
            expected: &expected,
        };
        logs.extend(two_processes(engine, &url, &s, dir.path(), &phase).await);

        for t in &tickets {
            expected
                .get_mut(&t.id)
                .expect("listed")
                .push(breached("handle", t.handle_due));
        }
        let phase = Phase {
            name: "past-both",
            start: handle_breach,
            expected: &expected,
        };
        logs.extend(two_processes(engine, &url, &s, dir.path(), &phase).await);

        // The whole log, ticket by ticket.
        let mut total = 0;
        for t in &tickets {
            let evs = s.read_stream(t.id).await.expect("read stream");
            let types: Vec<&str> = evs.iter().map(|e| e.event_type.as_str()).collect();
            let want: &[&str] = if t.signed {
                &[
                    "TicketAccepted",
                    "TicketAssigned",
                    "TicketSigned",
                    "SlaWarning",
                    "SlaBreached",
                ]
            } else {
                &[
                    "TicketAccepted",
                    "TicketAssigned",
                    "SlaWarning",
                    "SlaBreached",
                    "SlaWarning",
                    "SlaBreached",
                ]
            };
            assert_eq!(types, want, "{engine:?} {}", t.id);
            let sla = sla_of(&s, t.id).await;
            assert_eq!(
                sla, expected[&t.id],
                "{engine:?} {}: one of each, in order",
                t.id
            );
            total += sla.len();

            // Contiguous versions, an intact hash chain, and the view at the head.
            assert_eq!(
                evs.iter().map(|e| e.version).collect::<Vec<_>>(),
                (1..=evs.len() as i64).collect::<Vec<_>>(),
                "{engine:?} {}",
                t.id
            );
            assert_eq!(evs[0].prev_hash, hash::GENESIS);
            for w in evs.windows(2) {
                assert_eq!(w[1].prev_hash, w[0].hash, "{engine:?} {}: chain", t.id);
            }
            for e in &evs {
                assert_eq!(hash::recompute(e), e.hash, "{engine:?} {}: hash", t.id);
            }
            let view = yiwang::repo::tickets::ticket_view(&s.pool(), t.id)
                .await
                .expect("view")
                .expect("a view row");
            assert_eq!(view.version, evs.len() as i64, "{engine:?} {}", t.id);
            assert_eq!(view.head_hash, evs[evs.len() - 1].hash);
            assert_eq!(evs[1].occurred_at, t.assigned_at, "the assignment time");

            // Each decided by a watcher at the business time of its pair.
            for e in evs.iter().filter(|e| e.event_type.starts_with("Sla")) {
                assert_eq!(e.metadata["actor"], "sla-watcher");
                assert_eq!(e.metadata["role"], "system");
                let due = time_of(&e.data["due_at"]);
                let pair_started = match (e.event_type.as_str(), e.data["deadline"].as_str()) {
                    ("SlaWarning", Some("sign")) => sign_warning,
                    ("SlaBreached", Some("handle")) => handle_breach,
                    _ => handle_warning,
                };
                assert!(
                    // (The offset is whole seconds: a pair may start a second early.)
                    e.occurred_at > pair_started - Duration::seconds(2)
                        && e.occurred_at < pair_started + margin(),
                    "{engine:?}: {} at {}, not in the pair from {pair_started}",
                    e.event_type,
                    e.occurred_at
                );
                if e.event_type == "SlaWarning" {
                    assert!(e.occurred_at <= due);
                } else {
                    assert!(e.occurred_at > due);
                }
            }
        }
        assert_eq!(total, 4 * 4 + 2 * 2, "{engine:?}");

        // Every SLA event in the store is one that a process says it appended: no
        // append went in twice, and none went in unreported.
        let reported: usize = logs.iter().map(Log::appended).sum();
        assert_eq!(
            reported,
            total,
            "{engine:?}: {}",
            logs.iter()
                .map(|l| format!("{}: {}", l.name, l.appended()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        drop(s);
        db.drop_db().await;
        eprintln!(
            "{engine:?}: setup and three pairs of serve processes in {:?}",
            began.elapsed()
        );
    }
}
