//! Tamper evidence: each event's hash covers its content and the previous event's
//! hash in the same stream, so an edited, inserted or removed event breaks the chain.

use std::io::Write as _;

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde_json::Value;
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
    // The canonical JSON of the object below, with its keys in sorted order,
    // written straight into the hasher (no intermediate document and no text of
    // its own for a number, an instant or the id: appends are hot).
    let mut h = HashWriter(Sha256::new());
    h.raw(b"{");
    h.key("data");
    write_canonical(data, &mut h);
    h.raw(b",");
    h.key("metadata");
    write_canonical(metadata, &mut h);
    h.raw(b",");
    h.key("occurred_at");
    h.time(occurred_at);
    h.raw(b",");
    h.key("prev");
    h.str(prev_hash);
    h.raw(b",");
    h.key("recorded_at");
    h.time(recorded_at);
    h.raw(b",");
    h.key("schema_version");
    h.number(schema_version);
    h.raw(b",");
    h.key("stream_id");
    h.uuid(stream_id);
    h.raw(b",");
    h.key("type");
    h.str(event_type);
    h.raw(b",");
    h.key("version");
    h.number(version);
    h.raw(b"}");
    hex::encode(h.0.finalize())
}

/// Feeds bytes to SHA-256.
struct HashWriter(Sha256);

impl HashWriter {
    fn raw(&mut self, b: &[u8]) {
        self.0.update(b);
    }

    /// `"key":`
    fn key(&mut self, k: &str) {
        self.str(k);
        self.raw(b":");
    }

    /// A JSON string, escaped as serde_json escapes it.
    fn str(&mut self, s: &str) {
        // Writing into a hasher cannot fail.
        serde_json::to_writer(&mut *self, s).expect("hashing cannot fail");
    }

    /// An integer, as its decimal digits (as `to_string` writes it).
    fn number(&mut self, n: impl std::fmt::Display) {
        // Writing into a hasher cannot fail.
        write!(self, "{n}").expect("hashing cannot fail");
    }

    /// A UUID as a JSON string, lowercase and hyphenated (as `to_string` writes it).
    fn uuid(&mut self, id: Uuid) {
        let mut buf = Uuid::encode_buffer();
        self.raw(b"\"");
        self.raw(id.hyphenated().encode_lower(&mut buf).as_bytes());
        self.raw(b"\"");
    }

    /// An instant as a JSON string, as [`rfc3339`] writes it
    /// (`2026-11-28T08:00:00.123456Z`), without the intermediate text. A year
    /// outside 0 to 9999 or a leap second (which `rfc3339` writes its own way)
    /// takes [`rfc3339`] itself.
    fn time(&mut self, t: DateTime<Utc>) {
        let nanos = t.nanosecond();
        if !(0..=9999).contains(&t.year()) || nanos >= 1_000_000_000 {
            self.str(&rfc3339(t));
            return;
        }
        // Writing into a hasher cannot fail.
        write!(
            self,
            "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z\"",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            nanos / 1000
        )
        .expect("hashing cannot fail");
    }
}

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes a value as canonical JSON: every object's keys in sorted order, no
/// whitespace. PostgreSQL's JSONB hands keys back in its own order, and serde_json
/// keeps insertion order when any crate in the build enables `preserve_order`;
/// sorting here makes the hash independent of both.
fn write_canonical(v: &Value, h: &mut HashWriter) {
    match v {
        // This build's serde_json keeps an object's keys sorted (a BTreeMap): then
        // they are written as they come, with no sorted copy of the keys.
        Value::Object(m) if m.keys().is_sorted() => {
            h.raw(b"{");
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    h.raw(b",");
                }
                h.str(k);
                h.raw(b":");
                write_canonical(x, h);
            }
            h.raw(b"}");
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            h.raw(b"{");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    h.raw(b",");
                }
                h.str(k);
                h.raw(b":");
                write_canonical(&m[k], h);
            }
            h.raw(b"}");
        }
        Value::Array(a) => {
            h.raw(b"[");
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    h.raw(b",");
                }
                write_canonical(x, h);
            }
            h.raw(b"]");
        }
        // Scalars as serde_json writes them; writing into a hasher cannot fail.
        other => serde_json::to_writer(&mut *h, other).expect("hashing cannot fail"),
    }
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

/// The digest of the log tally is kept modulo this (2^62), so that adding one
/// term (< 2^56) to a digest never overflows an i64 on either engine.
pub const TALLY_MODULUS: i64 = 1 << 62;

/// One event's term of the tally digest: the first 7 bytes (big-endian) of
/// SHA-256 of `"{position}:{stream_id}:{version}"`, the stream id lowercase and
/// hyphenated as PostgreSQL's `uuid::text` prints it. PostgreSQL computes the same
/// in SQL (`schema/postgres/0008_integrity.sql`, `store::append_statement`).
pub fn tally_term(position: i64, stream_id: &str, version: i64) -> i64 {
    let d = Sha256::digest(format!("{position}:{stream_id}:{version}").as_bytes());
    d[..7]
        .iter()
        .fold(0i64, |acc, b| (acc << 8) | i64::from(*b))
}

/// The running tally of a log (table `log_tally`): its events, its streams (events
/// at version 1) and the sum of their [`tally_term`]s modulo [`TALLY_MODULUS`].
/// The sum does not depend on the order events are counted in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    pub events: i64,
    pub streams: i64,
    pub digest: i64,
}

impl Tally {
    pub fn add(&mut self, position: i64, stream_id: &str, version: i64) {
        self.events += 1;
        if version == 1 {
            self.streams += 1;
        }
        self.digest = (self.digest + tally_term(position, stream_id, version)) % TALLY_MODULUS;
    }

    /// Two tallies summed (the rows of several writer slots).
    pub fn merge(&mut self, other: Tally) {
        self.events += other.events;
        self.streams += other.streams;
        self.digest = (self.digest + other.digest.rem_euclid(TALLY_MODULUS)) % TALLY_MODULUS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The streamed hash equals the hash of the canonical document written out in
    /// full, whatever the key order of the input.
    #[test]
    fn streamed_hash_is_the_canonical_document_hash() {
        let t = DateTime::parse_from_rfc3339("2026-11-28T08:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let id = Uuid::nil();
        let data = json!({"z": 1, "a": {"y": [1, "二", null, 2.5], "b": "\"quoted\"\n"}});
        let meta = json!({"actor": "x", "unit": null});
        let doc = json!({
            "data": data, "metadata": meta, "occurred_at": rfc3339(t), "prev": GENESIS,
            "recorded_at": rfc3339(t), "schema_version": 1, "stream_id": id.to_string(),
            "type": "T", "version": 3,
        });
        let expected = hex::encode(Sha256::digest(doc.to_string().as_bytes()));
        assert_eq!(
            event_hash(GENESIS, id, 3, "T", 1, &data, &meta, t, t),
            expected
        );
        let changed = json!({"z": 2, "a": {"y": [1, "二", null, 2.5], "b": "\"quoted\"\n"}});
        assert_ne!(
            event_hash(GENESIS, id, 3, "T", 1, &changed, &meta, t, t),
            expected
        );
    }

    /// The instants, numbers and ids the hash writes without a text of their own
    /// are the bytes `rfc3339` and `to_string` write: the same hash as the document
    /// written out in full, across years, sub-second digits, a leap second and
    /// years `rfc3339` writes its own way.
    #[test]
    fn instants_numbers_and_ids_hash_as_their_text() {
        use chrono::{NaiveDate, TimeZone};
        let at = |y, mo, d, h, mi, s, nano| {
            let n = NaiveDate::from_ymd_opt(y, mo, d)
                .unwrap()
                .and_hms_nano_opt(h, mi, s, nano)
                .unwrap();
            Utc.from_utc_datetime(&n)
        };
        let times = [
            at(2026, 11, 28, 8, 0, 0, 123_456_000),
            at(2026, 1, 2, 3, 4, 5, 0),
            at(1999, 12, 31, 23, 59, 59, 999_999_999),
            at(2016, 12, 31, 23, 59, 59, 1_500_000_000),
            at(0, 1, 1, 0, 0, 0, 7_000),
            at(9999, 12, 31, 23, 59, 59, 1_000),
            at(10000, 1, 1, 0, 0, 0, 0),
            at(-1, 6, 15, 12, 30, 30, 500_000),
        ];
        let data = json!({"a": 1});
        let meta = json!({"actor": "x"});
        for (i, t) in times.into_iter().enumerate() {
            let id = Uuid::from_u128(0x0190_a7a4_1c2b_7d3e_8f40_1234_5678_9abc + i as u128);
            for (version, schema) in [(1, 1), (i as i64 * 1_000_003, -7), (i64::MAX, i32::MAX)] {
                let doc = json!({
                    "data": data, "metadata": meta, "occurred_at": rfc3339(t), "prev": GENESIS,
                    "recorded_at": rfc3339(t), "schema_version": schema,
                    "stream_id": id.to_string(), "type": "T", "version": version,
                });
                let expected = hex::encode(Sha256::digest(doc.to_string().as_bytes()));
                assert_eq!(
                    event_hash(GENESIS, id, version, "T", schema, &data, &meta, t, t),
                    expected,
                    "{}",
                    rfc3339(t)
                );
            }
        }
    }

    #[test]
    fn a_tally_term_is_the_first_seven_bytes_of_the_hash() {
        let id = "0190a7a4-1c2b-7d3e-8f40-123456789abc";
        let full = Sha256::digest(format!("5:{id}:1").as_bytes());
        let expected = u64::from_be_bytes([
            0, full[0], full[1], full[2], full[3], full[4], full[5], full[6],
        ]);
        assert_eq!(tally_term(5, id, 1) as u64, expected);
        assert!(tally_term(5, id, 1) < 1 << 56);
        // Order does not matter; a swapped position does.
        let (mut a, mut b, mut c) = (Tally::default(), Tally::default(), Tally::default());
        a.add(5, id, 1);
        a.add(6, id, 2);
        b.add(6, id, 2);
        b.add(5, id, 1);
        c.add(6, id, 1);
        c.add(5, id, 2);
        assert_eq!(a, b);
        assert_eq!((a.events, a.streams), (2, 1));
        assert_ne!(a.digest, c.digest);
    }
}
