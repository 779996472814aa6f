-- The append-only event log, the idempotency records and the inline ticket view.
-- Times are RFC 3339 UTC text with microseconds ("…T…Z"), which sorts as time;
-- uuids are hyphenated text; JSON is text.

-- One writer at a time (BEGIN IMMEDIATE), so positions commit in order and the
-- sequence-gap hazard of PostgreSQL does not arise here. AUTOINCREMENT: a
-- position is never reused.
CREATE TABLE events (
    position        INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id       TEXT NOT NULL,
    version         INTEGER NOT NULL CHECK (version >= 1),
    event_type      TEXT NOT NULL,
    schema_version  INTEGER NOT NULL,
    data            TEXT NOT NULL,
    metadata        TEXT NOT NULL,
    occurred_at     TEXT NOT NULL,
    recorded_at     TEXT NOT NULL,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the events table is append-only');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'the events table is append-only');
END;

CREATE TABLE idempotency_keys (
    scope         TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        INTEGER NOT NULL,
    body          TEXT NOT NULL,
    stream_id     TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (scope, key)
);

CREATE TABLE ticket_view (
    id          TEXT PRIMARY KEY,
    number      TEXT NOT NULL UNIQUE,
    state       TEXT NOT NULL,
    unit        TEXT,
    centre      TEXT NOT NULL,
    category    TEXT NOT NULL,
    grid        TEXT,
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    doc         TEXT NOT NULL,
    head_hash   TEXT NOT NULL,
    -- Co-units (协办) see the ticket in their queues too: a JSON array of codes.
    co_units    TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX ticket_view_queue ON ticket_view (created_at DESC, id DESC);
CREATE INDEX ticket_view_state ON ticket_view (state, created_at DESC, id DESC);
CREATE INDEX ticket_view_unit ON ticket_view (unit, created_at DESC, id DESC);

CREATE TABLE contacts (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    phone       TEXT,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    purged_at   TEXT
);

CREATE TABLE reference_data (
    kind        TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    doc         TEXT NOT NULL,
    loaded_at   TEXT NOT NULL
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    user_name   TEXT NOT NULL,
    role        TEXT NOT NULL,
    unit        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);
