//! The organisation tree and category catalogue: loaded from a file, validated whole,
//! stored as the current reference document, and held in memory by the service.

pub mod model;

use std::sync::{Arc, RwLock};

use chrono::Utc;

pub use model::{Org, OrgProblem, UnitDef, UnitKind, parse_org};

use crate::store::{Pool, StoreError, hash::rfc3339};

/// The organisation the service works with; swapped whole when a new file is loaded.
#[derive(Clone)]
pub struct OrgHandle(Arc<RwLock<Arc<Org>>>);

impl OrgHandle {
    pub fn new(org: Org) -> OrgHandle {
        OrgHandle(Arc::new(RwLock::new(Arc::new(org))))
    }

    pub fn get(&self) -> Arc<Org> {
        // A poisoned lock only means a writer panicked mid-swap of an Arc, which
        // cannot leave a half-written value: keep serving what is there.
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, org: Org) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(org);
    }
}

/// Validates `text` and, only if it is entirely valid, stores it as the current
/// organisation. A bad file changes nothing.
pub async fn save(
    pool: &Pool,
    text: &str,
    source: &str,
) -> Result<Result<Org, Vec<OrgProblem>>, StoreError> {
    let org = match parse_org(text, source) {
        Ok(org) => org,
        Err(problems) => return Ok(Err(problems)),
    };
    crate::repo::org::save(pool, text, source, &rfc3339(Utc::now())).await?;
    Ok(Ok(org))
}

/// The stored organisation, or None when none was loaded yet.
pub async fn current(pool: &Pool) -> Result<Option<Org>, StoreError> {
    let row = crate::repo::org::current(pool).await?;
    match row {
        None => Ok(None),
        Some((source, doc)) => parse_org(&doc, &source).map(Some).map_err(|problems| {
            StoreError::Corrupt(format!(
                "stored organisation no longer validates: {}",
                problems
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        }),
    }
}

/// The stored organisation, or the repository's demo set when none was loaded.
pub async fn current_or_demo(pool: &Pool) -> Result<Org, StoreError> {
    Ok(match current(pool).await? {
        Some(org) => org,
        None => {
            tracing::warn!(
                "no organisation loaded (yiwang org load FILE); using the Weihai ETDZ demo set"
            );
            model::demo()
        }
    })
}
