//! The ticket views as `yiwang verify` reads them, inside its read snapshot
//! ([`Snap`], `store/audit.rs`): every view's version and head hash, and the view
//! rows a page at a time, as stored. The checks themselves are in `verify/`.

use uuid::Uuid;

use crate::store::StoreError;
use crate::store::audit::Snap;

/// A view row as read: id, number, state, unit, centre, category, grid, version,
/// doc, head hash and its co-units (as the engine stores them, or as
/// [`view_page`] hands them on).
pub type ViewRowOf<C> = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    i64,
    String,
    String,
    C,
);

/// Every ticket view's (id as stored, version, head hash).
pub async fn view_heads(snap: &mut Snap) -> Result<Vec<(String, i64, String)>, StoreError> {
    let rows: Vec<(String, i64, String)> = match snap {
        Snap::Pg(t) => sqlx::query_as("SELECT id::text, version, head_hash FROM ticket_view")
            .fetch_all(&mut **t)
            .await
            .map_err(StoreError::classify)?,
        Snap::Lite(t) => sqlx::query_as("SELECT id, version, head_hash FROM ticket_view")
            .fetch_all(&mut **t)
            .await
            .map_err(StoreError::classify)?,
    };
    Ok(rows)
}

/// Up to `limit` view rows after the id `after`, in id order, each with its
/// co-units (or, on SQLite, the stored text when it is not a list of units).
pub async fn view_page(
    snap: &mut Snap,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ViewRowOf<Result<Vec<String>, String>>>, StoreError> {
    Ok(match snap {
        Snap::Pg(t) => {
            let rows: Vec<ViewRowOf<Vec<String>>> = sqlx::query_as(
                "SELECT id::text, number, state, unit, centre, category, grid, version, doc, \
                 head_hash, co_units FROM ticket_view WHERE ($1::uuid IS NULL OR id > $1::uuid) \
                 ORDER BY id LIMIT $2",
            )
            .bind(after.and_then(|a| Uuid::parse_str(a).ok()))
            .bind(limit)
            .fetch_all(&mut **t)
            .await
            .map_err(StoreError::classify)?;
            rows.into_iter()
                .map(|r| (r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, Ok(r.10)))
                .collect()
        }
        Snap::Lite(t) => {
            let rows: Vec<ViewRowOf<String>> = sqlx::query_as(
                "SELECT id, number, state, unit, centre, category, grid, version, doc, \
                 head_hash, co_units FROM ticket_view WHERE (?1 IS NULL OR id > ?1) \
                 ORDER BY id LIMIT ?2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(&mut **t)
            .await
            .map_err(StoreError::classify)?;
            rows.into_iter()
                .map(|r| {
                    let co = serde_json::from_str::<Vec<String>>(&r.10)
                        .map_err(|_| format!("{:?} (not a list of units)", r.10));
                    (r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, co)
                })
                .collect()
        }
    })
}
