-- Projections built from the global feed (issue 4). Everything here can be dropped
-- and rebuilt from the event log with `yiwang replay`. Times are microseconds since
-- the Unix epoch (BIGINT) and ids are text on both engines, so the projection's SQL
-- is the same on SQLite and PostgreSQL.

-- Where each projection has read the feed to; written in the same transaction as
-- the projection's rows, and advanced only from the value it was read at (so two
-- writers can never both apply one batch).
CREATE TABLE projection_checkpoints (
    name        TEXT PRIMARY KEY,
    position    BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Which process runs a projection: the owner renews before expires_at; another
-- process takes over once it has expired.
CREATE TABLE projection_leases (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);

-- unit_stats: the per-ticket state the projection folds (JSON), ...
CREATE TABLE stats_tickets (
    ticket  TEXT PRIMARY KEY,
    doc     TEXT NOT NULL
);

-- ... one row per assignment of a ticket to a working unit (an episode) ...
CREATE TABLE stats_episodes (
    ticket           TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    unit             TEXT NOT NULL,
    category         TEXT NOT NULL,
    assigned_at      BIGINT NOT NULL,
    assign_pos       BIGINT NOT NULL,
    sign_due         BIGINT,
    signed_at        BIGINT,
    sign_pos         BIGINT,
    left_at          BIGINT,
    return_pos       BIGINT,
    handle_due       BIGINT,
    handled_at       BIGINT,
    handle_pos       BIGINT,
    handled_due      BIGINT,
    turnaround_secs  BIGINT,
    closed_at        BIGINT,
    reworks          INTEGER NOT NULL,
    ext_requested    INTEGER NOT NULL,
    ext_approved     INTEGER NOT NULL,
    after_return     INTEGER NOT NULL,
    -- The last instant this episode can count in a period (its latest date, or
    -- the far future while it is open): periods before it are the ones to read.
    span_end         BIGINT NOT NULL,
    PRIMARY KEY (ticket, seq)
);
CREATE INDEX stats_episodes_unit ON stats_episodes (unit, span_end);
CREATE INDEX stats_episodes_span ON stats_episodes (span_end, assigned_at);

-- ... and one row per countable occurrence (a return, a supervision, feedback,
-- a grid report, ...), each naming the event behind it.
CREATE TABLE stats_occurrences (
    position  BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    ticket    TEXT NOT NULL,
    unit      TEXT NOT NULL,
    at        BIGINT NOT NULL,
    category  TEXT NOT NULL,
    source    TEXT NOT NULL,
    PRIMARY KEY (position, kind)
);
CREATE INDEX stats_occurrences_unit ON stats_occurrences (unit, at);
CREATE INDEX stats_occurrences_at ON stats_occurrences (at);
