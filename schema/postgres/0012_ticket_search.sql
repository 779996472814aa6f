-- The ticket queue on the server (issue 22, point 2): text search, the overdue
-- filter with any state, the sort by deadline. Why bigrams kept by the service and
-- not pg_trgm: src/repo/tickets/search.rs.

-- The earliest open deadline of an assigned ticket (the sign deadline until signed,
-- the handle deadline): overdue once it has passed. Written with the view row;
-- the service fills it in at start-up for rows written before this migration.
ALTER TABLE ticket_view ADD COLUMN due_at TIMESTAMPTZ;
CREATE INDEX ticket_view_due ON ticket_view (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX ticket_view_category ON ticket_view (category, created_at DESC, id DESC);

-- What a ticket is searched in (number, title, description, address; lower-cased)
-- and its bigrams, written once when it is accepted (its own table: the view row
-- is rewritten by every command, this text never changes). The service indexes at
-- start-up the tickets that have no row here.
CREATE TABLE ticket_search (
    id      UUID PRIMARY KEY,
    search  TEXT NOT NULL,
    grams   TEXT[] NOT NULL
);
CREATE INDEX ticket_search_grams ON ticket_search USING gin (grams);
