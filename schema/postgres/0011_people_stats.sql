-- Issue 21. Two changes to the projections:
--
-- 1. unit_stats: a report closed as a duplicate, invalid or withdrawn leaves the
--    township's monthly report lists again (容貌管理 counts places found, 每发现一处)
--    and gets a `report_voided` occurrence beside its `accepted` one. The stored
--    facts and lists were folded without that: reset the checkpoint, so the runner
--    rebuilds unit_stats from the log (in one pass, replacing every row) when
--    `serve` next starts (as 0004 and 0005 did).
UPDATE projection_checkpoints SET position = 0 WHERE name = 'unit_stats';

-- 2. people_stats, a new projection: per person (the actor of the events), the
--    unit of their token and the business day (days since 1970-01-01, Asia/Shanghai),
--    the figures of the grid workers' appraisal (28号) and of the handlers: grid
--    reports, those not closed as duplicate/invalid, those fixed on the spot,
--    handlings, handlings on time, handlings that failed verification. Rebuilt from
--    the log by `yiwang replay` like unit_stats; a new database's runner folds it
--    from position 0.
CREATE TABLE people_tickets (
    ticket  TEXT PRIMARY KEY,
    doc     TEXT NOT NULL
);

CREATE TABLE stats_people (
    day                    BIGINT NOT NULL,
    unit                   TEXT NOT NULL,
    person                 TEXT NOT NULL,
    reports                BIGINT NOT NULL DEFAULT 0,
    valid_reports          BIGINT NOT NULL DEFAULT 0,
    self_handled           BIGINT NOT NULL DEFAULT 0,
    handled                BIGINT NOT NULL DEFAULT 0,
    on_time                BIGINT NOT NULL DEFAULT 0,
    verification_failures  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day, unit, person)
);
