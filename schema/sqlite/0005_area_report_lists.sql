-- The grid and hotline reports behind the appraisal's area rules are now kept as
-- lists per township, month, source and category in stats_evidence_monthly
-- (list `report:{source}:{category}`), so an appraisal reads a few hundred lists
-- instead of every accepted report of the period. The existing rows have no such
-- lists: reset the checkpoint, so the runner rebuilds the projection from the log
-- (in one pass, replacing every row) when `serve` next starts.
UPDATE projection_checkpoints SET position = 0 WHERE name = 'unit_stats';
