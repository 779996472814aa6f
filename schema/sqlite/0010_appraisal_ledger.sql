-- The appraisal's ledger (issue 21): what people record for the appraisal (entries,
-- withdrawals, a township's closed year, grades) and the frozen monthly bulletins
-- are events of the log like a ticket's. There is no read model: the scoring folds
-- them from the log per request (`repo::appraisal`), so export, restore, replay and
-- verify cover them with no extra code. These partial indexes find them among the
-- tickets' events without reading the log; the queries of `repo::appraisal` use
-- exactly these predicates, so the planner can use them.
CREATE INDEX events_appraisal ON events (position) WHERE event_type IN
    ('AppraisalEntryRecorded', 'AppraisalEntryWithdrawn', 'AppraisalYearSubmitted',
     'AppraisalYearReopened', 'AppraisalGradeRecorded');
-- A bulletin's payload is a whole frozen answer: it has an index of its own, and is
-- read only when asked for.
CREATE INDEX events_bulletins ON events (position) WHERE event_type = 'AppraisalBulletinPublished';
