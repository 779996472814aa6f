-- Attachments (photos): the bytes live on disk, content-addressed by their SHA-256
-- (see src/attachments.rs); this table records who uploaded what. One row per
-- (content, uploader): the same photo uploaded twice is stored once, and each user
-- who uploaded it may reference it in a command and read it back.
CREATE TABLE attachments (
    hash          TEXT NOT NULL CHECK (length(hash) = 64),
    content_type  TEXT NOT NULL,
    size          BIGINT NOT NULL CHECK (size >= 0),
    uploaded_by   TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (hash, uploaded_by)
);
