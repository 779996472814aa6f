-- Issue 22: a search within a dispatcher's scope. The scope (lead unit, centre,
-- grid, co-units) and the queue's other filters are columns of ticket_view, whose
-- rows hold the whole ticket document: for each of a street's 10,000 city-wide
-- matches, a probe of the view's primary key and a visit to a wide heap page. A
-- township dispatcher's search of a common word took p99 77-103 ms over 100,000
-- tickets.
--
-- ticket_queue is the queue's filter columns alone, one narrow row per ticket
-- (about a tenth of a view row). Its only index is the primary key on an id that
-- never changes, so its updates are HOT: no index entry per command. It is kept by
-- statement-level triggers on ticket_view, one statement per append batch (the
-- transition table carries the batch's rows), so every writer of the view (the
-- append, the start-up backfill of due_at, a restore, a rebuild) keeps it without
-- knowing of it; it is derived, never archived (src/repo/tickets/list.rs).
CREATE TABLE ticket_queue (
    id          UUID PRIMARY KEY,
    created_at  TIMESTAMPTZ NOT NULL,
    state       TEXT NOT NULL,
    unit        TEXT,
    centre      TEXT NOT NULL,
    grid        TEXT,
    category    TEXT NOT NULL,
    due_at      TIMESTAMPTZ,
    co_units    TEXT[] NOT NULL DEFAULT '{}'
) WITH (fillfactor = 80);

INSERT INTO ticket_queue (id, created_at, state, unit, centre, grid, category, due_at, co_units)
SELECT id, created_at, state, unit, centre, grid, category, due_at, co_units FROM ticket_view;

CREATE FUNCTION ticket_queue_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ticket_queue (id, created_at, state, unit, centre, grid, category, due_at, co_units)
    SELECT id, created_at, state, unit, centre, grid, category, due_at, co_units FROM written
    ON CONFLICT (id) DO UPDATE SET created_at = EXCLUDED.created_at, state = EXCLUDED.state,
        unit = EXCLUDED.unit, centre = EXCLUDED.centre, grid = EXCLUDED.grid,
        category = EXCLUDED.category, due_at = EXCLUDED.due_at, co_units = EXCLUDED.co_units;
    RETURN NULL;
END
$$;

CREATE FUNCTION ticket_queue_drop() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM ticket_queue q USING dropped d WHERE q.id = d.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER ticket_queue_insert AFTER INSERT ON ticket_view
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION ticket_queue_write();
CREATE TRIGGER ticket_queue_update AFTER UPDATE ON ticket_view
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION ticket_queue_write();
CREATE TRIGGER ticket_queue_delete AFTER DELETE ON ticket_view
    REFERENCING OLD TABLE AS dropped FOR EACH STATEMENT EXECUTE FUNCTION ticket_queue_drop();
