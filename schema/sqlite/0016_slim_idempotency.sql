-- Issue 24, point 2: a slimmer idempotency record. A ticket command's first answer
-- was kept whole (the ticket JSON, 1-3 KB) for its retries; it now keeps what
-- answering a retry needs: its status, the stream and the version the command left
-- it at. A retry folds the stream up to that version and renders the answer as the
-- first time. `body` stays for the answers that are no ticket (the appraisal
-- ledger's) and for the records written before this migration, which are answered
-- from their body as before. 0015 is another change's number; sqlx applies
-- migrations by version and accepts the gap.
--
-- SQLite cannot drop a column's NOT NULL, so the table is rebuilt (SQLite's own
-- recipe: create the new table, copy, drop the old one, rename). The alternative, a
-- new nullable column beside the old one, would still have to put something in the
-- NOT NULL `body` of every new record: an empty string standing for "no body", a
-- sentinel every reader must know. The copy costs one pass over the records, once;
-- the retention purge (`yiwang contacts purge`) keeps the table to a year of
-- commands. The table has no index but its primary key, no trigger and no
-- reference to it; sqlx runs this file in one transaction.
CREATE TABLE idempotency_keys_0016 (
    scope         TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        INTEGER NOT NULL,
    -- The first answer, kept whole: the appraisal's commands, and every record
    -- written before migration 0016. NULL: a ticket command's, answered from its
    -- stream at `version`.
    body          TEXT,
    stream_id     TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- The stream's version once the command was applied (NULL before 0016).
    version       INTEGER,
    PRIMARY KEY (scope, key),
    CHECK (body IS NOT NULL OR version IS NOT NULL)
);
INSERT INTO idempotency_keys_0016 (scope, key, request_hash, status, body, stream_id, created_at)
    SELECT scope, key, request_hash, status, body, stream_id, created_at FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_0016 RENAME TO idempotency_keys;
