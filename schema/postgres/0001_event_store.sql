-- The append-only event log, the idempotency records and the inline ticket view.

-- position = (appending transaction's xid << 10) + index within the append; see
-- src/store/postgres.rs for why (a feed that cannot skip a late commit). It stays
-- below 2^53 so JSON clients read it exactly.
CREATE TABLE events (
    position        BIGINT PRIMARY KEY CHECK (position > 0 AND position < 9007199254740992),
    stream_id       UUID NOT NULL,
    version         BIGINT NOT NULL CHECK (version >= 1),
    event_type      TEXT NOT NULL,
    schema_version  INT NOT NULL,
    -- JSON (text, checked) rather than JSONB: the log is written far more often
    -- than it is queried inside, and keeps each payload exactly as appended.
    data            JSON NOT NULL,
    metadata        JSON NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);

-- No UPDATE, DELETE or TRUNCATE of events, ever.
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the events table is append-only';
END $$;
CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

CREATE TABLE idempotency_keys (
    scope         TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        INT NOT NULL,
    body          TEXT NOT NULL,
    stream_id     UUID NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- Each instance takes a block of 100 ticket serials per round trip.
CREATE SEQUENCE ticket_serial_seq INCREMENT BY 100;

CREATE TABLE ticket_view (
    id          UUID PRIMARY KEY,
    number      TEXT NOT NULL UNIQUE,
    state       TEXT NOT NULL,
    unit        TEXT,
    centre      TEXT NOT NULL,
    category    TEXT NOT NULL,
    grid        TEXT,
    version     BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    -- The folded ticket as JSON text: read whole, never queried inside, so
    -- PostgreSQL need not parse it into JSONB on every command.
    doc         TEXT NOT NULL,
    head_hash   TEXT NOT NULL,
    -- Co-units (协办) see the ticket in their queues too.
    co_units    TEXT[] NOT NULL DEFAULT '{}'
-- Room on each page, so that commands that change no indexed column (sign,
-- comment, feedback…) update the row in place (HOT) without touching indexes.
) WITH (fillfactor = 70);
CREATE INDEX ticket_view_queue ON ticket_view (created_at DESC, id DESC);
CREATE INDEX ticket_view_state ON ticket_view (state, created_at DESC, id DESC);
CREATE INDEX ticket_view_unit ON ticket_view (unit, created_at DESC, id DESC);

-- Personal data, outside the log: the log holds only the id.
CREATE TABLE contacts (
    id          UUID PRIMARY KEY,
    name        TEXT,
    phone       TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    purged_at   TIMESTAMPTZ
);

-- Reference data (organisation and catalogue), one current document per kind.
CREATE TABLE reference_data (
    kind        TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    doc         TEXT NOT NULL,
    loaded_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    user_name   TEXT NOT NULL,
    role        TEXT NOT NULL,
    unit        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
