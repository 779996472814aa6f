-- Issue 22: a search within a dispatcher's scope. A search's matches come from
-- ticket_search (0015), but the scope (lead unit, centre, grid, co-units) and the
-- queue's other filters (state, category, overdue) were columns of ticket_view
-- alone, so each of a common word's city-wide matches (10,000 for a street over
-- 100,000 tickets) was looked up in the view before the township's 2,100 could be
-- counted: p99 52-95 ms. A narrow table of those columns beside the view still
-- cost a probe per match (`sqlite3`, best of 15: the matches 12 ms; with the
-- probes 35 ms; with the filters on the search row itself 16 ms).
--
-- So the search row carries them too. Its text never changes; these columns change
-- with the ticket: a new ticket's row is written with them, and the triggers below
-- copy them from the view whenever a view row is written and they differ, so that
-- every writer of the view (the append, the start-up backfill of due_at, a
-- restore) keeps them without knowing of them. A restore writes no search rows:
-- `serve`'s start-up backfill writes them from the view, with these columns.
ALTER TABLE ticket_search ADD COLUMN state TEXT;
ALTER TABLE ticket_search ADD COLUMN unit TEXT;
ALTER TABLE ticket_search ADD COLUMN centre TEXT;
ALTER TABLE ticket_search ADD COLUMN grid TEXT;
ALTER TABLE ticket_search ADD COLUMN category TEXT;
ALTER TABLE ticket_search ADD COLUMN due_at TEXT;
ALTER TABLE ticket_search ADD COLUMN co_units TEXT NOT NULL DEFAULT '[]';

UPDATE ticket_search SET (state, unit, centre, grid, category, due_at, co_units) =
    (SELECT v.state, v.unit, v.centre, v.grid, v.category, v.due_at, v.co_units
     FROM ticket_view v WHERE v.id = ticket_search.id)
WHERE EXISTS (SELECT 1 FROM ticket_view v WHERE v.id = ticket_search.id);

CREATE TRIGGER ticket_search_filters_insert AFTER INSERT ON ticket_view BEGIN
    UPDATE ticket_search SET state = NEW.state, unit = NEW.unit, centre = NEW.centre,
        grid = NEW.grid, category = NEW.category, due_at = NEW.due_at, co_units = NEW.co_units
    WHERE id = NEW.id AND (state IS NOT NEW.state OR unit IS NOT NEW.unit
        OR centre IS NOT NEW.centre OR grid IS NOT NEW.grid OR category IS NOT NEW.category
        OR due_at IS NOT NEW.due_at OR co_units IS NOT NEW.co_units);
END;

CREATE TRIGGER ticket_search_filters_update AFTER UPDATE ON ticket_view BEGIN
    UPDATE ticket_search SET state = NEW.state, unit = NEW.unit, centre = NEW.centre,
        grid = NEW.grid, category = NEW.category, due_at = NEW.due_at, co_units = NEW.co_units
    WHERE id = NEW.id AND (state IS NOT NEW.state OR unit IS NOT NEW.unit
        OR centre IS NOT NEW.centre OR grid IS NOT NEW.grid OR category IS NOT NEW.category
        OR due_at IS NOT NEW.due_at OR co_units IS NOT NEW.co_units);
END;
