-- Issue 22, point 2: a search that matches thousands of tickets (a street, a broad
-- word) is answered from the search index alone when no other filter needs the
-- view: the page's order (newest first) and `total` come from ticket_search, and
-- only the page's rows are read from ticket_view. A ticket's creation time never
-- changes, so it is kept here once, like the text (src/repo/tickets/list.rs).
ALTER TABLE ticket_search ADD COLUMN created_at TIMESTAMPTZ;
UPDATE ticket_search s SET created_at = v.created_at FROM ticket_view v WHERE v.id = s.id;
-- A search row without its view row cannot be (both are written by the same
-- append), but should one exist it would have no time to sort by.
DELETE FROM ticket_search WHERE created_at IS NULL;
ALTER TABLE ticket_search ALTER COLUMN created_at SET NOT NULL;

-- The intake's similar-tickets read (0014) is served by ticket_view_category
-- (category, created_at DESC, id DESC), whose prefix is this index: one index
-- less to rewrite with every view row.
DROP INDEX ticket_view_similar;
