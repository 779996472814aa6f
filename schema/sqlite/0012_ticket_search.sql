-- The ticket queue on the server (issue 22, point 2): text search, the overdue
-- filter with any state, the sort by deadline. Why bigrams kept by the service and
-- not a tokenizer of the engine: src/repo/tickets/search.rs.

-- The earliest open deadline of an assigned ticket (the sign deadline until signed,
-- the handle deadline): overdue once it has passed. Written with the view row;
-- the service fills it in at start-up for rows written before this migration.
ALTER TABLE ticket_view ADD COLUMN due_at TEXT;
CREATE INDEX ticket_view_due ON ticket_view (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX ticket_view_category ON ticket_view (category, created_at DESC, id DESC);

-- What a ticket is searched in (number, title, description, address; lower-cased),
-- written once when it is accepted; `n` is the rowid of its bigrams in ticket_grams.
-- The service indexes at start-up the tickets that have no row here.
CREATE TABLE ticket_search (
    n       INTEGER PRIMARY KEY,
    id      TEXT NOT NULL UNIQUE,
    search  TEXT NOT NULL
);

-- The bigrams of each ticket's text, space-separated tokens; contentless and
-- without positions: only which ticket (rowid = ticket_search.n) has which bigram.
CREATE VIRTUAL TABLE ticket_grams USING fts5(grams, content='', detail=none);
