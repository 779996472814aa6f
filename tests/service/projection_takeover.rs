//! Issue 4 item 1: "With several `serve` processes on one PostgreSQL each
//! projection runs in exactly one of them at a time, and another takes over when
//! it dies", with real processes: two `yiwang serve` on one database; one runs
//! `unit_stats` and the other stands by (as `/readyz` says); the runner is killed
//! with SIGKILL; the other takes over within the lease's time and applies what
//! came after, and every event is counted exactly once.

use crate::support;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use yiwang::auth::Role;

use support::{TestDb, engines, ticket_body};

/// The lease lasts 15 s; a take-over must come within it and a little more.
const TAKEOVER: Duration = Duration::from_secs(40);

struct Serve {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    async fn start(url: &str, dir: &std::path::Path, name: &str) -> Serve {
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = dir.join(format!("{name}.log"));
            let child = std::process::Command::new(env!("CARGO_BIN_EXE_yiwang"))
                .args([
                    "--database-url",
                    url,
                    "serve",
                    "--addr",
                    &format!("127.0.0.1:{port}"),
                ])
                .env_remove("YIWANG_DATABASE_URL")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
                .spawn()
                .expect("start yiwang serve");
            let mut s = Serve {
                child,
                base: format!("http://127.0.0.1:{port}"),
                log,
            };
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(20) {
                if s.child.try_wait().unwrap().is_some() {
                    break; // the port was taken meanwhile: try another
                }
                if reqwest::get(format!("{}/healthz", s.base)).await.is_ok() {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = s.child.kill();
        }
        panic!("yiwang serve did not start");
    }

    async fn projection_state(&self) -> Option<String> {
        let r = reqwest::get(format!("{}/readyz", self.base)).await.ok()?;
        let v: Value = r.json().await.ok()?;
        v["projections"]["unit_stats"]["state"]
            .as_str()
            .map(str::to_string)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

async fn post(c: &reqwest::Client, base: &str, tok: &str, path: &str, body: Value) -> Value {
    let r = c
        .post(format!("{base}{path}"))
        .bearer_auth(tok)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

/// A ticket accepted and assigned to zhzf through `base`.
async fn assigned_ticket(c: &reqwest::Client, base: &str, hot: &str, disp: &str) {
    let t = post(c, base, hot, "/api/v1/tickets", ticket_body()).await;
    let id = t["id"].as_str().unwrap();
    post(
        c,
        base,
        disp,
        &format!("/api/v1/tickets/{id}/assign"),
        json!({"unit": "zhzf"}),
    )
    .await;
}

async fn received(c: &reqwest::Client, base: &str, tok: &str) -> u64 {
    let r = c
        .get(format!(
            "{base}/api/v1/stats/units?unit=zhzf&granularity=year"
        ))
        .bearer_auth(tok)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    v["items"][0]["received"].as_u64().unwrap_or(0)
}

async fn wait_for<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what}: not within {limit:?}");
}

#[tokio::test]
async fn another_process_takes_over_a_projection_when_its_runner_dies() {
    for engine in engines().await {
        let db = TestDb::new(engine).await;
        let store = yiwang::store::open(&db.url, true).await.unwrap();
        yiwang::org::save(
            &store.pool(),
            include_str!("../../schema/reference/demo-org.json"),
            "demo",
        )
        .await
        .unwrap()
        .unwrap();
        let pool = store.pool();
        let hot = yiwang::auth::create_token(&pool, "hot", Role::HotlineAgent, "etdz")
            .await
            .unwrap()
            .1;
        let disp = yiwang::auth::create_token(&pool, "disp", Role::Dispatcher, "etdz")
            .await
            .unwrap()
            .1;
        let analyst = yiwang::auth::create_token(&pool, "ana", Role::Analyst, "etdz")
            .await
            .unwrap()
            .1;
        // The processes' logs stay in target/ for a failed run to be read.
        let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("takeover-{engine:?}"));
        std::fs::create_dir_all(&dir).unwrap();
        let c = reqwest::Client::new();

        let a = Serve::start(&db.url, &dir, "a").await;
        let b = Serve::start(&db.url, &dir, "b").await;
        let mut servers = vec![a, b];
        // Exactly one runs the projection; the other stands by.
        let started = Instant::now();
        let states = loop {
            let mut states = Vec::new();
            for s in &servers {
                states.push(s.projection_state().await.unwrap_or_default());
            }
            let mut sorted = states.clone();
            sorted.sort();
            if sorted == ["running", "standby"] {
                break states;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "one running, one standby: {states:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let leader = states.iter().position(|s| s == "running").unwrap();

        assigned_ticket(&c, &servers[leader].base, &hot, &disp).await;
        let base = servers[1 - leader].base.clone();
        wait_for(
            "the leader applied the first ticket",
            Duration::from_secs(20),
            || {
                let (c, base, analyst) = (&c, &base, &analyst);
                async move { received(c, base, analyst).await == 1 }
            },
        )
        .await;

        // SIGKILL the runner; commands go on through the survivor.
        let dead = servers.remove(leader);
        drop(dead);
        let survivor = servers.pop().unwrap();
        assigned_ticket(&c, &survivor.base, &hot, &disp).await;
        assigned_ticket(&c, &survivor.base, &hot, &disp).await;
        wait_for(
            "the survivor took over and applied the rest",
            TAKEOVER,
            || {
                let (c, s, analyst) = (&c, &survivor, &analyst);
                async move {
                    s.projection_state().await.as_deref() == Some("running")
                        && received(c, &s.base, analyst).await == 3
                }
            },
        )
        .await;
        // Counted once each: no event applied twice across the take-over. Not a
        // pause and a look: one more ticket goes in, and once the projection's
        // checkpoint has passed it (so every batch since the take-over has been
        // applied), the count is exactly one more.
        assigned_ticket(&c, &survivor.base, &hot, &disp).await;
        let head = support::max_position(&pool).await;
        wait_for("the survivor applied the last ticket", TAKEOVER, || {
            let pool = pool.clone();
            async move {
                yiwang::repo::projections::read_checkpoint(&pool, "unit_stats", 0)
                    .await
                    .is_ok_and(|p| p >= head)
            }
        })
        .await;
        assert_eq!(
            received(&c, &survivor.base, &analyst).await,
            4,
            "{}",
            survivor.log_text()
        );
        drop(survivor);
        // A process started on a caught-up database reports where the projection
        // stands, though it has applied nothing itself.
        let last = store
            .read_all(0, 1000)
            .await
            .unwrap()
            .last()
            .unwrap()
            .position;
        let fresh = Serve::start(&db.url, &dir, "c").await;
        wait_for("the new process reports the checkpoint", TAKEOVER, || {
            let base = fresh.base.clone();
            async move {
                let r = reqwest::get(format!("{base}/readyz")).await;
                let v: Value = match r {
                    Ok(r) => r.json().await.unwrap_or_default(),
                    Err(_) => return false,
                };
                v["projections"]["unit_stats"]["checkpoint"].as_i64() == Some(last)
            }
        })
        .await;
        drop(fresh);
        drop(store);
        db.drop_db().await;
    }
}
