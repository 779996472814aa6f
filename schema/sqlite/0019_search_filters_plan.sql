-- PostgreSQL's 0019 fixes the plan of its statement-level trigger on the view (see
-- schema/postgres/0019_search_filters_plan.sql). SQLite's triggers of 0017 are per
-- row and update the search row by its primary key already: nothing to change.
-- The file keeps both engines' migrations numbered alike (a backup's header
-- carries the schema version).
SELECT 1;
