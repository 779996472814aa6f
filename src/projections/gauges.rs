//! The open and overdue ticket gauges (`yiwang_open_tickets`,
//! `yiwang_overdue_tickets`), set per unit from the open episodes of the
//! `unit_stats` projection each time `/metrics` is read. Here, not in
//! `crate::metrics`, so that the metrics stay a leaf: this reads the projection's
//! rows and sets the registry's gauges, and only `http::ops` calls it.

use chrono::{DateTime, Utc};

use crate::metrics::Metrics;
use crate::store::{Pool, StoreError};

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
