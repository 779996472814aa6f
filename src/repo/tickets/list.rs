//! The ticket queue's reads: a page of the view for a [`TicketQuery`], the count of
//! all its matches, one ticket by number.
//!
//! The statement is built from the filters present (rather than one statement with
//! `(? IS NULL OR …)` for every filter): each combination is its own prepared
//! statement, whose plan uses the index that filter needs (a generic PostgreSQL
//! plan for the all-optional form would not use the search index for `q`). The
//! statement is made of the fixed fragments below alone; every value from the
//! request is bound (`Arg`), hence `AssertSqlSafe`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::search::{fts_query, is_ticket_number, normalize, query_grams};
use super::{Sort, TicketQuery, TicketViewRow, view_from_pg_row, view_from_sqlite_row};
use crate::store::hash::rfc3339;
use crate::store::{Pool, StoreError};

/// A value bound to the statement.
enum Arg {
    Text(String),
    Texts(Vec<String>),
    Time(DateTime<Utc>),
    Id(Uuid),
    Int(i64),
}

/// A WHERE clause and its arguments for one engine.
struct Filter {
    pg: bool,
    clauses: Vec<String>,
    args: Vec<Arg>,
}

impl Filter {
    fn new(pg: bool) -> Filter {
        Filter {
            pg,
            clauses: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Binds `a` and answers its placeholder.
    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        if self.pg {
            format!("${}", self.args.len())
        } else {
            format!("?{}", self.args.len())
        }
    }

    /// Binds `a` and answers its placeholder cast to `pg_type` on PostgreSQL.
    fn typed(&mut self, a: Arg, pg_type: &str) -> String {
        let p = self.arg(a);
        if self.pg {
            format!("{p}::{pg_type}")
        } else {
            p
        }
    }

    /// `value IN (list)`: `= ANY` of an array on PostgreSQL, a JSON array on SQLite.
    fn any(&mut self, column: &str, list: &[String]) -> String {
        let p = self.arg(Arg::Texts(list.to_vec()));
        if self.pg {
            format!("{column} = ANY({p}::text[])")
        } else {
            format!("{column} IN (SELECT value FROM json_each({p}))")
        }
    }

    fn push(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// The filters of `q` except paging.
fn filters(pg: bool, q: &TicketQuery) -> Filter {
    let mut f = Filter::new(pg);
    if let Some(s) = &q.state {
        let p = f.typed(Arg::Text(s.clone()), "text");
        f.push(format!("state = {p}"));
    }
    if let Some(states) = &q.states {
        let c = f.any("state", states);
        f.push(c);
    }
    if let Some(u) = &q.unit {
        let p = f.typed(Arg::Text(u.clone()), "text");
        f.push(format!("unit = {p}"));
    }
    if let Some(units) = &q.units {
        let c = f.any("unit", units);
        f.push(c);
    }
    if let Some(w) = &q.within {
        let c = if pg {
            let p = f.arg(Arg::Texts(w.clone()));
            format!(
                "(unit = ANY({p}::text[]) OR centre = ANY({p}::text[]) OR grid = ANY({p}::text[]) \
                 OR co_units && {p}::text[])"
            )
        } else {
            let p = f.arg(Arg::Texts(w.clone()));
            format!(
                "(unit IN (SELECT value FROM json_each({p})) OR centre IN (SELECT value FROM json_each({p})) \
                 OR grid IN (SELECT value FROM json_each({p})) \
                 OR EXISTS (SELECT 1 FROM json_each(ticket_view.co_units) c \
                            WHERE c.value IN (SELECT value FROM json_each({p}))))"
            )
        };
        f.push(c);
    }
    if let Some(c) = &q.category {
        let p = f.typed(Arg::Text(c.clone()), "text");
        f.push(format!("category = {p}"));
    }
    if let Some(t) = q.created_from {
        let p = f.typed(Arg::Time(t), "timestamptz");
        f.push(format!("created_at >= {p}"));
    }
    if let Some(t) = q.overdue_at {
        let p = f.typed(Arg::Time(t), "timestamptz");
        f.push(format!("due_at < {p}"));
    }
    if let Some(text) = &q.text {
        let c = text_filter(&mut f, text);
        f.push(c);
    }
    f
}

/// The clause of a text search (see `search` for the index and why).
fn text_filter(f: &mut Filter, text: &str) -> String {
    let text = normalize(text.trim());
    if is_ticket_number(&text) {
        let p = f.typed(Arg::Text(text), "text");
        return format!("number = {p}");
    }
    let grams = query_grams(&text);
    let needle = f.typed(Arg::Text(text), "text");
    if f.pg {
        let check = format!("strpos(s.search, {needle}) > 0");
        if grams.is_empty() {
            format!("id IN (SELECT s.id FROM ticket_search s WHERE {check})")
        } else {
            let g = f.arg(Arg::Texts(grams));
            format!(
                "id IN (SELECT s.id FROM ticket_search s WHERE s.grams @> {g}::text[] AND {check})"
            )
        }
    } else {
        let check = format!("instr(s.search, {needle}) > 0");
        if grams.is_empty() {
            format!("id IN (SELECT s.id FROM ticket_search s WHERE {check})")
        } else {
            let m = f.arg(Arg::Text(fts_query(&grams)));
            format!(
                "id IN (SELECT s.id FROM ticket_grams g JOIN ticket_search s ON s.n = g.rowid \
                 WHERE ticket_grams MATCH {m} AND {check})"
            )
        }
    }
}

fn order_by(pg: bool, sort: Sort) -> &'static str {
    match (sort, pg) {
        (Sort::NewestFirst, _) => " ORDER BY created_at DESC, id DESC",
        (Sort::OldestFirst, _) => " ORDER BY created_at ASC, id ASC",
        (Sort::Deadline, true) => " ORDER BY due_at ASC NULLS LAST, created_at ASC, id ASC",
        (Sort::Deadline, false) => " ORDER BY due_at IS NULL, due_at ASC, created_at ASC, id ASC",
    }
}

fn bind_pg<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for a in args {
        query = match a {
            Arg::Text(s) => query.bind(s),
            Arg::Texts(v) => query.bind(v),
            Arg::Time(t) => query.bind(t),
            Arg::Id(i) => query.bind(i),
            Arg::Int(n) => query.bind(n),
        };
    }
    query
}

fn bind_sqlite<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    for a in args {
        query = match a {
            Arg::Text(s) => query.bind(s),
            Arg::Texts(v) => query.bind(serde_json::Value::from(v).to_string()),
            Arg::Time(t) => query.bind(rfc3339(t)),
            Arg::Id(i) => query.bind(i.to_string()),
            Arg::Int(n) => query.bind(n),
        };
    }
    query
}

/// A page of the ticket queue in `q.sort`'s order: after the keyset cursor
/// `q.before` (newest first) or `q.offset` tickets (the other orders).
pub async fn list_tickets(pool: &Pool, q: &TicketQuery) -> Result<Vec<TicketViewRow>, StoreError> {
    let pg = matches!(pool, Pool::Postgres(_));
    let mut f = filters(pg, q);
    if let (Sort::NewestFirst, Some((at, id))) = (q.sort, q.before) {
        let a = f.typed(Arg::Time(at), "timestamptz");
        let i = f.typed(Arg::Id(id), "uuid");
        f.push(if pg {
            format!("(created_at, id) < ({a}, {i})")
        } else {
            format!("(created_at < {a} OR (created_at = {a} AND id < {i}))")
        });
    }
    let mut sql = format!(
        "SELECT * FROM ticket_view{}{}",
        f.sql(),
        order_by(pg, q.sort)
    );
    let limit = f.typed(Arg::Int(q.limit), "bigint");
    sql.push_str(&format!(" LIMIT {limit}"));
    if q.sort != Sort::NewestFirst && q.offset > 0 {
        let offset = f.typed(Arg::Int(q.offset), "bigint");
        sql.push_str(&format!(" OFFSET {offset}"));
    }
    match pool {
        Pool::Postgres(p) => {
            let rows = bind_pg(sqlx::query(sqlx::AssertSqlSafe(sql)), f.args)
                .fetch_all(p)
                .await
                .map_err(StoreError::classify)?;
            Ok(rows
                .iter()
                .map(view_from_pg_row)
                .collect::<Result<_, _>>()?)
        }
        Pool::Sqlite(p) => {
            let rows = bind_sqlite(sqlx::query(sqlx::AssertSqlSafe(sql)), f.args)
                .fetch_all(p)
                .await
                .map_err(StoreError::classify)?;
            rows.iter().map(view_from_sqlite_row).collect()
        }
    }
}

/// How many tickets match `q`'s filters (every page, not only one).
pub async fn count_tickets(pool: &Pool, q: &TicketQuery) -> Result<i64, StoreError> {
    let pg = matches!(pool, Pool::Postgres(_));
    let f = filters(pg, q);
    let sql = format!("SELECT COUNT(*) FROM ticket_view{}", f.sql());
    match pool {
        Pool::Postgres(p) => {
            let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
            for a in f.args {
                query = match a {
                    Arg::Text(s) => query.bind(s),
                    Arg::Texts(v) => query.bind(v),
                    Arg::Time(t) => query.bind(t),
                    Arg::Id(i) => query.bind(i),
                    Arg::Int(n) => query.bind(n),
                };
            }
            query.fetch_one(p).await.map_err(StoreError::classify)
        }
        Pool::Sqlite(p) => {
            let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
            for a in f.args {
                query = match a {
                    Arg::Text(s) => query.bind(s),
                    Arg::Texts(v) => query.bind(serde_json::Value::from(v).to_string()),
                    Arg::Time(t) => query.bind(rfc3339(t)),
                    Arg::Id(i) => query.bind(i.to_string()),
                    Arg::Int(n) => query.bind(n),
                };
            }
            query.fetch_one(p).await.map_err(StoreError::classify)
        }
    }
}

/// The view row of the ticket numbered `number`.
pub async fn ticket_by_number(
    pool: &Pool,
    number: &str,
) -> Result<Option<TicketViewRow>, StoreError> {
    match pool {
        Pool::Postgres(p) => {
            let row = sqlx::query("SELECT * FROM ticket_view WHERE number = $1")
                .bind(number)
                .fetch_optional(p)
                .await
                .map_err(StoreError::classify)?;
            Ok(row.as_ref().map(view_from_pg_row).transpose()?)
        }
        Pool::Sqlite(p) => {
            let row = sqlx::query("SELECT * FROM ticket_view WHERE number = ?")
                .bind(number)
                .fetch_optional(p)
                .await
                .map_err(StoreError::classify)?;
            row.as_ref().map(view_from_sqlite_row).transpose()
        }
    }
}
