-- A revision per month of stats_evidence_monthly: a random number written anew,
-- in the same transaction, whenever any of that month's lists changes. A reader
-- that has parsed a month's lists keeps them with the revision it read and reads
-- them again only when the revision has changed: an appraisal of a year re-reads
-- the months that moved (in a live system, the current one) instead of all twelve.
-- Random rather than a position, so that a rebuild or a restored copy can never
-- present old contents under a revision a cache already holds for other contents.
CREATE TABLE stats_evidence_revs (
    month  BIGINT NOT NULL PRIMARY KEY,
    rev    BIGINT NOT NULL
);
INSERT INTO stats_evidence_revs (month, rev)
SELECT month, random() FROM stats_evidence_monthly GROUP BY month;
