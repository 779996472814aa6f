//! The `rolling` scenario (issue 23): two instances on one PostgreSQL behind a load
//! balancer that health-checks `/readyz`, as HAProxy's `option httpchk GET /readyz`
//! or a cloud load balancer does, and a rolling restart under the mix: each instance
//! in turn gets SIGTERM, drains (its `/readyz` answers 503 while it still serves,
//! so the balancer takes it out before it stops listening), exits 0, and is started
//! again and put back once ready. Nothing may be lost on the way: no connection
//! refused or reset, no 5xx (503 included), no read failed, every SSE subscriber
//! resumes where it was, and the usual check finds every acknowledged command in
//! the log exactly once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::{EngineArg, FaultArgs, Outcome, Plan, http_client, load_for, prepare};
use crate::mix::Fleet;

/// How often the balancer asks each instance's `/readyz` (HAProxy's `inter`).
const CHECK_EVERY: Duration = Duration::from_millis(100);
/// How long one health check may take before the instance counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_millis(1000);

/// The balancer's health checks: every [`CHECK_EVERY`], each instance's `/readyz`;
/// the mix is sent to those that answered 200.
struct Balancer {
    task: tokio::task::JoinHandle<()>,
    /// The instances the mix is sent to now.
    ready: Arc<Mutex<Vec<String>>>,
    /// `/readyz` answers 503 seen (an instance draining).
    saw_503: Arc<AtomicU64>,
    /// Health checks that got no answer (connection refused, timeout).
    saw_no_answer: Arc<AtomicU64>,
}

impl Balancer {
    fn start(fleet: Arc<Fleet>, bases: Vec<String>) -> Result<Balancer> {
        let http = http_client(true)?;
        let ready = Arc::new(Mutex::new(bases.clone()));
        let saw_503 = Arc::new(AtomicU64::new(0));
        let saw_no_answer = Arc::new(AtomicU64::new(0));
        let (r, s5, sn) = (ready.clone(), saw_503.clone(), saw_no_answer.clone());
        let task = tokio::spawn(async move {
            loop {
                let mut up = Vec::new();
                for b in &bases {
                    let answer = http
                        .get(format!("{b}/readyz"))
                        .timeout(CHECK_TIMEOUT)
                        .send()
                        .await;
                    match answer.map(|a| a.status().as_u16()) {
                        Ok(200) => up.push(b.clone()),
                        Ok(503) => {
                            s5.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(_) => {
                            sn.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                fleet.set(up.clone());
                if let Ok(mut g) = r.lock() {
                    *g = up;
                }
                tokio::time::sleep(CHECK_EVERY).await;
            }
        });
        Ok(Balancer {
            task,
            ready,
            saw_503,
            saw_no_answer,
        })
    }

    fn has(&self, base: &str) -> bool {
        self.ready
            .lock()
            .map(|g| g.iter().any(|b| b == base))
            .unwrap_or(false)
    }

    /// Waits until `base` is in (or out of) the balancer's set; how long it took.
    async fn wait_for(&self, base: &str, present: bool, limit: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if self.has(base) == present {
                return Some(t0.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }
}

pub(super) async fn rolling(a: &FaultArgs) -> Result<Outcome> {
    let db = super::Db::fresh(EngineArg::Postgres, &a.postgres_url, "rolling").await?;
    let mut run = prepare(
        a,
        db,
        Plan {
            instances: 2,
            // The service's default drain (the harness's servers otherwise run
            // without one), or the environment's: YIWANG_SHUTDOWN_DRAIN_SECS=0 is
            // the negative control, which must fail.
            server_env: vec![(
                "YIWANG_SHUTDOWN_DRAIN_SECS".into(),
                std::env::var("YIWANG_SHUTDOWN_DRAIN_SECS").unwrap_or_else(|_| {
                    yiwang::http::server::DEFAULT_SHUTDOWN_DRAIN_SECS.to_string()
                }),
            )],
            ..Plan::default()
        },
    )
    .await?;
    let http = http_client(true)?;
    let balancer = Balancer::start(run.fleet.clone(), run.bases())?;
    load_for(a.seconds as f64 / 2.0).await;
    let mut restarts = Vec::new();
    let mut problems = Vec::new();
    for i in 0..run.servers.len() {
        let base = run.servers[i].base.clone();
        let stopped_at = Instant::now();
        run.servers[i].sigterm()?;
        let out_after = balancer
            .wait_for(&base, false, Duration::from_secs(10))
            .await;
        let status = run.servers[i].wait_exit().await?;
        let exited_after = stopped_at.elapsed();
        if !status.success() {
            problems.push(format!(
                "instance {} exited with {status} after SIGTERM",
                i + 1
            ));
        }
        let t0 = Instant::now();
        run.servers[i].restart(&http).await?;
        let Some(back) = balancer
            .wait_for(&base, true, Duration::from_secs(30))
            .await
        else {
            bail!("instance {} was not ready again within 30 s", i + 1);
        };
        restarts.push(json!({
            "instance": i + 1,
            "out_of_the_balancer_ms": out_after.map(|d| d.as_millis() as u64),
            "exited_after_ms": exited_after.as_millis() as u64,
            "exit_status": status.code(),
            "back_after_ms": (t0.elapsed() + back).as_millis() as u64,
        }));
        match out_after {
            None => problems.push(format!(
                "instance {}: the balancer did not take it out within 10 s of SIGTERM",
                i + 1
            )),
            // It must leave on its 503, before it stops listening.
            Some(d) if d >= exited_after => problems.push(format!(
                "instance {}: taken out of the balancer only after it exited ({d:?})",
                i + 1
            )),
            Some(_) => {}
        }
        load_for(1.0).await;
    }
    load_for(a.seconds as f64 / 2.0).await;
    balancer.task.abort();
    let saw_503 = balancer.saw_503.load(Ordering::Relaxed);
    let saw_no_answer = balancer.saw_no_answer.load(Ordering::Relaxed);
    let slowest_exit = restarts
        .iter()
        .filter_map(|r| r["exited_after_ms"].as_u64())
        .max()
        .unwrap_or(0);
    let fault = json!({
        "instances": 2,
        "restarts": restarts,
        "readyz_503_seen": saw_503,
        "health_checks_unanswered": saw_no_answer,
        "summary": format!(
            "2 instances restarted one at a time behind a /readyz-checking balancer; each exited ≤ {:.1} s after SIGTERM",
            slowest_exit as f64 / 1000.0
        ),
    });
    let mut out = run.finish("rolling", fault).await?;
    out.findings.problems.extend(problems);
    out.findings
        .problems
        .extend(lost_requests(&out.tally, saw_503));
    Ok(out)
}

/// What a rolling restart may not cost the clients: any connection refused or
/// reset, any 5xx (503 included: the instance is taken out before it refuses), any
/// read that failed, any attempt that timed out; and the SSE subscribers must have
/// reconnected (their streams were closed at each stop) and the balancer must have
/// seen the draining instances' 503, or the scenario tested nothing.
fn lost_requests(tally: &Value, saw_503: u64) -> Vec<String> {
    let n = |k: &str| tally.get(k).and_then(Value::as_u64).unwrap_or(0);
    let mut problems: Vec<String> = [
        (
            "transport_errors",
            "requests got no answer (connection refused or reset)",
        ),
        ("unavailable_503", "commands were answered 503"),
        ("server_errors", "requests were answered another 5xx"),
        ("read_errors", "dashboard reads failed"),
        ("timeouts", "attempts timed out"),
    ]
    .into_iter()
    .filter(|(k, _)| n(k) > 0)
    .map(|(k, what)| format!("rolling restart: {} {what} ({k})", n(k)))
    .collect();
    if n("sse_reconnects") == 0 {
        problems.push(
            "rolling restart: no SSE subscriber reconnected, so no stream was closed by a stop"
                .into(),
        );
    }
    if saw_503 == 0 {
        problems
            .push("rolling restart: the balancer never saw /readyz answer 503 (no drain)".into());
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_that_lost_nothing_passes() {
        let tally = json!({"transport_errors": 0, "unavailable_503": 0, "sse_reconnects": 3});
        assert_eq!(lost_requests(&tally, 4), Vec::<String>::new());
    }

    #[test]
    fn refused_connections_503s_failed_reads_and_no_drain_are_each_reported() {
        let tally = json!({"transport_errors": 2, "unavailable_503": 1, "read_errors": 1,
                           "sse_reconnects": 0});
        let p = lost_requests(&tally, 0);
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(p[0].contains("2 requests got no answer"), "{p:?}");
        assert!(p[1].contains("1 commands were answered 503"), "{p:?}");
        assert!(p[2].contains("dashboard reads failed"), "{p:?}");
        assert!(p[3].contains("no SSE subscriber reconnected"), "{p:?}");
        assert!(p[4].contains("never saw /readyz answer 503"), "{p:?}");
    }
}
