//! The open and overdue ticket gauges (`yiwang_open_tickets`,
//! `yiwang_overdue_tickets`), set per unit from the open episodes of the
//! `unit_stats` projection each time `/metrics` is read. Here, not in
//! `crate::metrics`, so that the metrics stay a leaf: this reads the projection's
//! rows and sets the registry's gauges, and only `http::ops` calls it.

use super::unit_stats::on_pool;
use crate::store::{Pool, StoreError};

/// Sets the open and overdue ticket gauges per unit from the open episodes.
pub async fn refresh_ticket_gauges(app: &crate::app::App) -> Result<(), StoreError> {
    let now = app.now().timestamp_micros();
    let rows: Vec<(String, i64, i64)> = on_pool!(&app.store.pool(), p, Db => {
        sqlx::query_as(
            "SELECT unit, COUNT(*), SUM(CASE WHEN handle_due < $1 OR (signed_at IS NULL AND sign_due < $1) THEN 1 ELSE 0 END) \
             FROM stats_episodes WHERE span_end = $2 AND (signed_at IS NULL OR handled_at IS NULL) GROUP BY unit",
        )
        .bind(now)
        .bind(super::facts::OPEN)
        .fetch_all(p)
        .await?
    });
    app.metrics.open_tickets.reset();
    app.metrics.overdue_tickets.reset();
    for (unit, open, overdue) in rows {
        app.metrics
            .open_tickets
            .with_label_values(&[&unit])
            .set(open);
        app.metrics
            .overdue_tickets
            .with_label_values(&[&unit])
            .set(overdue);
    }
    Ok(())
}
