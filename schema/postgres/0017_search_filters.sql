-- Issue 22: a search within a dispatcher's scope. A search's matches come from
-- ticket_search (0015), but the scope (lead unit, centre, grid, co-units) and the
-- queue's other filters (state, category, overdue) were columns of ticket_view
-- alone, so each of a common word's city-wide matches (10,000 for a street over
-- 100,000 tickets) was looked up in the view before the township's 2,100 could be
-- counted: p99 77-103 ms. A narrow table of those columns beside the view still
-- cost a probe per match (`psql`, best of 12, loaded machine: the matches 18 ms;
-- with the probes 60 ms; with the filters on the search row itself 20 ms).
--
-- So the search row carries them too. Its text never changes; these columns change
-- with the ticket: a new ticket's row is written with them, and statement-level
-- triggers (one statement per append batch, the batch's rows in the transition
-- table) copy them from the view whenever view rows are written and they differ,
-- so that every writer of the view (the append, the start-up backfill of due_at, a
-- restore) keeps them without knowing of them. A restore writes no search rows:
-- `serve`'s start-up backfill writes them from the view, with these columns.
--
-- The table is rebuilt rather than altered and updated in place: the changing
-- columns come last, so that an update's WAL record leaves out the unchanged text
-- and grams before them (PostgreSQL logs only the changed middle of a tuple kept
-- on its page), and the table leaves room on each page (fillfactor 70) so that
-- those updates stay on the page (HOT) and write no GIN entries for the grams.
ALTER TABLE ticket_search RENAME TO ticket_search_0016;
ALTER TABLE ticket_search_0016 RENAME CONSTRAINT ticket_search_pkey TO ticket_search_0016_pkey;
ALTER INDEX ticket_search_grams RENAME TO ticket_search_0016_grams;

CREATE TABLE ticket_search (
    id          UUID PRIMARY KEY,
    search      TEXT NOT NULL,
    grams       TEXT[] NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    state       TEXT,
    unit        TEXT,
    centre      TEXT,
    grid        TEXT,
    category    TEXT,
    due_at      TIMESTAMPTZ,
    co_units    TEXT[] NOT NULL DEFAULT '{}'
) WITH (fillfactor = 70);

INSERT INTO ticket_search (id, search, grams, created_at, state, unit, centre, grid, category,
                           due_at, co_units)
SELECT s.id, s.search, s.grams, s.created_at, v.state, v.unit, v.centre, v.grid, v.category,
       v.due_at, COALESCE(v.co_units, '{}')
FROM ticket_search_0016 s LEFT JOIN ticket_view v ON v.id = s.id;

DROP TABLE ticket_search_0016;
CREATE INDEX ticket_search_grams ON ticket_search USING gin (grams);

CREATE FUNCTION ticket_search_filters() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ticket_search s SET state = w.state, unit = w.unit, centre = w.centre,
        grid = w.grid, category = w.category, due_at = w.due_at, co_units = w.co_units
    FROM written w
    WHERE s.id = w.id
      AND (s.state, s.unit, s.centre, s.grid, s.category, s.due_at, s.co_units)
          IS DISTINCT FROM (w.state, w.unit, w.centre, w.grid, w.category, w.due_at, w.co_units);
    RETURN NULL;
END
$$;

CREATE TRIGGER ticket_search_filters_insert AFTER INSERT ON ticket_view
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION ticket_search_filters();
CREATE TRIGGER ticket_search_filters_update AFTER UPDATE ON ticket_view
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION ticket_search_filters();
