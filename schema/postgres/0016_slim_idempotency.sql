-- Issue 24, point 2: a slimmer idempotency record. A ticket command's first answer
-- was kept whole (the ticket JSON, 1-3 KB, compressed, TOASTed) for its retries; it
-- now keeps what answering a retry needs: its status, the stream and the version the
-- command left it at. A retry folds the stream up to that version and renders the
-- answer as the first time. `body` stays for the answers that are no ticket (the
-- appraisal ledger's) and for the records written before this migration, which are
-- answered from their body as before. 0015 is another change's number; sqlx applies
-- migrations by version and accepts the gap.
--
-- Both statements change the catalogue only: no row is rewritten, nothing is
-- scanned (the CHECK is NOT VALID: it holds for every row written from now on; the
-- older rows all have a body).
ALTER TABLE idempotency_keys ADD COLUMN version BIGINT;
ALTER TABLE idempotency_keys ALTER COLUMN body DROP NOT NULL;
ALTER TABLE idempotency_keys ADD CONSTRAINT idempotency_keys_answer
    CHECK (body IS NOT NULL OR version IS NOT NULL) NOT VALID;
