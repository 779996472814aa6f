//! The read models and reference data in an archive of `yiwang export` (the log's
//! own tables and the copy itself are in `store/dump.rs`): how their rows travel,
//! and the ticket serials a restore sets past the highest number restored.

use crate::store::dump::{Table, Tx, Ty, added, col, opt};

/// The organisation and catalogue in force (`reference_data`).
pub const REFERENCE: Table = Table {
    kind: "reference",
    table: "reference_data",
    order_by: "kind",
    cols: &[
        col("name", "kind", Ty::Text),
        col("source", "source", Ty::Text),
        col("doc", "doc", Ty::Text),
        col("loaded_at", "loaded_at", Ty::Time),
    ],
    on_conflict: "ON CONFLICT (kind) DO UPDATE SET source = excluded.source, \
                  doc = excluded.doc, loaded_at = excluded.loaded_at",
};

/// Bearer tokens, as the SHA-256 hashes the database holds.
pub const TOKENS: Table = Table {
    kind: "token",
    table: "tokens",
    order_by: "id",
    cols: &[
        col("id", "id", Ty::Text),
        col("token_hash", "token_hash", Ty::Text),
        col("user", "user_name", Ty::Text),
        col("role", "role", Ty::Text),
        col("unit", "unit", Ty::Text),
        col("created_at", "created_at", Ty::Time),
        opt("revoked_at", "revoked_at", Ty::Time),
        // Schema 9 (token expiry).
        added("expires_at", "expires_at", Ty::Time),
    ],
    on_conflict: "ON CONFLICT DO NOTHING",
};

/// The ticket view written with each append.
pub const TICKET_VIEW: Table = Table {
    kind: "ticket_view",
    table: "ticket_view",
    order_by: "id",
    cols: &[
        col("id", "id", Ty::Uuid),
        col("number", "number", Ty::Text),
        col("state", "state", Ty::Text),
        opt("unit", "unit", Ty::Text),
        col("centre", "centre", Ty::Text),
        col("category", "category", Ty::Text),
        opt("grid", "grid", Ty::Text),
        col("co_units", "co_units", Ty::List),
        col("version", "version", Ty::Int),
        col("created_at", "created_at", Ty::Time),
        col("updated_at", "updated_at", Ty::Time),
        col("doc", "doc", Ty::Text),
        col("head_hash", "head_hash", Ty::Text),
    ],
    on_conflict: "",
};

/// Reporters' contact details.
pub const CONTACTS: Table = Table {
    kind: "contact",
    table: "contacts",
    order_by: "id",
    cols: &[
        col("id", "id", Ty::Uuid),
        opt("name", "name", Ty::Text),
        opt("phone", "phone", Ty::Text),
        col("created_at", "created_at", Ty::Time),
        opt("purged_at", "purged_at", Ty::Time),
    ],
    on_conflict: "",
};

/// The records of uploaded photos.
pub const ATTACHMENTS: Table = Table {
    kind: "attachment",
    table: "attachments",
    order_by: "hash, uploaded_by",
    cols: &[
        col("hash", "hash", Ty::Text),
        col("content_type", "content_type", Ty::Text),
        col("size", "size", Ty::Int),
        col("uploaded_by", "uploaded_by", Ty::Text),
        col("created_at", "created_at", Ty::Time),
    ],
    on_conflict: "ON CONFLICT DO NOTHING",
};

/// On PostgreSQL, sets the ticket serial sequence past the highest ticket number
/// restored (the SQLite store continues from the highest number by itself).
pub async fn continue_ticket_serials(tx: &mut Tx) -> anyhow::Result<()> {
    if let Tx::Postgres(t) = tx {
        // The ticket serials continue after the highest number restored.
        sqlx::query(
            "SELECT setval('ticket_serial_seq', GREATEST( \
               COALESCE((SELECT MAX(substring(number from 10)::bigint) FROM ticket_view \
                         WHERE number ~ '^[0-9]{8}-[0-9]{1,18}$'), 0) + 1, \
               (SELECT CASE WHEN is_called THEN last_value + 100 ELSE last_value END FROM ticket_serial_seq)), \
             false)",
        )
        .execute(&mut **t)
        .await?;
    }
    Ok(())
}
