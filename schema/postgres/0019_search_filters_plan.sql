-- The trigger of 0017 that copies the view's filter columns onto the search rows
-- runs one UPDATE joined to the batch's rows (the transition table). PL/pgSQL
-- plans that UPDATE once per connection and keeps the plan; planned on a young
-- table (a new deployment's first batches, or a connection opened then), it was a
-- hash join over a sequential scan of ticket_search, kept for the life of the
-- connection: every append batch then read every search row (3.6 ms a batch at
-- 20,000 tickets, growing with the table; at 16 clients the load benchmark ran a
-- quarter slower with the trigger than without it). The function plans with
-- nested loops over the primary key only, whatever the tables' size or
-- statistics: one index probe per row of the batch.
ALTER FUNCTION ticket_search_filters()
    SET enable_seqscan = off
    SET enable_hashjoin = off
    SET enable_mergejoin = off;
