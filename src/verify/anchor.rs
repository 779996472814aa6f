//! Anchors: the log at the gap-safe horizon, to be kept outside the database, and
//! their accumulation while the pass reads the log.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::StreamCheck;
use crate::store::hash::Tally;

/// The log at one position, to be kept outside the database: every event at or
/// below `position` (the gap-safe horizon when it was taken: nothing can be
/// appended there any more) counted as the tally counts (`events`, `streams`,
/// `digest`), and `heads`: the SHA-256 (hex) of the lines `"{stream}:{version}:{hash}\n"`
/// of each stream's last event at or below `position`, in stream order. `serve
/// --anchor-file` appends one per verification as a JSON line; `yiwang verify
/// --anchor FILE` checks the database against the last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub position: i64,
    pub events: i64,
    pub streams: i64,
    pub digest: i64,
    pub heads: String,
    /// When it was taken (not compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

impl Anchor {
    /// What differs between an anchor kept earlier and the same one taken now.
    pub fn differences(&self, now: &Anchor) -> Vec<String> {
        let mut out = Vec::new();
        let mut cmp = |what: &str, then: String, now: String| {
            if then != now {
                out.push(format!("{what} {then} then, {now} now"));
            }
        };
        cmp("events", self.events.to_string(), now.events.to_string());
        cmp("streams", self.streams.to_string(), now.streams.to_string());
        cmp("digest", self.digest.to_string(), now.digest.to_string());
        cmp("heads", self.heads.clone(), now.heads.clone());
        out
    }

    /// The last anchor of an anchor file (one JSON object per line).
    pub fn last_in(path: &Path) -> anyhow::Result<Anchor> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the anchor file {}", path.display()))?;
        let (n, line) = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .last()
            .with_context(|| format!("the anchor file {} holds no anchor", path.display()))?;
        serde_json::from_str(line).with_context(|| {
            format!(
                "line {} of the anchor file {} is not an anchor",
                n + 1,
                path.display()
            )
        })
    }

    /// Appends the anchor to `path` as one JSON line, synced.
    pub fn append_to(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let mut line = serde_json::to_string(self).map_err(std::io::Error::other)?;
        line.push('\n');
        f.write_all(line.as_bytes())?;
        f.sync_data()
    }
}

/// The anchor at one position, while the pass goes.
pub(super) struct AnchorAcc {
    pub(super) position: i64,
    pub(super) tally: Tally,
    pub(super) heads: Option<String>,
}

impl AnchorAcc {
    pub(super) fn new(position: i64) -> AnchorAcc {
        AnchorAcc {
            position,
            tally: Tally::default(),
            heads: None,
        }
    }

    pub(super) fn done(self) -> Anchor {
        Anchor {
            position: self.position,
            events: self.tally.events,
            streams: self.tally.streams,
            digest: self.tally.digest,
            heads: self.heads.unwrap_or_default(),
            at: Some(Utc::now()),
        }
    }
}

/// The hash of each stream's highest event so far, in stream order.
pub(super) fn heads_digest(checks: &HashMap<Uuid, StreamCheck>) -> String {
    let mut tops: Vec<(&Uuid, &(i64, String))> = checks
        .iter()
        .filter_map(|(id, c)| c.top.as_ref().map(|t| (id, t)))
        .collect();
    tops.sort_by_key(|(id, _)| **id);
    let mut h = Sha256::new();
    for (id, (version, hash)) in tops {
        h.update(format!("{id}:{version}:{hash}\n").as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anchor_names_each_count_that_moved() {
        let a = Anchor {
            position: 10,
            events: 6,
            streams: 2,
            digest: 5,
            heads: "a".into(),
            at: None,
        };
        assert!(a.differences(&a.clone()).is_empty());
        let b = Anchor {
            events: 3,
            heads: "b".into(),
            at: Some(Utc::now()),
            ..a.clone()
        };
        assert_eq!(
            a.differences(&b),
            ["events 6 then, 3 now", "heads a then, b now"]
        );
    }
}
