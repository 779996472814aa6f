-- The service's own PostgreSQL role (issue 19): it may append to the event log and
-- read it, never change or remove what is there.
--
-- Two roles:
--   - the owner (here the role that ran `yiwang migrate`): owns every table, runs the
--     migrations, `yiwang restore`, `yiwang contacts purge` (it deletes old stored
--     answers) and this file;
--   - yiwang_app, the role `yiwang serve` connects as: SELECT and INSERT on the log
--     (`events`) and on the stored first answers (`idempotency_keys`: a stored answer
--     is replayed to clients, and `yiwang verify` finds a deleted ticket through
--     them); what the projections and the ticket view need elsewhere. Not being the
--     owner, it cannot `ALTER TABLE events DISABLE TRIGGER`; not being a superuser, it
--     cannot `SET session_replication_role = replica`; it has no UPDATE, DELETE or
--     TRUNCATE on the log to begin with.
--
-- Once, as a superuser (or a role with CREATEROLE):
--   CREATE ROLE yiwang_app LOGIN PASSWORD '…';
--   GRANT CONNECT ON DATABASE yiwang TO yiwang_app;
-- Then, as the owner, after `yiwang migrate` and again after every upgrade (a
-- migration may add tables):
--   psql "postgres://OWNER@HOST/yiwang" -v ON_ERROR_STOP=1 -f deploy/postgres/roles.sql
-- `yiwang serve` started as yiwang_app applies no migration (it finds none pending);
-- run `yiwang migrate` as the owner before starting a new release.
-- tests/store (`the_service_role_appends_but_cannot_rewrite_the_log`) runs this file.

GRANT USAGE ON SCHEMA public TO yiwang_app;
REVOKE CREATE ON SCHEMA public FROM yiwang_app;

-- Everything but the log: read and write (projections, ticket view, contacts,
-- tokens, reference data, attachments, the log tally).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO yiwang_app;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO yiwang_app;

-- The log and the stored answers: append and read only.
REVOKE ALL ON events, idempotency_keys FROM yiwang_app;
GRANT SELECT, INSERT ON events, idempotency_keys TO yiwang_app;

-- The record of migrations: read only (the service checks nothing is pending).
REVOKE ALL ON _sqlx_migrations FROM yiwang_app;
GRANT SELECT ON _sqlx_migrations TO yiwang_app;
