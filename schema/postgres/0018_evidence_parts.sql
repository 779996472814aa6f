-- Issue 24: an evidence list (unit, month, list) is kept in parts of at most 128
-- items (`daily::parts`), one row each, so that a projection batch rewrites the
-- parts its changes fall in instead of the whole list: the lists are one text value
-- each until now, and a month's grows to hundreds of kB, all written again by every
-- batch that changes it. `part` is the part's lower bound: the first item it may
-- hold, or '' for the first part. It compares as bytes ("C"), as the service orders
-- the items. 0017 is another change's number; sqlx applies migrations by version and
-- accepts the gap.
--
-- Each existing list becomes its own first part, whole: a valid state of any size
-- (a part grown past its size is split by the next batch that changes it), so no
-- rebuild is needed. Adding a column with a constant default changes the catalogue
-- only; the new primary key reads the table once to build its index.
--
-- A release before 0018 still running beside this one cannot write the lists any
-- more (its upsert names the old key): if it holds the projection's lease, the
-- statistics stop moving, with an error in its log, until it is replaced. What it
-- reads stays right: it takes each part for a list of its own, and merges the
-- lists of one unit, month and name before it counts them.
ALTER TABLE stats_evidence_monthly ADD COLUMN part TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE stats_evidence_monthly ALTER COLUMN part DROP DEFAULT;
ALTER TABLE stats_evidence_monthly DROP CONSTRAINT stats_evidence_monthly_pkey;
ALTER TABLE stats_evidence_monthly ADD PRIMARY KEY (month, unit, list, part);
