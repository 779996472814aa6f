//! Read models written in the append's own transaction: the store's side of a
//! transactional view handler (as `primait/esrs` plugs a `TransactionalEventHandler`
//! into its store's append).
//!
//! An [`AppendRequest`](super::AppendRequest) carries its handlers; the store calls
//! each after it has written the request's events, inside the transaction (SQLite:
//! the request's SAVEPOINT) that holds them, so a read model written this way is
//! never behind its events nor ahead of them. The store knows nothing of what a
//! handler writes: the ticket view and the reporter's contact implement it in
//! `repo/`.
//!
//! **Why a handler contributes rows to the PostgreSQL statement instead of running
//! its own.** On PostgreSQL the appends that arrive together go as *one statement*
//! (one round trip, one commit; see `pg_append.rs`). A fully generic handler (`async
//! fn(&mut PgConnection, …)` called after the events) would need an explicit
//! transaction around the batch and one more statement per handler and batch:
//! `BEGIN`, the append, the view, `COMMIT` instead of one autocommitted statement,
//! three more round trips on the hot path. So on PostgreSQL a handler instead
//! describes its write once ([`PgPart`]: its columns and an `INSERT … SELECT` over
//! them) and gives one row per request ([`ViewHandler::pg_row`]); the store adds the
//! part to the batched statement, its rows unnested from one array per column and
//! kept only for the requests whose events are written (the CTE `go`). The batch is
//! still one statement. On SQLite, where a statement costs no round trip (the
//! database is in the process), the handler runs its own statements on the writer's
//! connection inside the request's savepoint.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;
use uuid::Uuid;

use super::{Appended, StoreError};

/// A read model written in the same transaction as the events of its request.
#[async_trait]
pub trait ViewHandler: Send + Sync + std::fmt::Debug {
    /// SQLite: writes this request's rows on the writer's connection, inside the
    /// request's savepoint, after its events; `appended` says where they went and
    /// the stream's new head hash. An error rolls the request back alone.
    async fn write_sqlite(
        &self,
        conn: &mut SqliteConnection,
        appended: &Appended,
    ) -> Result<(), StoreError>;

    /// PostgreSQL: this handler's part of the batched append statement.
    fn pg_part(&self) -> &'static PgPart;

    /// PostgreSQL: this request's row of [`ViewHandler::pg_part`], its values in
    /// the order of the part's columns; `head_hash` is the hash of the last event
    /// the request appends (the stream's new head).
    fn pg_row(&self, head_hash: &str) -> Vec<PgValue>;
}

/// What a handler adds to the batched PostgreSQL append statement.
///
/// The store puts into the statement, after the requests whose events are written
/// (the CTE `go`), for each part present in the batch:
///
/// ```sql
/// {rows} AS (SELECT p.* FROM unnest($n::int[], $n+1::{type}[], …)
///              AS p(req_idx, {column}, …) WHERE p.req_idx IN (SELECT idx FROM go)),
/// {rows}_w AS ({write})
/// ```
///
/// so `write` reads its rows `FROM {rows}`.
#[derive(Debug)]
pub struct PgPart {
    /// The name of the part's rows in the statement: a CTE name, unique among the
    /// parts. Parts go into the statement in the order of these names, so a batch
    /// with the same parts is always the same (prepared) statement.
    pub rows: &'static str,
    /// The columns of a row, each with its PostgreSQL type (`uuid`, `text`,
    /// `bigint`, `timestamptz`), in the order of [`ViewHandler::pg_row`].
    pub columns: &'static [(&'static str, &'static str)],
    /// The write: a data-modifying statement reading `FROM {rows}`.
    pub write: &'static str,
    /// Constraints whose violation refuses the request, each with the refusal
    /// ([`StoreError::Refused`]) it answers.
    pub refusals: &'static [(&'static str, &'static str)],
}

/// One value of a [`PgPart`] row.
#[derive(Clone, Debug, PartialEq)]
pub enum PgValue {
    Uuid(Option<Uuid>),
    Text(Option<String>),
    BigInt(Option<i64>),
    Time(Option<DateTime<Utc>>),
}
