//! Tamper evidence: each event's hash covers its content and the previous event's
//! hash in the same stream, so an edited, inserted or removed event breaks the chain.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The hash of a stream's (virtual) event zero.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[allow(clippy::too_many_arguments)]
pub fn event_hash(
    prev_hash: &str,
    stream_id: Uuid,
    version: i64,
    event_type: &str,
    schema_version: i32,
    data: &Value,
    metadata: &Value,
    occurred_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
) -> String {
    let doc = canonical(&json!({
        "prev": prev_hash,
        "stream_id": stream_id,
        "version": version,
        "type": event_type,
        "schema_version": schema_version,
        "data": data,
        "metadata": metadata,
        "occurred_at": rfc3339(occurred_at),
        "recorded_at": rfc3339(recorded_at),
    }));
    hex::encode(Sha256::digest(doc.to_string().as_bytes()))
}

/// Recomputes a stored event's hash.
pub fn recompute(e: &super::RecordedEvent) -> String {
    event_hash(
        &e.prev_hash,
        e.stream_id,
        e.version,
        &e.event_type,
        e.schema_version,
        &e.data,
        &e.metadata,
        e.occurred_at,
        e.recorded_at,
    )
}

/// Rebuilds a value with every object's keys in sorted order. PostgreSQL's JSONB hands
/// keys back in its own order, and serde_json keeps insertion order when any crate in
/// the build enables `preserve_order`; sorting explicitly makes the hash independent of
/// both.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}
