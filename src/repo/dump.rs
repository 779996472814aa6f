//! The read models and reference data in an archive of `yiwang export` (the log's
//! own tables and the copy itself are in `store/dump.rs`): how their rows travel,
//! and the ticket serials a restore sets past the highest number restored.

use crate::store::dump::{Table, Tx, cols};

/// The organisation and catalogue in force (`reference_data`).
pub const REFERENCE: Table = Table {
    kind: "reference",
    table: "reference_data",
    order_by: "kind",
    cols: cols! { kind as "name": Text, source: Text, doc: Text, loaded_at: Time },
    on_conflict: "ON CONFLICT (kind) DO UPDATE SET source = excluded.source, \
                  doc = excluded.doc, loaded_at = excluded.loaded_at",
};

/// Bearer tokens, as the SHA-256 hashes the database holds.
pub const TOKENS: Table = Table {
    kind: "token",
    table: "tokens",
    order_by: "id",
    cols: cols! {
        id: Text, token_hash: Text, user_name as "user": Text, role: Text, unit: Text,
        created_at: Time, revoked_at: Time null,
        // Schema 9 (token expiry).
        expires_at: Time added,
    },
    on_conflict: "ON CONFLICT DO NOTHING",
};

/// The people who sign in with a password (`yiwang user`), their argon2id hashes
/// as stored (the salt and parameters travel inside each PHC string), so everyone
/// signs in as before after a move. Their sessions and failed sign-ins do not
/// travel: after a restore people sign in again, and the lock-out starts afresh.
pub const USERS: Table = Table {
    kind: "user",
    table: "users",
    order_by: "user_name",
    cols: cols! {
        user_name as "user": Text, role: Text, unit: Text, password_hash: Text,
        created_at: Int, updated_at: Int, locked: Bool, device_id: Text null,
    },
    on_conflict: "ON CONFLICT DO NOTHING",
};

/// The ticket view written with each append.
pub const TICKET_VIEW: Table = Table {
    kind: "ticket_view",
    table: "ticket_view",
    order_by: "id",
    cols: cols! {
        id: Uuid, number: Text, state: Text, unit: Text null, centre: Text, category: Text,
        grid: Text null, co_units: List, version: Int, created_at: Time, updated_at: Time,
        doc: Text, head_hash: Text,
    },
    on_conflict: "",
};

/// Reporters' contact details.
pub const CONTACTS: Table = Table {
    kind: "contact",
    table: "contacts",
    order_by: "id",
    cols: cols! {
        id: Uuid, name: Text null, phone: Text null, created_at: Time, purged_at: Time null,
    },
    on_conflict: "",
};

/// The records of uploaded photos.
pub const ATTACHMENTS: Table = Table {
    kind: "attachment",
    table: "attachments",
    order_by: "hash, uploaded_by",
    cols: cols! { hash: Text, content_type: Text, size: Int, uploaded_by: Text, created_at: Time },
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
