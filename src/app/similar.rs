//! The intake's check before a ticket is created (受理前查重, issue 22 point 4): the
//! open tickets of the same category created in the last days that lie within a
//! radius of the reported point or in the same grid, nearest first, as the caller
//! may see them. The hotline then links the new ticket to one (`related_to`), closes
//! one as a duplicate, or creates a new one.

use chrono::Duration;

use super::App;
use crate::auth::Actor;
use crate::auth::policy;
use crate::domain::Ticket;
use crate::error::AppError;
use crate::repo::similar::{SimilarQuery, documents, similar_candidates};

/// The mean radius of the Earth in metres (IUGG).
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// At most this many candidates are read (the newest); a category rarely has as many
/// open tickets in one grid or a few hundred metres within a few days.
const CANDIDATES: i64 = 500;

/// At most this many similar tickets are answered.
pub const MAX_SIMILAR: usize = 20;

/// What the intake asks: a category and a point and/or a grid.
#[derive(Clone, Debug)]
pub struct SimilarInput {
    pub category: String,
    /// (lat, lon) in WGS 84 degrees.
    pub point: Option<(f64, f64)>,
    pub grid: Option<String>,
    pub days: u32,
    pub radius_m: f64,
}

/// One similar ticket: how far it is from the point (None without a point, or when
/// the ticket has none) and whether it lies in the asked grid.
#[derive(Clone, Debug)]
pub struct Similar {
    pub ticket: Ticket,
    pub distance_m: Option<f64>,
    pub same_grid: bool,
}

/// The great-circle distance in metres between two (lat, lon) points (haversine).
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1) = (a.0.to_radians(), a.1.to_radians());
    let (la2, lo2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// A box of (min lat, max lat, min lon, max lon) that holds every point within
/// `radius_m` of `p` (a little wider, never narrower).
fn bbox(p: (f64, f64), radius_m: f64) -> (f64, f64, f64, f64) {
    let dlat = (radius_m / EARTH_RADIUS_M).to_degrees() * 1.01;
    // Near the poles a degree of longitude shrinks to nothing: take all longitudes.
    let cos = p.0.to_radians().cos();
    let dlon = if cos < 0.01 { 360.0 } else { dlat / cos };
    (p.0 - dlat, p.0 + dlat, p.1 - dlon, p.1 + dlon)
}

impl App {
    /// The similar open tickets, nearest first (those without a distance, matched by
    /// the grid alone, after them, newest first), at most [`MAX_SIMILAR`].
    pub async fn similar(
        &self,
        actor: &Actor,
        input: &SimilarInput,
    ) -> Result<Vec<Similar>, AppError> {
        let org = self.org.get();
        let q = SimilarQuery {
            category: input.category.clone(),
            since: self.now() - Duration::days(i64::from(input.days)),
            within: policy::visible_units(&org, actor),
            grid: input.grid.clone(),
            bbox: input.point.map(|p| bbox(p, input.radius_m)),
            limit: CANDIDATES,
        };
        let pool = self.store.pool();
        // The candidates' points first: the documents only of those kept.
        let mut kept: Vec<(uuid::Uuid, Option<f64>, bool)> = similar_candidates(&pool, &q)
            .await?
            .into_iter()
            .filter(|c| !self.integrity.is_tampered(c.id))
            .filter_map(|c| {
                let there = c.lat.zip(c.lon);
                let distance = input.point.zip(there).map(|(a, b)| distance_m(a, b));
                let same_grid = input.grid.is_some() && c.grid == input.grid;
                (same_grid || distance.is_some_and(|d| d <= input.radius_m))
                    .then_some((c.id, distance, same_grid))
            })
            .collect();
        // Newest first already; a stable sort keeps that among equals.
        kept.sort_by(|a, b| match (a.1, b.1) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
        kept.truncate(MAX_SIMILAR);
        let ids: Vec<uuid::Uuid> = kept.iter().map(|k| k.0).collect();
        let docs: std::collections::HashMap<uuid::Uuid, String> =
            documents(&pool, &ids).await?.into_iter().collect();
        let mut out = Vec::with_capacity(kept.len());
        for (id, distance_m, same_grid) in kept {
            let ticket = match docs.get(&id).map(|d| serde_json::from_str::<Ticket>(d)) {
                Some(Ok(t)) => t,
                _ => match self.load(id).await? {
                    Some(t) => t,
                    None => continue,
                },
            };
            // The query kept the caller's scope; the policy has the last word.
            if policy::can_see(&org, actor, &ticket) {
                out.push(Similar {
                    ticket,
                    distance_m,
                    same_grid,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_metres_on_the_ground() {
        // 0.001° of latitude is about 111 m anywhere.
        let d = distance_m((37.5, 122.1), (37.501, 122.1));
        assert!((d - 111.2).abs() < 0.5, "{d}");
        // 0.001° of longitude at 37.5° N is about 88 m.
        let d = distance_m((37.5, 122.1), (37.5, 122.101));
        assert!((d - 88.2).abs() < 0.5, "{d}");
        assert_eq!(distance_m((37.5, 122.1), (37.5, 122.1)), 0.0);
    }

    #[test]
    fn the_box_holds_the_circle() {
        let p = (37.5, 122.1);
        let (a, b, c, d) = bbox(p, 300.0);
        for (lat, lon) in [(a, p.1), (b, p.1), (p.0, c), (p.0, d)] {
            assert!(distance_m(p, (lat, lon)) >= 300.0);
        }
    }
}
