//! The open and overdue ticket gauges (`yiwang_open_tickets`,
//! `yiwang_overdue_tickets`), set per unit from the open episodes of the
//! `unit_stats` projection each time `/metrics` is read. Here, not in
//! `crate::metrics`, so that the metrics stay a leaf: this reads the projection's
//! rows and sets the registry's gauges, and only `http::ops` calls it.

use crate::store::StoreError;

/// Sets the open and overdue ticket gauges per unit from the open episodes.
pub async fn refresh_ticket_gauges(app: &crate::app::App) -> Result<(), StoreError> {
    let now = app.now().timestamp_micros();
    let rows =
        crate::repo::projections::open_and_overdue(&app.store.pool(), now, super::facts::OPEN)
            .await?;
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
