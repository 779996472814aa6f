-- The append-only event log, the idempotency records and the inline ticket view.

-- Positions come from this sequence in a statement of their own, after the
-- transaction has its xid; see src/store/postgres.rs for why the order matters.
CREATE SEQUENCE events_position_seq;

CREATE TABLE events (
    position        BIGINT PRIMARY KEY,
    stream_id       UUID NOT NULL,
    version         BIGINT NOT NULL CHECK (version >= 1),
    event_type      TEXT NOT NULL,
    schema_version  INT NOT NULL,
    data            JSONB NOT NULL,
    metadata        JSONB NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL,
    -- The appending transaction, and the first xid not yet assigned when the row
    -- was inserted: every transaction that could hold a smaller position has an
    -- xid below tx_horizon, so once the oldest running xid passes it, nothing
    -- before this position can still appear.
    tx_id           XID8 NOT NULL DEFAULT pg_current_xact_id(),
    tx_horizon      XID8 NOT NULL DEFAULT pg_snapshot_xmax(pg_current_snapshot()),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);
CREATE INDEX events_type_position ON events (event_type, position);

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

CREATE SEQUENCE ticket_serial_seq;

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
    doc         JSONB NOT NULL
);
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
