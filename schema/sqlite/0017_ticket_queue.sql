-- Issue 22: a search within a dispatcher's scope. The scope (lead unit, centre,
-- grid, co-units) and the queue's other filters are columns of ticket_view, whose
-- rows hold the whole ticket document: SQLite stores `doc` before `co_units` and
-- `due_at`, so reading them for each of a street's 10,000 city-wide matches walks
-- past every document (its overflow pages included). A township dispatcher's
-- search of a common word took p99 52-95 ms over 100,000 tickets.
--
-- ticket_queue is the queue's filter columns alone, one narrow row per ticket
-- (about a tenth of a view row), clustered by id (WITHOUT ROWID) so a probe is one
-- b-tree descent. It is kept by triggers on ticket_view, so every writer of the
-- view (the append, the start-up backfill of due_at, a restore, a rebuild) keeps it
-- without knowing of it; it is derived, never archived (src/repo/tickets/list.rs).
CREATE TABLE ticket_queue (
    id          TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL,
    state       TEXT NOT NULL,
    unit        TEXT,
    centre      TEXT NOT NULL,
    grid        TEXT,
    category    TEXT NOT NULL,
    due_at      TEXT,
    co_units    TEXT NOT NULL DEFAULT '[]'
) WITHOUT ROWID;

INSERT INTO ticket_queue (id, created_at, state, unit, centre, grid, category, due_at, co_units)
SELECT id, created_at, state, unit, centre, grid, category, due_at, co_units FROM ticket_view;

CREATE TRIGGER ticket_queue_insert AFTER INSERT ON ticket_view BEGIN
    INSERT INTO ticket_queue
        (id, created_at, state, unit, centre, grid, category, due_at, co_units)
    VALUES (NEW.id, NEW.created_at, NEW.state, NEW.unit, NEW.centre, NEW.grid,
            NEW.category, NEW.due_at, NEW.co_units)
    ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at, state = excluded.state,
        unit = excluded.unit, centre = excluded.centre, grid = excluded.grid,
        category = excluded.category, due_at = excluded.due_at, co_units = excluded.co_units;
END;

-- An upsert's DO UPDATE fires this too. An upsert rather than an UPDATE, so that a
-- queue row missing for any reason is written again by the next change; not
-- INSERT OR REPLACE, whose policy the outer statement's (ABORT) overrides in a
-- trigger.
CREATE TRIGGER ticket_queue_update AFTER UPDATE ON ticket_view BEGIN
    INSERT INTO ticket_queue
        (id, created_at, state, unit, centre, grid, category, due_at, co_units)
    VALUES (NEW.id, NEW.created_at, NEW.state, NEW.unit, NEW.centre, NEW.grid,
            NEW.category, NEW.due_at, NEW.co_units)
    ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at, state = excluded.state,
        unit = excluded.unit, centre = excluded.centre, grid = excluded.grid,
        category = excluded.category, due_at = excluded.due_at, co_units = excluded.co_units;
END;

CREATE TRIGGER ticket_queue_delete AFTER DELETE ON ticket_view BEGIN
    DELETE FROM ticket_queue WHERE id = OLD.id;
END;
