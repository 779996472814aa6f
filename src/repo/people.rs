//! The tables of the `people_stats` projection (`crate::projections::people`):
//! `people_tickets` (each ticket's folded document, JSON) and `stats_people` (the
//! counters per business day, unit and person), their batch write with the
//! checkpoint in one transaction, and the read of a range of days.

use sqlx::QueryBuilder;

use crate::store::{Pool, StoreError};

/// The counters of `stats_people`, in the order of [`COLUMNS`].
pub const NCOLS: usize = 6;

/// Column names of `stats_people`'s counters.
pub const COLUMNS: [&str; NCOLS] = [
    "reports",
    "valid_reports",
    "self_handled",
    "handled",
    "on_time",
    "verification_failures",
];

/// One person's counters for one day.
pub type Counts = [i64; NCOLS];

/// (business day, unit, person): a row of `stats_people`.
pub type Key = (i64, String, String);

/// The projection's tables.
pub const TABLES: [&str; 2] = ["people_tickets", "stats_people"];

/// Rows per multi-row INSERT (8 parameters a counter row: far under both engines'
/// limits).
const CHUNK: usize = 1000;

/// How [`write`] moves the checkpoint.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// Only from this position (compare and set); counters are added to.
    From(i64),
    /// A rebuild: every row replaced, the checkpoint set outright.
    Replace,
}

/// Runs `$body` on either engine with `$db` naming its sqlx database type (for a
/// `QueryBuilder`).
macro_rules! with_db {
    ($pool:expr, $p:ident, $db:ident => $body:block) => {
        match $pool {
            Pool::Postgres($p) => {
                #[allow(dead_code)]
                type $db = sqlx::Postgres;
                $body
            }
            Pool::Sqlite($p) => {
                #[allow(dead_code)]
                type $db = sqlx::Sqlite;
                $body
            }
        }
    };
}

/// The stored documents of these tickets: (ticket, doc).
pub async fn load_docs(pool: &Pool, ids: &[String]) -> Result<Vec<(String, String)>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let rows: Vec<(String, String)> = with_db!(pool, p, Db => {
            let mut q = QueryBuilder::<Db>::new("SELECT ticket, doc FROM people_tickets WHERE ticket IN (");
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(id.as_str());
            }
            q.push(")");
            q.build_query_as().fetch_all(p).await?
        });
        out.extend(rows);
    }
    Ok(out)
}

/// Writes the changed documents and adds the counter changes, and moves the
/// checkpoint of projection `name` to `to` (stamped `now`), in one transaction.
/// False: the checkpoint was not at `from` (another process applied this batch),
/// nothing written.
pub async fn write(
    pool: &Pool,
    name: &str,
    mode: Mode,
    (to, now): (i64, i64),
    docs: &[(String, String)],
    counts: &[(Key, Counts)],
) -> Result<bool, StoreError> {
    let derived = pool.derived_tx();
    with_db!(pool, p, Db => {
        let mut tx = p.begin().await?;
        if let Some(sql) = derived {
            sqlx::query(sql).execute(&mut *tx).await?;
        }
        match mode {
            Mode::From(from) => {
                let moved = sqlx::query(
                    "UPDATE projection_checkpoints SET position = $1, updated_at = $2 WHERE name = $3 AND position = $4",
                )
                .bind(to)
                .bind(now)
                .bind(name)
                .bind(from)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if moved != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
            }
            Mode::Replace => {
                for t in TABLES {
                    sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {t}"))).execute(&mut *tx).await?;
                }
                sqlx::query(
                    "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
                )
                .bind(name)
                .bind(to)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        for chunk in docs.chunks(CHUNK) {
            let mut q = QueryBuilder::<Db>::new("INSERT INTO people_tickets (ticket, doc) ");
            q.push_values(chunk, |mut b, (t, d)| {
                b.push_bind(t.as_str()).push_bind(d.as_str());
            });
            q.push(" ON CONFLICT (ticket) DO UPDATE SET doc = excluded.doc");
            q.build().execute(&mut *tx).await?;
        }
        let add_all = COLUMNS
            .iter()
            .map(|c| format!("{c} = stats_people.{c} + excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        for chunk in counts.chunks(CHUNK) {
            let mut q = QueryBuilder::<Db>::new(format!(
                "INSERT INTO stats_people (day, unit, person, {}) ",
                COLUMNS.join(", ")
            ));
            q.push_values(chunk, |mut b, ((day, unit, person), c)| {
                b.push_bind(*day).push_bind(unit.as_str()).push_bind(person.as_str());
                for v in c {
                    b.push_bind(*v);
                }
            });
            q.push(" ON CONFLICT (day, unit, person) DO UPDATE SET ").push(&add_all);
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(true)
}

/// One person's figures over a range of days, in one unit.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PersonRow {
    pub person: String,
    pub unit: String,
    pub reports: i64,
    pub valid_reports: i64,
    pub self_handled: i64,
    pub handled: i64,
    pub on_time: i64,
    pub verification_failures: i64,
}

/// The counters summed per (person, unit) over the business days `from..=to`
/// (day numbers), for people of these units (all when None), ordered by unit and
/// person; people whose counters are all zero in the range are left out.
pub async fn read(
    pool: &Pool,
    units: Option<&[String]>,
    from: i64,
    to: i64,
) -> Result<Vec<PersonRow>, StoreError> {
    let sums = COLUMNS
        .iter()
        .map(|c| format!("CAST(SUM({c}) AS BIGINT) AS {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let any = COLUMNS
        .iter()
        .map(|c| format!("SUM({c}) <> 0"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let rows: Vec<PersonRow> = with_db!(pool, p, Db => {
        let mut q = QueryBuilder::<Db>::new(format!(
            "SELECT person, unit, {sums} FROM stats_people WHERE day >= "
        ));
        q.push_bind(from).push(" AND day <= ").push_bind(to);
        if let Some(units) = units {
            if units.is_empty() {
                return Ok(Vec::new());
            }
            q.push(" AND unit IN (");
            let mut sep = q.separated(", ");
            for u in units {
                sep.push_bind(u.as_str());
            }
            q.push(")");
        }
        q.push(format!(" GROUP BY unit, person HAVING {any} ORDER BY unit, person"));
        q.build_query_as().fetch_all(p).await?
    });
    Ok(rows)
}
