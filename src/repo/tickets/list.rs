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

/// The filters of `q` except paging, on `table`: the view, or the search index
/// (which has every column they name but the number).
fn filters(pg: bool, q: &TicketQuery, table: &str) -> Filter {
    let mut f = Filter::new(pg);
    view_filters(&mut f, q, table);
    if let Some(t) = q.created_from {
        let p = f.typed(Arg::Time(t), "timestamptz");
        f.push(format!("created_at >= {p}"));
    }
    if let Some(text) = &q.text {
        let c = text_filter(&mut f, text);
        f.push(c);
    }
    f
}

/// The filters of `q` on the view's own columns: all but the text and the
/// creation time. `table` names the view, the search index (whose rows carry the
/// same filter columns since migration 0017) or its alias; every column is
/// qualified with it.
fn view_filters(f: &mut Filter, q: &TicketQuery, table: &str) {
    let pg = f.pg;
    let (state, unit, centre, grid, co_units, category, due_at) = (
        format!("{table}.state"),
        format!("{table}.unit"),
        format!("{table}.centre"),
        format!("{table}.grid"),
        format!("{table}.co_units"),
        format!("{table}.category"),
        format!("{table}.due_at"),
    );
    if let Some(s) = &q.state {
        let p = f.typed(Arg::Text(s.clone()), "text");
        f.push(format!("{state} = {p}"));
    }
    if let Some(states) = &q.states {
        let c = f.any(&state, states);
        f.push(c);
    }
    if let Some(u) = &q.unit {
        let p = f.typed(Arg::Text(u.clone()), "text");
        f.push(format!("{unit} = {p}"));
    }
    if let Some(units) = &q.units {
        let c = f.any(&unit, units);
        f.push(c);
    }
    if let Some(w) = &q.within {
        let c = if pg {
            let p = f.arg(Arg::Texts(w.clone()));
            format!(
                "({centre} = ANY({p}::text[]) OR {unit} = ANY({p}::text[]) \
                 OR {grid} = ANY({p}::text[]) OR {co_units} && {p}::text[])"
            )
        } else {
            let p = f.arg(Arg::Texts(w.clone()));
            // Most tickets in a scope are its centre's; the co-units (a JSON array,
            // `[]` for most tickets) are opened only when there are some.
            format!(
                "({centre} IN (SELECT value FROM json_each({p})) \
                 OR {unit} IN (SELECT value FROM json_each({p})) \
                 OR {grid} IN (SELECT value FROM json_each({p})) \
                 OR ({co_units} <> '[]' AND EXISTS (SELECT 1 FROM json_each({co_units}) c \
                            WHERE c.value IN (SELECT value FROM json_each({p})))))"
            )
        };
        f.push(c);
    }
    if let Some(c) = &q.category {
        let p = f.typed(Arg::Text(c.clone()), "text");
        f.push(format!("{category} = {p}"));
    }
    if let Some(t) = q.overdue_at {
        let p = f.typed(Arg::Time(t), "timestamptz");
        f.push(format!("{due_at} < {p}"));
    }
}

/// The text of `q` when it is a search of the index (not a whole ticket number,
/// which the view's unique index finds), normalized.
fn index_search(q: &TicketQuery) -> Option<String> {
    let text = normalize(q.text.as_deref()?.trim());
    (!is_ticket_number(&text)).then_some(text)
}

/// The tickets whose text contains `text` (normalized), created at or after
/// `from`: a statement answering `(id, created_at, due_at)` from the search index
/// alone (`s`), to which the queue's other filters on `s` may be added with `AND`.
fn matches(f: &mut Filter, text: &str, from: Option<DateTime<Utc>>) -> String {
    let grams = query_grams(text);
    let needle = f.typed(Arg::Text(text.to_string()), "text");
    let mut sql = if f.pg {
        if grams.is_empty() {
            format!(
                "SELECT s.id, s.created_at, s.due_at FROM ticket_search s WHERE strpos(s.search, {needle}) > 0"
            )
        } else {
            let g = f.arg(Arg::Texts(grams));
            format!(
                "SELECT s.id, s.created_at, s.due_at FROM ticket_search s \
                 WHERE s.grams @> {g}::text[] AND strpos(s.search, {needle}) > 0"
            )
        }
    } else if grams.is_empty() {
        format!(
            "SELECT s.id, s.created_at, s.due_at FROM ticket_search s WHERE instr(s.search, {needle}) > 0"
        )
    } else {
        let m = f.arg(Arg::Text(fts_query(&grams)));
        format!(
            "SELECT s.id, s.created_at, s.due_at FROM ticket_grams g JOIN ticket_search s ON s.n = g.rowid \
             WHERE ticket_grams MATCH {m} AND instr(s.search, {needle}) > 0"
        )
    };
    if let Some(t) = from {
        let p = f.typed(Arg::Time(t), "timestamptz");
        sql.push_str(&format!(" AND s.created_at >= {p}"));
    }
    sql
}

/// The clause of a text search on the view (see `search` for the index and why):
/// what a count of every page reads; a page of a search is [`search_page`].
fn text_filter(f: &mut Filter, text: &str) -> String {
    let text = normalize(text.trim());
    if is_ticket_number(&text) {
        let p = f.typed(Arg::Text(text), "text");
        return format!("number = {p}");
    }
    let m = matches(f, &text, None);
    format!("id IN (SELECT id FROM ({m}) AS found)")
}

/// The queue's order over the columns `created`, `id` and `due` (the view's own,
/// or those of a search's page).
fn order_by(pg: bool, sort: Sort, created: &str, id: &str, due: &str) -> String {
    match (sort, pg) {
        (Sort::NewestFirst, _) => format!(" ORDER BY {created} DESC, {id} DESC"),
        (Sort::OldestFirst, _) => format!(" ORDER BY {created} ASC, {id} ASC"),
        (Sort::Deadline, true) => {
            format!(" ORDER BY {due} ASC NULLS LAST, {created} ASC, {id} ASC")
        }
        (Sort::Deadline, false) => {
            format!(" ORDER BY {due} IS NULL, {due} ASC, {created} ASC, {id} ASC")
        }
    }
}

/// The view's own order.
fn view_order(pg: bool, sort: Sort) -> String {
    order_by(pg, sort, "created_at", "id", "due_at")
}

/// The keyset cursor `q.before` (newest first) over the columns `created`, `id`.
fn push_cursor(f: &mut Filter, q: &TicketQuery, created: &str, id: &str) {
    if let (Sort::NewestFirst, Some((at, before))) = (q.sort, q.before) {
        let a = f.typed(Arg::Time(at), "timestamptz");
        let i = f.typed(Arg::Id(before), "uuid");
        f.push(if f.pg {
            format!("({created}, {id}) < ({a}, {i})")
        } else {
            format!("({created} < {a} OR ({created} = {a} AND {id} < {i}))")
        });
    }
}

/// ` LIMIT … [OFFSET …]` of `q`'s page.
fn paging(f: &mut Filter, q: &TicketQuery) -> String {
    let limit = f.typed(Arg::Int(q.limit), "bigint");
    let mut sql = format!(" LIMIT {limit}");
    if q.sort != Sort::NewestFirst && q.offset > 0 {
        let offset = f.typed(Arg::Int(q.offset), "bigint");
        sql.push_str(&format!(" OFFSET {offset}"));
    }
    sql
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

/// Rows of `sql` with `args` bound, as view rows, each with the `i64` of the
/// column `extra` when given.
async fn fetch_views(
    pool: &Pool,
    sql: String,
    args: Vec<Arg>,
    extra: Option<&str>,
) -> Result<Vec<(TicketViewRow, i64)>, StoreError> {
    use sqlx::Row;
    let sql = sqlx::AssertSqlSafe(sql);
    match pool {
        Pool::Postgres(p) => {
            let rows = bind_pg(sqlx::query(sql), args)
                .fetch_all(p)
                .await
                .map_err(StoreError::classify)?;
            rows.iter()
                .map(|r| {
                    let n = match extra {
                        Some(c) => r.try_get::<i64, _>(c)?,
                        None => 0,
                    };
                    Ok((view_from_pg_row(r)?, n))
                })
                .collect()
        }
        Pool::Sqlite(p) => {
            let rows = bind_sqlite(sqlx::query(sql), args)
                .fetch_all(p)
                .await
                .map_err(StoreError::classify)?;
            rows.iter()
                .map(|r| {
                    let n = match extra {
                        Some(c) => r.try_get::<i64, _>(c)?,
                        None => 0,
                    };
                    Ok((view_from_sqlite_row(r)?, n))
                })
                .collect()
        }
    }
}

/// A page of the ticket queue in `q.sort`'s order: after the keyset cursor
/// `q.before` (newest first) or `q.offset` tickets (the other orders).
pub async fn list_tickets(pool: &Pool, q: &TicketQuery) -> Result<Vec<TicketViewRow>, StoreError> {
    if index_search(q).is_some() {
        return Ok(search_page(pool, q).await?.0);
    }
    let pg = matches!(pool, Pool::Postgres(_));
    let mut f = filters(pg, q, "ticket_view");
    push_cursor(&mut f, q, "created_at", "id");
    let mut sql = format!(
        "SELECT * FROM ticket_view{}{}",
        f.sql(),
        view_order(pg, q.sort)
    );
    sql.push_str(&paging(&mut f, q));
    let rows = fetch_views(pool, sql, f.args, None).await?;
    Ok(rows.into_iter().map(|(r, _)| r).collect())
}

/// A page of the queue and how many tickets match `q`'s filters on every page.
pub async fn page_with_total(
    pool: &Pool,
    q: &TicketQuery,
) -> Result<(Vec<TicketViewRow>, i64), StoreError> {
    if index_search(q).is_some() {
        let (rows, total) = search_page(pool, q).await?;
        return match total {
            Some(n) => Ok((rows, n)),
            None => Ok((rows, count_tickets(pool, q).await?)),
        };
    }
    tokio::try_join!(list_tickets(pool, q), count_tickets(pool, q))
}

/// A page of a text search and, when the page is not empty, the count of every
/// page, in one statement.
///
/// **Why this shape.** A street or a common word matches thousands of tickets.
/// Reading each match's view row (a whole ticket document) to sort them, and again
/// to count them, cost 100–150 ms over 100,000 tickets (BENCHMARKS.md "Queue
/// search"). Here the matches come from the search index, whose rows also carry
/// the creation time and the queue's filter columns (state, unit, centre, grid,
/// category, deadline, co-units: migration 0017, kept by triggers on the view), so
/// every filter — a dispatcher's scope too — is checked on the index row the match
/// already read. They are materialized once (`f`), counted for `total` (every
/// page, the cursor left out) and sorted for the page with its limit; only the
/// page's own view rows are then read whole. Before the filter columns were in the
/// index, a township dispatcher's search of a street looked each of its 10,000
/// city-wide matches up in the view: 52–103 ms p99.
async fn search_page(
    pool: &Pool,
    q: &TicketQuery,
) -> Result<(Vec<TicketViewRow>, Option<i64>), StoreError> {
    let pg = matches!(pool, Pool::Postgres(_));
    let text = index_search(q).unwrap_or_default();
    let mut f = Filter::new(pg);
    let mut found = matches(&mut f, &text, q.created_from);
    view_filters(&mut f, q, "s");
    for clause in f.clauses.drain(..) {
        found.push_str(" AND ");
        found.push_str(&clause);
    }
    let mut cursor = Filter::new(pg);
    cursor.args = std::mem::take(&mut f.args);
    push_cursor(&mut cursor, q, "tcreated", "tid");
    let mut sql = format!(
        "WITH f (tid, tcreated, tdue) AS MATERIALIZED ({found}) \
         SELECT ticket_view.*, (SELECT COUNT(*) FROM f) AS total FROM ticket_view JOIN \
         (SELECT tid FROM f{}{}",
        cursor.sql(),
        order_by(pg, q.sort, "tcreated", "tid", "tdue")
    );
    sql.push_str(&paging(&mut cursor, q));
    sql.push_str(") AS t ON t.tid = ticket_view.id");
    sql.push_str(&view_order(pg, q.sort));
    let rows = fetch_views(pool, sql, cursor.args, Some("total")).await?;
    let total = rows.first().map(|(_, n)| *n);
    Ok((rows.into_iter().map(|(r, _)| r).collect(), total))
}

/// Where [`count_tickets`] counts `q`'s matches. A filter the view has an index for
/// (state, lead unit, category, overdue) or a ticket number narrows the count to
/// the few rows the index finds, so it is counted in the view. Otherwise every
/// row is read (all tickets, or a scope: its centre, grid and co-units have no
/// index), and the search index's rows (which carry the filter columns, migration
/// 0017) are a fraction of the view's bytes (on PostgreSQL over 100,000 accepted
/// tickets, 60 MB of text and grams against 195 MB of documents).
fn count_table(q: &TicketQuery) -> &'static str {
    let by_number = q
        .text
        .as_deref()
        .is_some_and(|t| is_ticket_number(&normalize(t.trim())));
    let indexed = q.state.is_some()
        || q.states.is_some()
        || q.unit.is_some()
        || q.units.is_some()
        || q.category.is_some()
        || q.overdue_at.is_some();
    if by_number || indexed {
        "ticket_view"
    } else {
        "ticket_search"
    }
}

/// How many tickets match `q`'s filters (every page, not only one).
pub async fn count_tickets(pool: &Pool, q: &TicketQuery) -> Result<i64, StoreError> {
    use sqlx::Row;
    let pg = matches!(pool, Pool::Postgres(_));
    let table = count_table(q);
    let f = filters(pg, q, table);
    let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}{}", f.sql()));
    let n = match pool {
        Pool::Postgres(p) => bind_pg(sqlx::query(sql), f.args)
            .fetch_one(p)
            .await
            .map_err(StoreError::classify)?
            .try_get("n")?,
        Pool::Sqlite(p) => bind_sqlite(sqlx::query(sql), f.args)
            .fetch_one(p)
            .await
            .map_err(StoreError::classify)?
            .try_get("n")?,
    };
    Ok(n)
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
