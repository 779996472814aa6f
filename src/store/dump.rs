//! The engine-level copy behind `yiwang export` and `yiwang restore` (the archive
//! itself is `backup/`): how a table's columns travel ([`Table`], [`Col`], [`Ty`],
//! [`Val`]), the log's own tables ([`EVENTS`], [`IDEMPOTENCY`]; the read models'
//! are in `repo/dump.rs`), the read snapshot an export is written from
//! ([`Snapshot`]), and the restore transaction ([`Tx`]) that inserts rows in
//! batches, sets the log tally and, on PostgreSQL, first advances the cluster's
//! transaction counter ([`advance_xids`]).

use std::collections::BTreeMap;

use anyhow::{Context, bail, ensure};
use futures::TryStreamExt;
use sqlx::Row;
use uuid::Uuid;

use crate::store::{self, Pool, either};

/// Rows per insert statement on PostgreSQL.
pub const BATCH: usize = 1000;

/// Rows per insert statement on SQLite: 200, or fewer for wide tables so that a
/// statement stays far below SQLite's limit of 32,766 parameters.
pub fn sqlite_batch(t: &Table) -> usize {
    (8_000 / t.cols.len()).min(200)
}
/// The most transaction ids restore consumes on PostgreSQL to put new positions
/// above the archive's (about eight minutes' worth).
pub const MAX_XID_ADVANCE: i64 = 50_000_000;

/// How a column travels: its type in the archive and in each engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// A JSON integer; BIGINT / INTEGER.
    Int,
    /// A string; TEXT.
    Text,
    /// A string; UUID on PostgreSQL, text on SQLite.
    Uuid,
    /// An RFC 3339 string; TIMESTAMPTZ on PostgreSQL, text on SQLite.
    Time,
    /// JSON written in place; JSON on PostgreSQL, text on SQLite.
    Json,
    /// An array of strings; TEXT[] on PostgreSQL, a JSON array as text on SQLite.
    List,
    /// A JSON boolean; BOOLEAN on PostgreSQL, 0 or 1 on SQLite (read and written as
    /// an integer in between).
    Bool,
}

/// One column of a [`Table`].
#[derive(Debug)]
pub struct Col {
    /// The name in the archive.
    pub field: &'static str,
    pub column: &'static str,
    pub ty: Ty,
    pub nullable: bool,
    /// A column added after format version 1 was first written: an archive from
    /// an older yiwang has no such field, which restores as null.
    pub added: bool,
}

/// A table's columns in order, several to a line: `column: Ty` travels under its
/// own name, `column as "field": Ty` under another; `null` after the type marks a
/// nullable column, `added` a nullable one older archives lack ([`Col::added`]).
macro_rules! cols {
    ($($column:ident $(as $field:literal)? : $ty:ident $($flag:ident)?),* $(,)?) => {
        &[$($crate::store::dump::Col {
            field: cols!(@field $column $($field)?),
            column: stringify!($column),
            ty: $crate::store::dump::Ty::$ty,
            nullable: cols!(@nullable $($flag)?),
            added: cols!(@added $($flag)?),
        }),*]
    };
    (@field $column:ident) => { stringify!($column) };
    (@field $column:ident $field:literal) => { $field };
    (@nullable) => { false };
    (@nullable null) => { true };
    (@nullable added) => { true };
    (@added) => { false };
    (@added null) => { false };
    (@added added) => { true };
}
pub(crate) use cols;

/// One table and the record kind its rows travel as.
#[derive(Debug)]
pub struct Table {
    pub kind: &'static str,
    pub table: &'static str,
    pub order_by: &'static str,
    pub cols: &'static [Col],
    /// What an insert does with a row the target already has (reference data and
    /// tokens may be there before a restore: `org load`, `token create`).
    pub on_conflict: &'static str,
}

/// The event log, every column.
pub const EVENTS: Table = Table {
    kind: "event",
    table: "events",
    order_by: "position",
    cols: cols! {
        position: Int, stream_id: Uuid, version: Int, event_type as "type": Text,
        schema_version: Int, data: Json, metadata: Json, occurred_at: Time, recorded_at: Time,
        prev_hash: Text, hash: Text,
    },
    on_conflict: "",
};

/// Stored first answers: a body, or (since schema 16) the version of the stream the
/// answer is rendered from (an archive written before has no `version`: its records
/// restore with their bodies, which answer as before).
pub const IDEMPOTENCY: Table = Table {
    kind: "idempotency",
    table: "idempotency_keys",
    order_by: "scope, key",
    cols: cols! {
        scope: Text, key: Text, request_hash: Text, status: Int, body: Text null, stream_id: Uuid,
        created_at: Time, version: Int added,
    },
    on_conflict: "",
};

/// One value of a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val {
    Int(i64),
    /// Text, a time, a uuid, JSON text or a JSON array of strings. `Text(None)` is
    /// a null of any type, a nullable integer's included.
    Text(Option<String>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Sqlite,
}

impl Engine {
    pub fn of(pool: &Pool) -> Engine {
        match pool {
            Pool::Postgres(_) => Engine::Postgres,
            Pool::Sqlite(_) => Engine::Sqlite,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Sqlite => "sqlite",
        }
    }

    /// The last migration this binary knows for the engine.
    pub fn latest_schema(self) -> i64 {
        let m = match self {
            Engine::Postgres => &store::postgres::MIGRATOR,
            Engine::Sqlite => &store::sqlite::MIGRATOR,
        };
        m.iter().map(|m| m.version).max().unwrap_or(0)
    }
}

/// `SELECT` of a table's columns, each as an integer or text.
fn select_sql(t: &Table, engine: Engine) -> String {
    let exprs: Vec<String> = t
        .cols
        .iter()
        .map(|c| match (engine, c.ty) {
            (Engine::Sqlite, _) => c.column.to_string(),
            (Engine::Postgres, Ty::Int) => format!("{}::bigint", c.column),
            (Engine::Postgres, Ty::Bool) => format!("{}::int::bigint", c.column),
            (Engine::Postgres, Ty::Text) => c.column.to_string(),
            (Engine::Postgres, Ty::Uuid | Ty::Json) => format!("{}::text", c.column),
            (Engine::Postgres, Ty::Time) => format!(
                "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
                c.column
            ),
            (Engine::Postgres, Ty::List) => format!("array_to_json({})::text", c.column),
        })
        .collect();
    format!(
        "SELECT {} FROM {} ORDER BY {}",
        exprs.join(", "),
        t.table,
        t.order_by
    )
}

/// A row's values, by the table's columns.
fn row_values<R: Row>(row: &R, cols: &[Col]) -> Result<Vec<Val>, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database>,
    i64: sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database>,
    String: sqlx::Type<R::Database>,
{
    cols.iter()
        .enumerate()
        .map(|(i, c)| match c.ty {
            Ty::Int | Ty::Bool if c.nullable => row
                .try_get::<Option<i64>, _>(i)
                .map(|n| n.map_or(Val::Text(None), Val::Int)),
            Ty::Int | Ty::Bool => row.try_get::<i64, _>(i).map(Val::Int),
            _ => row.try_get::<Option<String>, _>(i).map(Val::Text),
        })
        .collect()
}

/// Opens an existing database without creating or migrating anything.
pub async fn connect_existing(url: &str) -> anyhow::Result<Pool> {
    use sqlx::ConnectOptions;
    // An export reads each table with one long statement: not a slow query to warn of.
    let quiet = (
        tracing::log::LevelFilter::Off,
        std::time::Duration::from_secs(1),
    );
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let opts = store::postgres::connect_options(url)?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(opts.log_slow_statements(quiet.0, quiet.1))
            .await
            .with_context(|| format!("cannot connect to {}", crate::config::redact_url(url)))?;
        Ok(Pool::Postgres(pool))
    } else if url.starts_with("sqlite:") {
        let opts = store::sqlite::connect_options(url)?
            .create_if_missing(false)
            .log_slow_statements(quiet.0, quiet.1);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(opts)
            .await
            .with_context(|| format!("cannot open {url}"))?;
        Ok(Pool::Sqlite(pool))
    } else {
        bail!("unsupported database URL {url:?}: use postgres://… or sqlite://PATH")
    }
}

/// The one read transaction an export is written from (PostgreSQL: `REPEATABLE
/// READ`; SQLite: one WAL snapshot). Dropped without [`Snapshot::commit`], it rolls
/// back.
pub enum Snapshot {
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

impl Snapshot {
    pub async fn begin(pool: &Pool) -> anyhow::Result<Snapshot> {
        Ok(match pool {
            Pool::Postgres(p) => Snapshot::Postgres(
                p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
            // A read transaction: every read sees the snapshot of its first one.
            Pool::Sqlite(p) => Snapshot::Sqlite(p.begin().await?),
        })
    }

    /// The last migration applied (None when the table is empty).
    pub async fn schema_version(&mut self) -> Result<Option<i64>, sqlx::Error> {
        let sql = "SELECT MAX(version) FROM _sqlx_migrations WHERE success";
        either!(self, Snapshot::Postgres | Snapshot::Sqlite, tx => {
            sqlx::query_scalar(sql).fetch_one(&mut **tx).await
        })
    }

    /// The highest event position (0 without events).
    pub async fn max_position(&mut self) -> Result<i64, sqlx::Error> {
        let sql = "SELECT COALESCE(MAX(position), 0) FROM events";
        either!(self, Snapshot::Postgres | Snapshot::Sqlite, tx => {
            sqlx::query_scalar(sql).fetch_one(&mut **tx).await
        })
    }

    /// Streams every row of `t` in its order to `each`; returns how many.
    pub async fn rows(
        &mut self,
        t: &Table,
        mut each: impl FnMut(&[Val]) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let mut n = 0u64;
        let sql = select_sql(
            t,
            match self {
                Snapshot::Postgres(_) => Engine::Postgres,
                Snapshot::Sqlite(_) => Engine::Sqlite,
            },
        );
        either!(self, Snapshot::Postgres | Snapshot::Sqlite, tx => {
            let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).fetch(&mut **tx);
            while let Some(row) = rows.try_next().await? {
                let vals = row_values(&row, t.cols)?;
                each(&vals)?;
                n += 1;
            }
        });
        Ok(n)
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        either!(self, Snapshot::Postgres | Snapshot::Sqlite, tx => tx.commit().await)
    }
}

/// The open restore transaction.
pub enum Tx {
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

/// Rows waiting for a batched insert, by table.
#[derive(Default)]
pub struct Pending {
    rows: BTreeMap<&'static str, (&'static Table, Vec<Vec<Val>>)>,
}

impl Tx {
    /// Opens the restore transaction. On PostgreSQL it locks the log: appends take
    /// ROW EXCLUSIVE, so none can slip in while the log is restored.
    pub async fn begin(pool: &Pool) -> anyhow::Result<Tx> {
        Ok(match pool {
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                // Appends take ROW EXCLUSIVE: none can slip in while the log is restored.
                sqlx::query("SET LOCAL lock_timeout = '10s'")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await
                    .context("cannot lock the events table (is a service writing to it?)")?;
                Tx::Postgres(tx)
            }
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    /// Drops SQLite's trigger that wants each new event at its stream's head + 1
    /// (nothing on PostgreSQL), so that a damaged log loads as it is.
    pub async fn drop_version_trigger(&mut self) -> anyhow::Result<()> {
        if let Tx::Sqlite(t) = self {
            sqlx::query("DROP TRIGGER IF EXISTS events_version_follows_head")
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    /// Creates the trigger [`Tx::drop_version_trigger`] dropped again.
    pub async fn create_version_trigger(&mut self) -> anyhow::Result<()> {
        if let Tx::Sqlite(t) = self {
            sqlx::query(store::sqlite::VERSION_TRIGGER)
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    /// Rolls back, ignoring a failure (the transaction goes either way).
    pub async fn rollback(self) {
        either!(self, Tx::Postgres | Tx::Sqlite, t => t.rollback().await.ok());
    }

    pub async fn commit(self) -> anyhow::Result<()> {
        either!(self, Tx::Postgres | Tx::Sqlite, t => t.commit().await?);
        Ok(())
    }

    /// Which of the tables written with the log already hold rows (looked at again
    /// under the lock: nothing appended since the first look).
    pub async fn occupied(
        &mut self,
        tables: &[&'static str],
    ) -> anyhow::Result<Vec<(&'static str, i64)>> {
        let mut out = Vec::new();
        for table in tables {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let n: i64 = either!(self, Tx::Postgres | Tx::Sqlite, t => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str())).fetch_one(&mut **t).await?
            });
            if n > 0 {
                out.push((*table, n));
            }
        }
        Ok(out)
    }

    /// Queues a row; writes the table's queue when it is full.
    pub async fn insert(
        &mut self,
        pending: &mut Pending,
        t: &'static Table,
        vals: Vec<Val>,
    ) -> anyhow::Result<()> {
        let full = match self {
            Tx::Postgres(_) => BATCH,
            Tx::Sqlite(_) => sqlite_batch(t),
        };
        let entry = pending.rows.entry(t.kind).or_insert((t, Vec::new()));
        entry.1.push(vals);
        if entry.1.len() >= full {
            let rows = std::mem::take(&mut entry.1);
            self.write(t, rows).await?;
        }
        Ok(())
    }

    /// Writes every queued row.
    pub async fn flush(&mut self, pending: &mut Pending) -> anyhow::Result<()> {
        for (_, (t, rows)) in std::mem::take(&mut pending.rows) {
            if !rows.is_empty() {
                self.write(t, rows).await?;
            }
        }
        Ok(())
    }

    async fn write(&mut self, t: &Table, rows: Vec<Vec<Val>>) -> anyhow::Result<()> {
        match self {
            Tx::Postgres(_) => self.write_pg(t, rows).await,
            Tx::Sqlite(tx) => {
                // One statement of many rows: SQLite's cost is per statement.
                let cols: Vec<&str> = t.cols.iter().map(|c| c.column).collect();
                let one = format!("({})", vec!["?"; cols.len()].join(", "));
                let sql = format!(
                    "INSERT INTO {} ({}) VALUES {} {}",
                    t.table,
                    cols.join(", "),
                    vec![one.as_str(); rows.len()].join(", "),
                    t.on_conflict
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
                for v in rows.into_iter().flatten() {
                    q = match v {
                        Val::Int(n) => q.bind(n),
                        Val::Text(s) => q.bind(s),
                    };
                }
                q.execute(&mut **tx)
                    .await
                    .with_context(|| format!("cannot insert {} records", t.kind))?;
                Ok(())
            }
        }
    }

    /// One `INSERT … SELECT … FROM unnest(…)` of up to [`BATCH`] rows.
    async fn write_pg(&mut self, t: &Table, rows: Vec<Vec<Val>>) -> anyhow::Result<()> {
        let Tx::Postgres(tx) = self else {
            return Ok(());
        };
        let n = t.cols.len();
        let mut ints: Vec<Vec<Option<i64>>> = vec![Vec::new(); n];
        let mut texts: Vec<Vec<Option<String>>> = vec![Vec::new(); n];
        for row in rows {
            for (i, v) in row.into_iter().enumerate() {
                let int = t
                    .cols
                    .get(i)
                    .is_some_and(|c| matches!(c.ty, Ty::Int | Ty::Bool));
                match v {
                    Val::Int(x) => ints[i].push(Some(x)),
                    // A nullable integer's null goes with its column's integers.
                    Val::Text(None) if int => ints[i].push(None),
                    Val::Text(s) => texts[i].push(s),
                }
            }
        }
        let mut params = Vec::with_capacity(n);
        let mut exprs = Vec::with_capacity(n);
        for (i, c) in t.cols.iter().enumerate() {
            let v = format!("c{i}");
            params.push(format!(
                "${}::{}[]",
                i + 1,
                if matches!(c.ty, Ty::Int | Ty::Bool) {
                    "bigint"
                } else {
                    "text"
                }
            ));
            exprs.push(match c.ty {
                Ty::Int | Ty::Text => v,
                Ty::Bool => format!("({v} <> 0)"),
                Ty::Uuid => format!("{v}::uuid"),
                Ty::Time => format!("{v}::timestamptz"),
                Ty::Json => format!("{v}::json"),
                Ty::List => format!("ARRAY(SELECT json_array_elements_text({v}::json))"),
            });
        }
        let aliases: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        let cols: Vec<&str> = t.cols.iter().map(|c| c.column).collect();
        let sql = format!(
            "INSERT INTO {} ({}) SELECT {} FROM unnest({}) AS u({}) {}",
            t.table,
            cols.join(", "),
            exprs.join(", "),
            params.join(", "),
            aliases.join(", "),
            t.on_conflict
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
        for (i, c) in t.cols.iter().enumerate() {
            q = if matches!(c.ty, Ty::Int | Ty::Bool) {
                q.bind(std::mem::take(&mut ints[i]))
            } else {
                q.bind(std::mem::take(&mut texts[i]))
            };
        }
        q.execute(&mut **tx)
            .await
            .with_context(|| format!("cannot insert {} records", t.kind))?;
        Ok(())
    }
}

/// Which of `tables` already hold rows.
pub async fn occupied(
    pool: &Pool,
    tables: &[&'static str],
) -> anyhow::Result<Vec<(&'static str, i64)>> {
    let mut out = Vec::new();
    for table in tables {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let n: i64 = either!(pool, Pool::Postgres | Pool::Sqlite, p => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str())).fetch_one(p).await?
        });
        if n > 0 {
            out.push((*table, n));
        }
    }
    Ok(out)
}

/// Puts the cluster's next transaction id past the archive's positions, so that
/// positions appended after the restore come after every restored one.
pub async fn advance_xids(pool: &sqlx::PgPool, max_position: i64) -> anyhow::Result<()> {
    let per_xid = store::postgres::MAX_EVENTS_PER_APPEND as i64;
    let need = max_position / per_xid + 1;
    let next: i64 =
        sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
            .fetch_one(pool)
            .await?;
    let gap = need - next;
    if gap <= 0 {
        return Ok(());
    }
    ensure!(
        gap <= MAX_XID_ADVANCE,
        "the archive's positions reach {max_position}, but this PostgreSQL cluster's next \
         transaction id is {next} and new positions come from transaction ids (position = xid × 1024 + n): \
         the cluster would need {gap} more transactions first (more than the {MAX_XID_ADVANCE} restore \
         will spend). Restore into the cluster the archive came from, or into a new cluster whose \
         transaction counter is set past {need} before its first start \
         (`pg_resetwal -e {} -x {} DATADIR`); nothing was written",
        need >> 32,
        (need & 0xffff_ffff).max(3)
    );
    eprintln!(
        "advancing the cluster's transaction counter by {gap} (from {next} to {need}) so new positions come after the archive's"
    );
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql("SET synchronous_commit = off")
        .execute(&mut *conn)
        .await?;
    let mut left = gap;
    while left > 0 {
        let n = left.min(1_000_000);
        // Each iteration takes a transaction id and commits: nothing is written.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DO $$ BEGIN FOR i IN 1..{n} LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$"
        )))
        .execute(&mut *conn)
        .await
        .context("cannot advance the transaction counter")?;
        left -= n;
    }
    sqlx::raw_sql("RESET synchronous_commit")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Sets the log tally (table `log_tally`) from the events in the database: one row,
/// slot 0. On SQLite also where positions are dense from: 0 when the restored ones
/// run 1, 2, … without a hole (an archive of a SQLite log), else the highest (the
/// sparse positions of a PostgreSQL log; new ones count up from there).
pub async fn set_tally(tx: &mut Tx) -> anyhow::Result<()> {
    let mut tally = store::hash::Tally::default();
    let mut max = 0;
    match tx {
        Tx::Postgres(t) => {
            let mut rows = sqlx::query_as::<_, (i64, Uuid, i64)>(
                "SELECT position, stream_id, version FROM events ORDER BY position",
            )
            .fetch(&mut **t);
            while let Some((position, stream, version)) = rows.try_next().await? {
                tally.add(position, &stream.to_string(), version);
            }
        }
        Tx::Sqlite(t) => {
            let mut rows = sqlx::query_as::<_, (i64, String, i64)>(
                "SELECT position, stream_id, version FROM events ORDER BY position",
            )
            .fetch(&mut **t);
            while let Some((position, stream, version)) = rows.try_next().await? {
                let stream = Uuid::parse_str(&stream).map_or(stream, |u| u.to_string());
                tally.add(position, &stream, version);
                max = position;
            }
        }
    }
    let dense_after = (tally.events != max).then_some(max);
    let sql = "INSERT INTO log_tally (slot, events, streams, digest, dense_after) VALUES (0, $1, $2, $3, $4)";
    // PostgreSQL's positions are sparse: no dense_after there.
    let (sql, dense_after) = match tx {
        Tx::Postgres(_) => (sql.to_string(), None),
        Tx::Sqlite(_) => (sql.replace('$', "?"), Some(dense_after.unwrap_or(0))),
    };
    either!(tx, Tx::Postgres | Tx::Sqlite, t => {
        sqlx::query("DELETE FROM log_tally")
            .execute(&mut **t)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(tally.events)
            .bind(tally.streams)
            .bind(tally.digest)
            .bind(dense_after)
            .execute(&mut **t)
            .await?;
    });
    Ok(())
}
