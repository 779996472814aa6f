-- The log's integrity (issue 19).
--
-- 1. Append-only for real. The triggers of 0001 refuse UPDATE and DELETE; an
--    `INSERT OR REPLACE` deletes the row it replaces without firing them unless
--    recursive triggers are on, which every connection of yiwang now turns on
--    (`store::sqlite::connect_options`). And a new event must come at its stream's
--    head + 1: no event is put in below the head, past a gap, or twice.
--    (`yiwang restore` drops and recreates this trigger inside its transaction to
--    load an archive as it is, damaged or not: keep the text in step with
--    `store::sqlite::VERSION_TRIGGER`.)
CREATE TRIGGER events_version_follows_head BEFORE INSERT ON events
WHEN NEW.version IS NOT COALESCE((SELECT MAX(version) FROM events WHERE stream_id = NEW.stream_id), 0) + 1
BEGIN
    SELECT RAISE(ABORT, 'the events table is append-only: a new event''s version must be its stream''s last version + 1');
END;

-- 2. A running tally of the log, kept by every append in its own transaction: how
--    many events, how many streams (events at version 1), and an order-independent
--    digest of where each event sits: the sum, modulo 2^62, of the first 7 bytes
--    (big-endian) of SHA-256("{position}:{stream_id}:{version}"). `yiwang verify`
--    recounts the log and compares, so a whole ticket deleted, positions swapped or
--    an event forged by SQL shows even where every hash chain is intact.
--    One row per writer slot (SQLite has one writer: slot 0). `dense_after`: the
--    positions above it are dense (AUTOINCREMENT counts up by one); a restore of a
--    PostgreSQL archive, whose positions are sparse, sets it to its highest.
--    SQLite cannot hash in SQL: on a log that already holds events this writes a
--    marker (events = -1) and the store seeds the row from the log when it opens.
CREATE TABLE log_tally (
    slot         INTEGER PRIMARY KEY,
    events       INTEGER NOT NULL,
    streams      INTEGER NOT NULL,
    digest       INTEGER NOT NULL,
    dense_after  INTEGER
);
INSERT INTO log_tally (slot, events, streams, digest)
SELECT 0, -1, 0, 0 WHERE EXISTS (SELECT 1 FROM events);
