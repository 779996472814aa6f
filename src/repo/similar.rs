//! The intake's check for similar tickets (`GET /api/v1/tickets/similar`): open
//! tickets of one category created since a time, in the caller's scope, that lie in
//! a grid or inside a box around a point. The exact distance is the caller's
//! (`app::similar`); this reads the candidates (their point and grid only, by the
//! index of migration 0014 (category, created_at) and the point stored in the
//! ticket's document), then the documents of the few the caller keeps.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use crate::store::hash::rfc3339;
use crate::store::sqlite::parse_uuid;
use crate::store::{Pool, StoreError};

/// What the candidates must match.
#[derive(Clone, Debug, Default)]
pub struct SimilarQuery {
    pub category: String,
    /// Only tickets created at or after this.
    pub since: DateTime<Utc>,
    /// Only tickets whose unit, centre, grid or a co-unit is one of these (the
    /// caller's subtree); None: all.
    pub within: Option<Vec<String>>,
    /// Tickets in this grid match wherever their point is.
    pub grid: Option<String>,
    /// Tickets whose point lies in this box match: (min lat, max lat, min lon, max lon).
    pub bbox: Option<(f64, f64, f64, f64)>,
    pub limit: i64,
}

/// A candidate: the ticket's id, its point and its grid.
pub struct Candidate {
    pub id: Uuid,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub grid: Option<String>,
}

/// The candidates, newest first, at most `q.limit`.
pub async fn similar_candidates(
    pool: &Pool,
    q: &SimilarQuery,
) -> Result<Vec<Candidate>, StoreError> {
    let (lat_min, lat_max, lon_min, lon_max) = q.bbox.unzip4();
    match pool {
        Pool::Postgres(p) => {
            let rows = sqlx::query(
                "SELECT id, grid, (doc::json #>> '{location,lat}')::float8 AS lat, \
                        (doc::json #>> '{location,lon}')::float8 AS lon FROM ticket_view \
                 WHERE category = $1 AND state <> 'closed' AND created_at >= $2 \
                 AND ($3::text[] IS NULL OR unit = ANY($3) OR centre = ANY($3) OR grid = ANY($3) \
                      OR co_units && $3) \
                 AND (($4::text IS NOT NULL AND grid = $4) \
                      OR ($5::float8 IS NOT NULL \
                          AND (doc::json #>> '{location,lat}')::float8 BETWEEN $5 AND $6 \
                          AND (doc::json #>> '{location,lon}')::float8 BETWEEN $7 AND $8)) \
                 ORDER BY created_at DESC, id DESC LIMIT $9",
            )
            .bind(&q.category)
            .bind(q.since)
            .bind(&q.within)
            .bind(&q.grid)
            .bind(lat_min)
            .bind(lat_max)
            .bind(lon_min)
            .bind(lon_max)
            .bind(q.limit)
            .fetch_all(p)
            .await
            .map_err(StoreError::classify)?;
            Ok(rows
                .iter()
                .map(|r| {
                    Ok(Candidate {
                        id: r.try_get("id")?,
                        lat: r.try_get("lat")?,
                        lon: r.try_get("lon")?,
                        grid: r.try_get("grid")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()?)
        }
        Pool::Sqlite(p) => {
            let within = q
                .within
                .as_ref()
                .map(|w| serde_json::Value::from(w.clone()).to_string());
            let rows = sqlx::query(
                "SELECT id, grid, CAST(json_extract(doc, '$.location.lat') AS REAL) AS lat, \
                        CAST(json_extract(doc, '$.location.lon') AS REAL) AS lon FROM ticket_view \
                 WHERE category = ?1 AND state <> 'closed' AND created_at >= ?2 \
                 AND (?3 IS NULL OR unit IN (SELECT value FROM json_each(?3)) \
                      OR centre IN (SELECT value FROM json_each(?3)) \
                      OR grid IN (SELECT value FROM json_each(?3)) \
                      OR EXISTS (SELECT 1 FROM json_each(ticket_view.co_units) c \
                                 WHERE c.value IN (SELECT value FROM json_each(?3)))) \
                 AND ((?4 IS NOT NULL AND grid = ?4) \
                      OR (?5 IS NOT NULL \
                          AND CAST(json_extract(doc, '$.location.lat') AS REAL) BETWEEN ?5 AND ?6 \
                          AND CAST(json_extract(doc, '$.location.lon') AS REAL) BETWEEN ?7 AND ?8)) \
                 ORDER BY created_at DESC, id DESC LIMIT ?9",
            )
            .bind(&q.category)
            .bind(rfc3339(q.since))
            .bind(within)
            .bind(&q.grid)
            .bind(lat_min)
            .bind(lat_max)
            .bind(lon_min)
            .bind(lon_max)
            .bind(q.limit)
            .fetch_all(p)
            .await
            .map_err(StoreError::classify)?;
            rows.iter()
                .map(|r| {
                    Ok(Candidate {
                        id: parse_uuid(r.try_get("id")?)?,
                        lat: r.try_get("lat")?,
                        lon: r.try_get("lon")?,
                        grid: r.try_get("grid")?,
                    })
                })
                .collect()
        }
    }
}

/// The documents (the folded tickets as JSON text) of these tickets, in no order.
pub async fn documents(pool: &Pool, ids: &[Uuid]) -> Result<Vec<(Uuid, String)>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    match pool {
        Pool::Postgres(p) => {
            let rows = sqlx::query("SELECT id, doc FROM ticket_view WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(p)
                .await
                .map_err(StoreError::classify)?;
            Ok(rows
                .iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("doc")?)))
                .collect::<Result<_, sqlx::Error>>()?)
        }
        Pool::Sqlite(p) => {
            let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
            let rows = sqlx::query(
                "SELECT id, doc FROM ticket_view WHERE id IN (SELECT value FROM json_each(?1))",
            )
            .bind(serde_json::Value::from(ids).to_string())
            .fetch_all(p)
            .await
            .map_err(StoreError::classify)?;
            rows.iter()
                .map(|r| Ok((parse_uuid(r.try_get("id")?)?, r.try_get("doc")?)))
                .collect()
        }
    }
}

/// An optional box as four optional bounds.
trait Unzip4 {
    fn unzip4(self) -> (Option<f64>, Option<f64>, Option<f64>, Option<f64>);
}

impl Unzip4 for Option<(f64, f64, f64, f64)> {
    fn unzip4(self) -> (Option<f64>, Option<f64>, Option<f64>, Option<f64>) {
        match self {
            Some((a, b, c, d)) => (Some(a), Some(b), Some(c), Some(d)),
            None => (None, None, None, None),
        }
    }
}
