//! The scores of a period read with the ledger, the ranking of one sheet's units
//! (with the departments' grades), and the monthly bulletins (通报): an answer frozen
//! as an event with the log position it was computed at, and its drift since.

use chrono::Datelike;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{BulletinBody, BulletinHeadJson, parse_period, sorted_text};
use crate::app::commands::CommandMeta;
use crate::app::{App, Reply};
use crate::appraisal::ledger::{
    BULLETIN_PUBLISHED, BulletinPublished, Ledger, coefficient, yellow_card,
};
use crate::appraisal::profile::{self, DEFAULT, Profile};
use crate::appraisal::{self, UnitAppraisal};
use crate::auth::Actor;
use crate::auth::appraisal::{self as scope, Reach};
use crate::error::AppError;
use crate::projections::periods::Period;

/// How long a bulletin waits for the feed's horizon to reach what is committed.
const HORIZON_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The sheets a ranking is of.
pub const RANK_KINDS: [&str; 4] = ["department", "judicial", "enforcement", "market"];

/// The default profile (the one with the sheets entries are made against).
pub fn default_profile() -> Result<&'static Profile, AppError> {
    profile::builtin()
        .map_err(|e| AppError::Internal(anyhow::anyhow!(e.to_string())))?
        .get(DEFAULT)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no profile {DEFAULT}")))
}

/// The sheet a unit was scored by (None: no sheet).
fn sheet_of(u: &UnitAppraisal) -> Option<&str> {
    u.sheet.as_deref()
}

/// A unit's score (None: none for this period).
fn score_of(u: &UnitAppraisal) -> Option<f64> {
    u.score
}

/// Checks a ranking's `kind`.
pub fn rank_kind(kind: &str) -> Result<&str, AppError> {
    RANK_KINDS
        .iter()
        .copied()
        .find(|k| *k == kind)
        .ok_or_else(|| {
            AppError::invalid(
                "kind",
                format!("{kind:?}: use department, judicial, enforcement or market"),
            )
        })
}

/// One row of a ranking.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AppraisalRankRow)]
pub struct RankRow {
    /// 1.1 / 1.0 / 0.9 / 0.8, with a grade.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coefficient: Option<f64>,
    /// The department's grade for the period's year (1 一等 … 4 四等).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade: Option<u8>,
    /// Ties share a rank (1, 1, 3).
    pub rank: usize,
    pub score: f64,
    pub unit: String,
    pub unit_name: String,
    /// Grades 3 and 4 (黄牌警告).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yellow_card: Option<bool>,
    /// With a yellow card: how many years in a row ending with this one had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yellow_cards_in_a_row: Option<u32>,
}

/// `GET /api/v1/appraisal/ranking`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AppraisalRanking)]
pub struct Ranking {
    pub items: Vec<RankRow>,
    pub kind: String,
    pub period: String,
}

/// A unit whose score today differs from the bulletin's.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AppraisalDrift)]
pub struct Drift {
    /// The score frozen in the bulletin (null: none then).
    pub frozen: Option<f64>,
    /// The score today (null: none now, or the unit is gone).
    pub now: Option<f64>,
    pub unit: String,
}

/// Competition ranks of scores sorted from the highest: ties share the rank of
/// the first of them (1, 1, 3).
pub fn ranks(sorted_desc: &[f64]) -> Vec<usize> {
    let mut out = Vec::with_capacity(sorted_desc.len());
    for (i, s) in sorted_desc.iter().enumerate() {
        let tie = i > 0 && (sorted_desc[i - 1] - s).abs() < 0.005;
        out.push(if tie { out[i - 1] } else { i + 1 });
    }
    out
}

/// Years in a row, ending with `year`, in which `unit`'s grade came with a yellow
/// card (0 when this year's did not).
fn yellow_run(ledger: &Ledger, unit: &str, year: i32) -> u32 {
    let mut n = 0;
    let mut y = year;
    while ledger
        .grades
        .get(&(unit.to_string(), y))
        .is_some_and(|g| yellow_card(g.grade))
    {
        n += 1;
        y -= 1;
    }
    n
}

/// The appraisal answer's JSON (the body of `GET /api/v1/appraisal`).
pub fn answer_bytes(
    period: &str,
    profile: &str,
    units: &[UnitAppraisal],
    as_of: chrono::DateTime<chrono::Utc>,
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(units.len() * 600 + 256);
    out.extend_from_slice(b"{\"as_of\":");
    serde_json::to_writer(&mut out, &as_of)?;
    out.extend_from_slice(b",\"period\":");
    serde_json::to_writer(&mut out, period)?;
    out.extend_from_slice(b",\"profile\":");
    serde_json::to_writer(&mut out, profile)?;
    out.extend_from_slice(b",\"units\":");
    appraisal::json::units(&mut out, units)?;
    out.push(b'}');
    Ok(out)
}

impl App {
    /// The scores of every department and agency under `root` for `period`, with
    /// the entries of `ledger`.
    pub async fn appraisal_scores(
        &self,
        profile: &Profile,
        period: &Period,
        root: &str,
        ledger: &Ledger,
    ) -> Result<Vec<UnitAppraisal>, AppError> {
        let org = self.org.get();
        let units = appraisal::appraised_units(&org, root);
        let scope_all = root == org.root().code;
        Ok(appraisal::appraise_from_store(
            &self.store.pool(),
            &org,
            profile,
            period,
            units,
            scope_all,
            self.now(),
            ledger,
        )
        .await?)
    }

    /// `GET /api/v1/appraisal/ranking`: the units of one sheet in the whole
    /// organisation, best first; a reader outside the district sees the departments
    /// and the units of its own subtree (with their district-wide ranks).
    pub async fn ranking(
        &self,
        actor: &Actor,
        period: &Period,
        kind: &str,
    ) -> Result<Ranking, AppError> {
        scope::reader(actor)?;
        let org = self.org.get();
        let ledger = self.ledger().await?;
        let profile = default_profile()?;
        let root = org.root().code.clone();
        let scores = self
            .appraisal_scores(profile, period, &root, &ledger)
            .await?;
        let mut rows: Vec<(&UnitAppraisal, f64)> = scores
            .iter()
            .filter(|u| sheet_of(u) == Some(kind))
            .filter_map(|u| score_of(u).map(|s| (u, s)))
            .collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.unit.cmp(&b.0.unit)));
        let sorted: Vec<f64> = rows.iter().map(|r| r.1).collect();
        let year = period.first_day.year();
        let items = rows
            .iter()
            .zip(ranks(&sorted))
            .filter(|((u, _), _)| kind == "department" || scope::sees(&org, actor, &u.unit, None))
            .map(|((u, score), rank)| {
                let grade = ledger.grades.get(&(u.unit.clone(), year)).map(|g| g.grade);
                let yellow = grade.map(yellow_card);
                RankRow {
                    coefficient: grade.and_then(coefficient),
                    grade,
                    rank,
                    score: *score,
                    unit: u.unit.clone(),
                    unit_name: u.unit_name.clone(),
                    yellow_card: yellow,
                    yellow_cards_in_a_row: (yellow == Some(true))
                        .then(|| yellow_run(&ledger, &u.unit, year)),
                }
            })
            .collect();
        Ok(Ranking {
            items,
            kind: kind.to_string(),
            period: period.label.clone(),
        })
    }

    /// `POST /api/v1/appraisal/bulletins`.
    pub async fn publish_bulletin(
        &self,
        actor: &Actor,
        b: BulletinBody,
        meta: CommandMeta,
    ) -> Result<Reply, AppError> {
        self.appraisal_command(actor, &meta, self.publish_inner(actor, b, &meta))
            .await
    }

    async fn publish_inner(
        &self,
        actor: &Actor,
        b: BulletinBody,
        meta: &CommandMeta,
    ) -> Result<Reply, AppError> {
        let org = self.org.get();
        let reach = scope::reach(&org, actor)?;
        let period = parse_period("period", &b.period)?;
        let unit = b.unit.as_deref().map(str::trim).filter(|u| !u.is_empty());
        if let Some(u) = unit
            && org.unit(u).is_none()
        {
            return Err(AppError::invalid(
                "unit",
                format!("no unit {u:?} in the organisation"),
            ));
        }
        let unit = match (&reach, unit) {
            (Reach::District, u) => u.map(str::to_string),
            (Reach::Township(own), None) => Some(own.clone()),
            (Reach::Township(own), Some(u)) if org.is_within(u, own) => Some(u.to_string()),
            (Reach::Township(own), Some(u)) => {
                return Err(AppError::Forbidden(format!(
                    "a township appraiser publishes bulletins of {own}, not of {u}"
                )));
            }
        };
        let root = unit.clone().unwrap_or_else(|| org.root().code.clone());
        let pool = self.store.pool();
        // Pinned to the gap-safe horizon: every event at or below it is final, so
        // the position and its hash name exactly the log the answer was read from.
        // The horizon is waited for up to what is committed now (PostgreSQL holds it
        // below a transaction still running anywhere in the cluster, for moments),
        // so that the bulletin includes the entries made just before it.
        let committed = crate::repo::appraisal::max_position(&pool).await?;
        let waited = std::time::Instant::now();
        let mut horizon = crate::store::feed_horizon(&pool).await?;
        while horizon < committed && waited.elapsed() < HORIZON_WAIT {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            horizon = crate::store::feed_horizon(&pool).await?;
        }
        let (position, position_hash) =
            crate::repo::appraisal::last_event_at_or_below(&pool, horizon)
                .await?
                .unwrap_or((0, crate::store::hash::GENESIS.to_string()));
        let ledger = crate::repo::appraisal::ledger(&pool, Some(position)).await?;
        let profile = default_profile()?;
        let now = self.now();
        let scores = self
            .appraisal_scores(profile, &period, &root, &ledger)
            .await?;
        let bytes = answer_bytes(&period.label, &profile.name, &scores, now)
            .map_err(|e| AppError::Internal(e.into()))?;
        let answer: Value =
            serde_json::from_slice(&bytes).map_err(|e| AppError::Internal(e.into()))?;
        let data = BulletinPublished {
            period: period.label.clone(),
            unit: unit.clone(),
            profile: profile.name.clone(),
            position,
            position_hash: position_hash.clone(),
            answer,
        };
        let data = serde_json::to_value(&data).map_err(|e| AppError::Internal(e.into()))?;
        let id = Uuid::now_v7();
        let head = BulletinHeadJson {
            actor: actor.user.clone(),
            id,
            period: period.label.clone(),
            position,
            position_hash,
            profile: profile.name.clone(),
            published_at: crate::store::truncate_micros(now),
            unit,
        };
        self.append_appraisal(
            actor,
            meta,
            id,
            0,
            (BULLETIN_PUBLISHED, data),
            (201, sorted_text(&head)),
            now,
        )
        .await
    }

    /// Whether a reader may see a bulletin of `unit` (None: the whole organisation).
    fn sees_bulletin(&self, actor: &Actor, unit: Option<&str>) -> bool {
        let org = self.org.get();
        let root = org.root().code.clone();
        org.is_within(unit.unwrap_or(&root), &actor.unit)
    }

    /// `GET /api/v1/appraisal/bulletins?period=`.
    pub async fn list_bulletins(
        &self,
        actor: &Actor,
        period: Option<&Period>,
    ) -> Result<Vec<BulletinHeadJson>, AppError> {
        scope::reader(actor)?;
        let heads =
            crate::repo::appraisal::bulletins(&self.store.pool(), period.map(|p| p.label.as_str()))
                .await?;
        Ok(heads
            .iter()
            .filter(|h| self.sees_bulletin(actor, h.unit.as_deref()))
            .map(BulletinHeadJson::from)
            .collect())
    }

    /// `GET /api/v1/appraisal/bulletins/{id}`: the head, the frozen answer, and the
    /// units whose score today differs from it.
    pub async fn bulletin(
        &self,
        actor: &Actor,
        id: Uuid,
    ) -> Result<(BulletinHeadJson, Value, Vec<Drift>), AppError> {
        scope::reader(actor)?;
        let not_found = || AppError::NotFound(format!("no bulletin {id}"));
        let (head, data) = crate::repo::appraisal::bulletin(&self.store.pool(), id)
            .await?
            .ok_or_else(not_found)?;
        if !self.sees_bulletin(actor, head.unit.as_deref()) {
            return Err(not_found());
        }
        let frozen: BulletinPublished = serde_json::from_value(data)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("bulletin {id}: {e}")))?;
        let org = self.org.get();
        let period = parse_period("period", &frozen.period)?;
        let profile = profile::builtin()
            .map_err(|e| AppError::Internal(anyhow::anyhow!(e.to_string())))?
            .get(&frozen.profile)
            .unwrap_or(default_profile()?);
        let root = frozen
            .unit
            .clone()
            .unwrap_or_else(|| org.root().code.clone());
        let ledger = self.ledger().await?;
        let now = self
            .appraisal_scores(profile, &period, &root, &ledger)
            .await?;
        let drift = drift(&frozen.answer, &now);
        Ok((BulletinHeadJson::from(&head), frozen.answer, drift))
    }
}

/// The units whose score differs between a frozen answer and today's scores
/// (either way: a unit only in one of them too).
pub fn drift(frozen: &Value, now: &[UnitAppraisal]) -> Vec<Drift> {
    let then: Vec<(String, Option<f64>)> = frozen
        .get("units")
        .and_then(Value::as_array)
        .map(|units| {
            units
                .iter()
                .map(|u| {
                    (
                        u.get("unit")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        u.get("score").and_then(Value::as_f64),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let differ = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(x), Some(y)) => (x - y).abs() >= 0.005,
        (None, None) => false,
        _ => true,
    };
    let mut out = Vec::new();
    for (unit, f) in &then {
        let n = now.iter().find(|u| &u.unit == unit).and_then(score_of);
        if differ(*f, n) {
            out.push(Drift {
                frozen: *f,
                now: n,
                unit: unit.clone(),
            });
        }
    }
    for u in now {
        if !then.iter().any(|(code, _)| code == &u.unit) && score_of(u).is_some() {
            out.push(Drift {
                frozen: None,
                now: score_of(u),
                unit: u.unit.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::ranks;

    #[test]
    fn ties_share_a_rank() {
        assert_eq!(ranks(&[98.0, 98.0, 97.5, 90.0]), vec![1, 1, 3, 4]);
        assert_eq!(ranks(&[]), Vec::<usize>::new());
        assert_eq!(ranks(&[5.0, 5.0, 5.0]), vec![1, 1, 1]);
    }
}
