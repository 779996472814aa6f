//! The open and overdue ticket gauges (`yiwang_open_tickets`,
//! `yiwang_overdue_tickets`), set per unit from the open episodes of the
//! `unit_stats` projection when `/metrics` is read and they are older than
//! [`MAX_AGE`] (so a scraper, or anyone, asking often costs the database at most
//! one query per [`MAX_AGE`] per instance). Here, not in
//! `crate::metrics`, so that the metrics stay a leaf: this reads the projection's
//! rows and sets the registry's gauges, and only `http::ops` calls it.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::metrics::Metrics;
use crate::store::{Pool, StoreError};

/// How old the ticket gauges may be before a scrape reads them again. Prometheus
/// scrapes every 15 to 60 s: each scrape still sees fresh figures.
pub const MAX_AGE: Duration = Duration::from_secs(10);

/// The longest a scrape waits for the gauges' query: past it the scrape answers
/// with the figures it has (a slow database must not hold up the other metrics).
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// [`refresh_ticket_gauges`] unless the figures are younger than [`MAX_AGE`] or
/// another scrape is reading them now (then the figures as they are serve). A read
/// that fails or times out also counts as a read: a database in trouble is asked
/// again after [`MAX_AGE`], not at every scrape.
pub async fn refresh_if_stale(
    pool: &Pool,
    metrics: &Metrics,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Ok(mut read) = metrics.ticket_gauges_read.try_lock() else {
        return Ok(());
    };
    if read.is_some_and(|t| t.elapsed() < MAX_AGE) {
        return Ok(());
    }
    *read = Some(Instant::now());
    tokio::time::timeout(QUERY_TIMEOUT, refresh_ticket_gauges(pool, metrics, now))
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "no answer within {QUERY_TIMEOUT:?}"
            )))
        })
}

/// Sets the open and overdue ticket gauges per unit from the open episodes, overdue
/// as of `now`.
pub async fn refresh_ticket_gauges(
    pool: &Pool,
    metrics: &Metrics,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let rows = crate::repo::projections::open_and_overdue(
        pool,
        now.timestamp_micros(),
        super::facts::OPEN,
    )
    .await?;
    metrics.open_tickets.reset();
    metrics.overdue_tickets.reset();
    for (unit, open, overdue) in rows {
        metrics.open_tickets.with_label_values(&[&unit]).set(open);
        metrics
            .overdue_tickets
            .with_label_values(&[&unit])
            .set(overdue);
    }
    Ok(())
}
