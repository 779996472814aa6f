//! The caches of the statistics: the parsed evidence and report lists of each
//! month, kept by (month, revision) and re-read behind a request once they are
//! older than `MONTH_CACHE_TTL`. The reads themselves are in `read`.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use uuid::Uuid;

use super::model::{EvidenceList, MonthLists, parse_item};
use super::read;
use crate::projections::daily;
use crate::store::{Pool, StoreError};

/// Months whose parsed lists are kept (a year's lists of a city district parse to
/// a few MB; three years fit).
const MONTH_CACHE_MONTHS: usize = 36;

/// How long a month's parsed lists are used before they are read again even when
/// its revision has not changed (behind the request that finds them this old: the
/// staleness is bounded by this and one read). A bound on staleness should some
/// writer change the lists without a new revision: an instance of a release
/// before migration 0006, still running during a rolling upgrade.
const MONTH_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// A month's parsed lists, by month: the revision they were read at, when, and the
/// lists.
type MonthCache = lru::LruCache<i64, (i64, std::time::Instant, Arc<MonthLists>)>;

/// Parsed months, each at most once, at the revision it was last read at. The
/// revision is random per write, so the months of different databases (tests open
/// many in one process) never pass for one another. Kept by (month, revision)
/// instead, the month taking commands got a new revision with every projection
/// batch and was parsed and kept again at each dashboard read, until its copies
/// filled the cache (`keep`).
static MONTHS: LazyLock<Mutex<MonthCache>> = LazyLock::new(|| {
    Mutex::new(lru::LruCache::new(
        std::num::NonZeroUsize::new(MONTH_CACHE_MONTHS).unwrap_or(std::num::NonZeroUsize::MIN),
    ))
});

/// A new revision for a month's lists (written by the projection, see
/// `stats_evidence_revs`).
pub fn new_revision() -> i64 {
    Uuid::new_v4().as_u64_pair().0 as i64
}

/// The lists of the months `[s, e)`, every unit's and every list: the months whose
/// revision this process has parsed already come from memory, the others are read
/// (and kept, if they have a revision). A month's lists and its revision are
/// written in one transaction and the revision is read first, so a kept month is
/// never older than the revision it is kept under.
pub(super) async fn fetch_month_lists(
    pool: &Pool,
    s: i64,
    e: i64,
) -> Result<Vec<Arc<MonthLists>>, StoreError> {
    let revs = read::month_revisions(pool, s, e).await?;
    let rev_of: HashMap<i64, i64> = revs.into_iter().collect();
    let mut out = Vec::new();
    let mut to_read = Vec::new();
    let mut stale = Vec::new();
    {
        let mut cache = MONTHS.lock().unwrap_or_else(|p| p.into_inner());
        for month in s..e {
            match rev_of
                .get(&month)
                .and_then(|rev| kept(&mut cache, month, *rev))
            {
                Some((at, lists)) => {
                    if at.elapsed() >= MONTH_CACHE_TTL {
                        stale.push(month);
                    }
                    out.push(lists.clone());
                }
                None => to_read.push(month),
            }
        }
    }
    // Kept past their time but at the same revision: answered from memory and
    // read again behind this request, so the read (100 ms for a year) does not
    // fall on a request every minute. One refresh at a time.
    if !stale.is_empty() && !REFRESHING.swap(true, std::sync::atomic::Ordering::AcqRel) {
        let (pool, rev_of) = (pool.clone(), rev_of.clone());
        // Moved into the task: cleared however it ends, dropped unpolled included.
        let refreshing = Refreshing;
        tokio::spawn(async move {
            let _refreshing = refreshing;
            if let Err(e) = read_months(&pool, &stale, &rev_of).await {
                tracing::warn!(error = %e, "re-reading the kept evidence lists failed; the next request reads them");
                let mut cache = MONTHS.lock().unwrap_or_else(|p| p.into_inner());
                for month in &stale {
                    if let Some(rev) = rev_of.get(month)
                        && kept(&mut cache, *month, *rev).is_some()
                    {
                        cache.pop(month);
                    }
                }
            }
        });
    }
    if !to_read.is_empty() {
        out.extend(read_months(pool, &to_read, &rev_of).await?);
    }
    Ok(out)
}

/// A refresh of kept months is running (`fetch_month_lists`).
static REFRESHING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Held by the refresh: clears `REFRESHING` when dropped.
struct Refreshing;

impl Drop for Refreshing {
    fn drop(&mut self) {
        REFRESHING.store(false, std::sync::atomic::Ordering::Release);
    }
}

/// Reads and parses these months' lists, and keeps each month that has a
/// revision in `rev_of` under it.
async fn read_months(
    pool: &Pool,
    months: &[i64],
    rev_of: &HashMap<i64, i64>,
) -> Result<Vec<Arc<MonthLists>>, StoreError> {
    let mut rows = read::month_list_rows(pool, months).await?;
    // Each list is its parts' items in the order of their bounds (`daily::parts`);
    // the lists of a month come in the order of (unit, list).
    rows.retain(|r| !r.4.is_empty());
    rows.sort_unstable_by(|a, b| (a.1, &a.0, &a.2, &a.3).cmp(&(b.1, &b.0, &b.2, &b.3)));
    let mut by_month: HashMap<i64, Vec<EvidenceList>> = HashMap::new();
    for parts in rows.chunk_by(|a, b| (a.1, &a.0, &a.2) == (b.1, &b.0, &b.2)) {
        let (unit, month, list, _, _) = &parts[0];
        let items = parts
            .iter()
            .flat_map(|p| p.4.split(','))
            .filter_map(parse_item)
            .collect();
        by_month.entry(*month).or_default().push(EvidenceList {
            unit: unit.clone(),
            month: *month,
            slot: daily::list_slot(list),
            list: list.clone(),
            items,
        });
    }
    let read_at = std::time::Instant::now();
    let mut cache = MONTHS.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = Vec::with_capacity(months.len());
    for month in months {
        let lists = Arc::new(MonthLists {
            lists: by_month.remove(month).unwrap_or_default(),
        });
        if let Some(rev) = rev_of.get(month) {
            keep(&mut cache, *month, *rev, read_at, lists.clone());
        }
        out.push(lists);
    }
    Ok(out)
}

/// The month's lists if they are kept at this revision (and when they were read).
fn kept(
    cache: &mut MonthCache,
    month: i64,
    rev: i64,
) -> Option<(std::time::Instant, Arc<MonthLists>)> {
    cache
        .get(&month)
        .filter(|(r, _, _)| *r == rev)
        .map(|(_, at, lists)| (*at, lists.clone()))
}

/// Keeps the month's lists read at `rev`, in place of any it kept at another.
fn keep(
    cache: &mut MonthCache,
    month: i64,
    rev: i64,
    at: std::time::Instant,
    lists: Arc<MonthLists>,
) {
    cache.put(month, (rev, at, lists));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_kept_once_at_its_latest_revision() {
        let mut cache = MonthCache::new(std::num::NonZeroUsize::new(4).expect("non-zero"));
        let at = std::time::Instant::now();
        let lists = || Arc::new(MonthLists { lists: Vec::new() });
        // The month taking commands gets a new revision with every projection batch.
        for rev in 1..=10 {
            keep(&mut cache, 24_323, rev, at, lists());
        }
        keep(&mut cache, 24_322, 7, at, lists());
        assert_eq!(
            cache.len(),
            2,
            "one entry per month, however many revisions"
        );
        assert!(kept(&mut cache, 24_323, 10).is_some());
        assert!(
            kept(&mut cache, 24_323, 9).is_none(),
            "an older revision is gone"
        );
        assert!(kept(&mut cache, 24_322, 7).is_some());
        assert!(
            kept(&mut cache, 24_322, 8).is_none(),
            "nor is a newer one kept yet"
        );
    }
}
