-- Issue 24: an evidence list (unit, month, list) is kept in parts of at most 128
-- items (`daily::parts`), one row each, so that a projection batch rewrites the
-- parts its changes fall in instead of the whole list: the lists are one text value
-- each until now, and a month's grows to hundreds of kB, all written again by every
-- batch that changes it. `part` is the part's lower bound: the first item it may
-- hold, or '' for the first part (SQLite compares text as bytes, as the service
-- orders the items). 0017 is another change's number; sqlx applies migrations by
-- version and accepts the gap.
--
-- Each existing list becomes its own first part, whole: a valid state of any size
-- (a part grown past its size is split by the next batch that changes it), so no
-- rebuild is needed. The primary key changes, so the table is rebuilt (SQLite's
-- recipe: create, copy, drop, rename); it has no other index, no trigger and no
-- reference to it, and sqlx runs this file in one transaction.
CREATE TABLE stats_evidence_monthly_0018 (
    unit   TEXT NOT NULL,
    month  BIGINT NOT NULL,
    list   TEXT NOT NULL,
    items  TEXT NOT NULL,
    part   TEXT NOT NULL,
    PRIMARY KEY (month, unit, list, part)
) WITHOUT ROWID;
INSERT INTO stats_evidence_monthly_0018 (unit, month, list, items, part)
    SELECT unit, month, list, items, '' FROM stats_evidence_monthly;
DROP TABLE stats_evidence_monthly;
ALTER TABLE stats_evidence_monthly_0018 RENAME TO stats_evidence_monthly;
