-- Issue 22, point 2: a search that matches thousands of tickets (a street, a broad
-- word) is answered from the search index alone when no other filter needs the
-- view: the page's order (newest first) and `total` come from ticket_search, and
-- only the page's rows are read from ticket_view. A ticket's creation time never
-- changes, so it is kept here once, like the text (src/repo/tickets/list.rs).
-- Nullable only because SQLite cannot add a NOT NULL column without a default:
-- every row is filled here, and every new row is written with it.
ALTER TABLE ticket_search ADD COLUMN created_at TEXT;
UPDATE ticket_search SET created_at =
    (SELECT v.created_at FROM ticket_view v WHERE v.id = ticket_search.id);

-- The intake's similar-tickets read (0014) is served by ticket_view_category
-- (category, created_at DESC, id DESC), whose prefix is this index: one index
-- less to rewrite with every view row.
DROP INDEX ticket_view_similar;
