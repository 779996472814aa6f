-- Daily counters of the unit_stats projection (issue 4): one row per unit and
-- business day (days since 1970-01-01, Asia/Shanghai dates), one column per
-- counter; see src/projections/daily.rs for what each counts. A period's figures
-- are sums over these rows.
CREATE TABLE stats_daily (
    unit                    TEXT NOT NULL,
    day                     BIGINT NOT NULL,
    received                BIGINT NOT NULL DEFAULT 0,
    due_to_sign             BIGINT NOT NULL DEFAULT 0,
    signed_on_time          BIGINT NOT NULL DEFAULT 0,
    signed                  BIGINT NOT NULL DEFAULT 0,
    dtf_due                 BIGINT NOT NULL DEFAULT 0,
    on_time_due             BIGINT NOT NULL DEFAULT 0,
    dtf_handled             BIGINT NOT NULL DEFAULT 0,
    on_time_handled         BIGINT NOT NULL DEFAULT 0,
    both_day                BIGINT NOT NULL DEFAULT 0,
    both_month              BIGINT NOT NULL DEFAULT 0,
    both_quarter            BIGINT NOT NULL DEFAULT 0,
    both_year               BIGINT NOT NULL DEFAULT 0,
    on_time_both_day        BIGINT NOT NULL DEFAULT 0,
    on_time_both_month      BIGINT NOT NULL DEFAULT 0,
    on_time_both_quarter    BIGINT NOT NULL DEFAULT 0,
    on_time_both_year       BIGINT NOT NULL DEFAULT 0,
    handled                 BIGINT NOT NULL DEFAULT 0,
    one_time                BIGINT NOT NULL DEFAULT 0,
    turnaround_secs         BIGINT NOT NULL DEFAULT 0,
    overdue_start           BIGINT NOT NULL DEFAULT 0,
    overdue_end             BIGINT NOT NULL DEFAULT 0,
    returns                 BIGINT NOT NULL DEFAULT 0,
    extensions_requested    BIGINT NOT NULL DEFAULT 0,
    extensions_approved     BIGINT NOT NULL DEFAULT 0,
    verification_failures   BIGINT NOT NULL DEFAULT 0,
    supervisions            BIGINT NOT NULL DEFAULT 0,
    repeated_supervisions   BIGINT NOT NULL DEFAULT 0,
    satisfied               BIGINT NOT NULL DEFAULT 0,
    basically_satisfied     BIGINT NOT NULL DEFAULT 0,
    unsatisfied             BIGINT NOT NULL DEFAULT 0,
    repeat_complaints       BIGINT NOT NULL DEFAULT 0,
    -- Day first: every read is a range of days.
    PRIMARY KEY (day, unit)
);

-- The turnaround seconds of the episodes each unit handled each day, sorted and
-- comma-separated: the median and p90 need the values, not only their sum.
CREATE TABLE stats_turnaround (
    unit  TEXT NOT NULL,
    day   BIGINT NOT NULL,
    secs  TEXT NOT NULL,
    PRIMARY KEY (day, unit)
);

-- The same per month (year * 12 + month - 1), for month, quarter and year
-- figures: a year of a district is a few hundred rows.
CREATE TABLE stats_monthly (
    unit                    TEXT NOT NULL,
    month                   BIGINT NOT NULL,
    received                BIGINT NOT NULL DEFAULT 0,
    due_to_sign             BIGINT NOT NULL DEFAULT 0,
    signed_on_time          BIGINT NOT NULL DEFAULT 0,
    signed                  BIGINT NOT NULL DEFAULT 0,
    dtf_due                 BIGINT NOT NULL DEFAULT 0,
    on_time_due             BIGINT NOT NULL DEFAULT 0,
    dtf_handled             BIGINT NOT NULL DEFAULT 0,
    on_time_handled         BIGINT NOT NULL DEFAULT 0,
    both_day                BIGINT NOT NULL DEFAULT 0,
    both_month              BIGINT NOT NULL DEFAULT 0,
    both_quarter            BIGINT NOT NULL DEFAULT 0,
    both_year               BIGINT NOT NULL DEFAULT 0,
    on_time_both_day        BIGINT NOT NULL DEFAULT 0,
    on_time_both_month      BIGINT NOT NULL DEFAULT 0,
    on_time_both_quarter    BIGINT NOT NULL DEFAULT 0,
    on_time_both_year       BIGINT NOT NULL DEFAULT 0,
    handled                 BIGINT NOT NULL DEFAULT 0,
    one_time                BIGINT NOT NULL DEFAULT 0,
    turnaround_secs         BIGINT NOT NULL DEFAULT 0,
    overdue_start           BIGINT NOT NULL DEFAULT 0,
    overdue_end             BIGINT NOT NULL DEFAULT 0,
    returns                 BIGINT NOT NULL DEFAULT 0,
    extensions_requested    BIGINT NOT NULL DEFAULT 0,
    extensions_approved     BIGINT NOT NULL DEFAULT 0,
    verification_failures   BIGINT NOT NULL DEFAULT 0,
    supervisions            BIGINT NOT NULL DEFAULT 0,
    repeated_supervisions   BIGINT NOT NULL DEFAULT 0,
    satisfied               BIGINT NOT NULL DEFAULT 0,
    basically_satisfied     BIGINT NOT NULL DEFAULT 0,
    unsatisfied             BIGINT NOT NULL DEFAULT 0,
    repeat_complaints       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (month, unit)
);

CREATE TABLE stats_turnaround_monthly (
    unit  TEXT NOT NULL,
    month BIGINT NOT NULL,
    secs  TEXT NOT NULL,
    PRIMARY KEY (month, unit)
);

-- The evidence behind an appraisal's deductions, per unit, month and list
-- (`late_signs`, `not_on_time`, ...): `ticket:position` items, comma-separated.
CREATE TABLE stats_evidence_monthly (
    unit   TEXT NOT NULL,
    month  BIGINT NOT NULL,
    list   TEXT NOT NULL,
    items  TEXT NOT NULL,
    PRIMARY KEY (month, unit, list)
);

-- The projection's older rows have no counters behind them: empty it, so the
-- runner rebuilds it from the log (in one pass) when `serve` next starts.
DELETE FROM stats_tickets;
DELETE FROM stats_episodes;
DELETE FROM stats_occurrences;
UPDATE projection_checkpoints SET position = 0 WHERE name = 'unit_stats';
