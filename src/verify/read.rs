//! What a verification reads, made into what its checks take: the event rows (read
//! by `store/audit.rs`) hashed into links, the ticket views (read by
//! `repo/audit.rs`) as [`StoredView`]s and [`ViewHead`]s, and the tally the appends
//! kept checked against the recount.

use std::collections::HashMap;

use serde_json::Value;
use uuid::Uuid;

use super::{Link, Problem, ProblemKind, StoredView, ViewHead};
use crate::repo;
use crate::store::audit::{Snap, StoredRow, TallyRow};
use crate::store::hash::Tally;
use crate::store::{RecordedEvent, StoreError};

/// Parses and hashes the row; what cannot be read is a problem of its content.
pub(super) fn into_link(row: StoredRow) -> (Result<Uuid, String>, Link) {
    let stream = Uuid::parse_str(&row.stream_id).map_err(|_| row.stream_id.clone());
    let mut link = Link {
        position: row.position,
        version: row.version,
        prev_hash: row.prev_hash.clone(),
        hash: row.hash.clone(),
        content: None,
        viewless: crate::appraisal::ledger::is_appraisal_event(&row.event_type),
    };
    let parsed = (|| -> Result<RecordedEvent, String> {
        let data: Value = serde_json::from_str(&row.data)
            .map_err(|e| format!("its data is not valid JSON ({e})"))?;
        let metadata: Value = serde_json::from_str(&row.metadata)
            .map_err(|e| format!("its metadata is not valid JSON ({e})"))?;
        Ok(RecordedEvent {
            position: row.position,
            stream_id: stream.clone().unwrap_or_default(),
            version: row.version,
            event_type: row.event_type,
            schema_version: row.schema_version,
            data,
            metadata,
            occurred_at: row
                .occurred_at
                .map_err(|t| format!("its occurred_at {t:?} is not a time"))?,
            recorded_at: row
                .recorded_at
                .map_err(|t| format!("its recorded_at {t:?} is not a time"))?,
            prev_hash: row.prev_hash,
            hash: row.hash,
        })
    })();
    match parsed {
        Ok(e) => link.content = Link::of(&e).content,
        Err(what) => link.content = Some(format!("unreadable: {what}")),
    }
    (stream, link)
}

/// Every ticket view's (version, head hash).
pub(super) async fn view_heads(snap: &mut Snap) -> Result<HashMap<Uuid, ViewHead>, StoreError> {
    let rows = repo::audit::view_heads(snap).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, version, head_hash)| {
            Some((Uuid::parse_str(&id).ok()?, ViewHead { version, head_hash }))
        })
        .collect())
}

/// Up to `limit` view rows after the id `after`, in id order: (the id as
/// stored, the row when its id is a UUID).
pub(super) async fn view_page(
    snap: &mut Snap,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<(String, Option<StoredView>)>, StoreError> {
    let rows = repo::audit::view_page(snap, after, limit).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let view = Uuid::parse_str(&r.0).ok().map(|id| StoredView {
                id,
                number: r.1,
                state: r.2,
                unit: r.3,
                centre: r.4,
                category: r.5,
                grid: r.6,
                co_units: r.10,
                version: r.7,
                doc: r.8,
                head_hash: r.9,
            });
            (r.0, view)
        })
        .collect())
}

/// The tally the appends kept against the recount `log`; on SQLite also the
/// density of positions.
pub(super) async fn tally_problems(
    snap: &mut Snap,
    log: &Tally,
) -> Result<Vec<Problem>, StoreError> {
    let rows: Vec<TallyRow> = snap.tally_rows().await?;
    let whole = |detail: String| Problem {
        kind: ProblemKind::Uncounted,
        stream: Uuid::nil(),
        version: 0,
        position: None,
        detail,
    };
    let mut out = Vec::new();
    if rows.iter().any(|r| r.0 < 0) {
        out.push(whole(
            "the log tally was never counted (its seeding marker is still there): open the \
             database with `yiwang migrate` to count it"
                .into(),
        ));
        return Ok(out);
    }
    let mut kept = Tally::default();
    for (events, streams, digest, _) in &rows {
        kept.merge(Tally {
            events: *events,
            streams: *streams,
            digest: *digest,
        });
    }
    if kept != *log {
        let mut what = Vec::new();
        if kept.events != log.events {
            what.push(format!(
                "{} events where the appends counted {}",
                log.events, kept.events
            ));
        }
        if kept.streams != log.streams {
            what.push(format!(
                "{} streams where the appends counted {}",
                log.streams, kept.streams
            ));
        }
        if kept.digest != log.digest {
            what.push(format!(
                "a digest of positions {} where the appends made {}",
                log.digest, kept.digest
            ));
        }
        out.push(whole(format!(
            "the log does not match the tally its appends kept: it holds {}: events were deleted, \
             put in or moved outside the service",
            what.join(", ")
        )));
    }
    let dense_after = rows.iter().filter_map(|r| r.3).max().unwrap_or(0);
    if let Some((count, max)) = snap.density(dense_after).await?
        && count != max - dense_after
    {
        let hole = snap.first_hole(dense_after, max).await?;
        out.push(Problem {
            kind: ProblemKind::Reordered,
            stream: Uuid::nil(),
            version: 0,
            position: hole,
            detail: format!(
                "positions after {dense_after} have holes: {count} events up to position {max}{}: \
                     an event was deleted, or put in at a chosen position",
                hole.map(|h| format!(", the first missing at {h}"))
                    .unwrap_or_default()
            ),
        });
    }
    Ok(out)
}
