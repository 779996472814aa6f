-- The ticket view's document (Chinese text: 2.5–3 KB as UTF-8) crosses the 2 KB
-- line past which PostgreSQL compresses a row, so every command that moves a ticket
-- compressed it again with pglz: 12% of PostgreSQL's CPU under the lifecycle load
-- (perf, 2026-12-06). lz4 does the same job in a fraction of the time. The stored
-- idempotent answer is the same document, so it gets the same. Values already
-- stored keep their compression until they are next written.
--
-- A server built without lz4 refuses the method; it then keeps pglz, which is
-- slower but correct, rather than failing the migration.
DO $$
BEGIN
    ALTER TABLE ticket_view ALTER COLUMN doc SET COMPRESSION lz4;
    ALTER TABLE idempotency_keys ALTER COLUMN body SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available on this server: the documents stay compressed with pglz';
END $$;
