//! The periodic verification of `serve`: its gauges, its log lines, its anchors, and
//! the findings that freeze tampered tickets.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Report, run};
use crate::metrics::Metrics;
use crate::store::Pool;

/// What the latest verification of this process found: each tampered stream is
/// refused to commands and reads (409 `integrity.tampered`), and `/readyz` says
/// `degraded`, until a verification finds it clean again.
#[derive(Debug, Default)]
pub struct Integrity(std::sync::RwLock<Findings>);

/// The findings of the latest verification.
#[derive(Clone, Debug, Default)]
pub struct Findings {
    /// Problems found (0: clean, or none has finished yet).
    pub count: usize,
    /// The streams they name.
    pub tampered: HashSet<Uuid>,
    /// When that verification finished.
    pub at: Option<DateTime<Utc>>,
}

impl Integrity {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Findings> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The latest findings.
    pub fn findings(&self) -> Findings {
        self.read().clone()
    }

    /// How many problems the latest verification found.
    pub fn count(&self) -> usize {
        self.read().count
    }

    pub fn is_tampered(&self, stream: Uuid) -> bool {
        self.read().tampered.contains(&stream)
    }

    /// Keeps a verification's outcome.
    pub fn record(&self, report: &Report) {
        let mut f = self.0.write().unwrap_or_else(|p| p.into_inner());
        *f = Findings {
            count: report.problems.len(),
            tampered: report.tampered_streams(),
            at: Some(Utc::now()),
        };
    }

    /// Err (409 `integrity.tampered`) when the latest verification found `stream`
    /// tampered with.
    pub fn check(&self, stream: Uuid) -> Result<(), crate::error::AppError> {
        if self.is_tampered(stream) {
            let at = self
                .read()
                .at
                .map(|t| format!(" at {}", crate::store::hash::rfc3339(t)))
                .unwrap_or_default();
            return Err(crate::error::AppError::Tampered(format!(
                "ticket {stream} is frozen: the verification of the event log{at} found its records \
                 tampered with (edited, deleted, reordered, or a ticket view that differs from its \
                 events), so nothing is read from or written to it. An operator: run `yiwang verify` \
                 for the findings, restore the ticket's records from a backup, and the next \
                 verification lifts the freeze"
            )));
        }
        Ok(())
    }
}

/// Runs a verification every `interval` in the background (the first one at once),
/// keeps the `yiwang_verify_*` gauges and the app's findings, and appends each
/// anchor to `anchor_file` when one is named.
pub fn spawn(
    pool: Pool,
    metrics: Metrics,
    integrity: Arc<Integrity>,
    interval: Duration,
    anchor_file: Option<std::path::PathBuf>,
) {
    tokio::spawn(async move {
        loop {
            if let Some(report) = verify_and_record(&pool, &metrics, &integrity).await
                && let (Some(path), Some(anchor)) = (&anchor_file, &report.anchor)
            {
                let (path, anchor) = (path.clone(), anchor.clone());
                let written = tokio::task::spawn_blocking(move || anchor.append_to(&path)).await;
                match written {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "could not append the anchor to the anchor file")
                    }
                    Err(e) => tracing::error!(error = %e, "the anchor writer failed"),
                }
            }
            tokio::time::sleep(interval).await;
        }
    });
}

/// One verification of the database behind `pool`, its outcome logged, put in the
/// gauges and kept in `integrity` (the app's `App::integrity`: tampered tickets are
/// refused, `/readyz` says degraded).
pub async fn verify_and_record(
    pool: &Pool,
    metrics: &Metrics,
    integrity: &Integrity,
) -> Option<Report> {
    let m = metrics;
    match run(pool).await {
        Ok(report) => {
            m.verify_last_run.set(Utc::now().timestamp() as f64);
            m.verify_last_ok.set(i64::from(report.ok()));
            m.verify_problems
                .set(i64::try_from(report.problems.len()).unwrap_or(i64::MAX));
            integrity.record(&report);
            if let Some(a) = &report.anchor {
                tracing::info!(
                    anchor = %serde_json::to_string(a).unwrap_or_default(),
                    "log anchor: keep it outside the database (yiwang verify --anchor)"
                );
            }
            if report.ok() {
                tracing::info!(
                    events = report.events,
                    streams = report.streams,
                    secs = report.elapsed.as_secs_f64(),
                    "log verified: every hash chain is intact, every ticket view matches its events"
                );
            } else {
                tracing::error!(
                    problems = report.problems.len(),
                    tickets = report.tampered_streams().len(),
                    "log verification found tampering: the tickets named are frozen; run `yiwang verify` for the list"
                );
                for p in report.problems.iter().take(20) {
                    tracing::error!(problem = %p, "tampered");
                }
            }
            Some(report)
        }
        Err(e) => {
            tracing::warn!(error = %e, "log verification could not run");
            None
        }
    }
}
