-- A token may expire (`yiwang token create … --expires-in 90d`): authentication
-- refuses it from this instant on (RFC 3339, UTC). NULL: it does not expire, as
-- every token made before this migration.
ALTER TABLE tokens ADD COLUMN expires_at TEXT;
