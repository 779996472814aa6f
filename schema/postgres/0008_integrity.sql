-- The log's integrity (issue 19).
--
-- Append-only for real is a matter of roles on PostgreSQL: the service connects as
-- a role with only INSERT and SELECT on the log (deploy/postgres/roles.sql), so
-- neither `ALTER TABLE … DISABLE TRIGGER` (owner only) nor
-- `SET session_replication_role` (superuser only) is open to it.
--
-- A running tally of the log, kept by every append in its own statement (the `tally`
-- step of `store::APPEND_STATEMENT`): how many events, how many streams (events at
-- version 1), and an order-independent digest of where each event sits: the sum,
-- modulo 2^62, of the first 7 bytes (big-endian) of
-- SHA-256("{position}:{stream_id}:{version}"). `yiwang verify` recounts the log and
-- compares, so a whole ticket deleted, positions swapped or an event forged by SQL
-- shows even where every hash chain is intact. One row per writer slot (each writer
-- task of each instance draws its own), so appends do not queue on one row; the
-- tally is their sum. `dense_after` is SQLite's (positions here are sparse).
CREATE TABLE log_tally (
    slot         BIGINT PRIMARY KEY,
    events       BIGINT NOT NULL,
    streams      BIGINT NOT NULL,
    digest       BIGINT NOT NULL,
    dense_after  BIGINT
);

-- Seeded from the log as it stands (stop every instance for this upgrade: an older
-- one appending after it would leave the tally behind).
INSERT INTO log_tally (slot, events, streams, digest)
SELECT 0, COUNT(*), COUNT(*) FILTER (WHERE version = 1),
       COALESCE(SUM(term) % 4611686018427387904, 0)::bigint
FROM (SELECT version,
             ('x' || left(encode(sha256(convert_to(position::text || ':' || stream_id::text || ':' || version::text, 'UTF8')), 'hex'), 14))::bit(56)::bigint::numeric AS term
      FROM events) e
HAVING COUNT(*) > 0;
