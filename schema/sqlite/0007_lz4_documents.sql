-- PostgreSQL's 0007 sets lz4 compression on the ticket document and the stored
-- idempotent answer. SQLite does not compress values, so there is nothing to do
-- here; the file keeps both engines' migrations numbered alike, which backups
-- rely on (an archive names the schema version it was made at).
SELECT 1;
