//! The ticket search index: what `GET /api/v1/tickets?q=` looks in (the ticket's
//! number, title, description and address), written once with the ticket's first
//! events and filled in at start-up for tickets that came another way (a restore,
//! a database from before migration 0012).
//!
//! **Why bigrams, kept by the service, on both engines.** The text is Chinese: no
//! spaces between words, so a word tokenizer finds nothing to split on and a
//! dispatcher's query is a substring (垃圾, 中山路, 幸福小区). The engines' own
//! substring indexes do not take two-character queries: PostgreSQL's pg_trgm
//! extracts no trigram from `%垃圾%` (it falls back to scanning the whole index)
//! and SQLite's FTS5 `trigram` tokenizer cannot match fewer than three characters;
//! pg_trgm's word characters also depend on the database's locale (`C` in many
//! installations). So the service cuts the text itself into overlapping pairs of
//! characters (bigrams; a run of one character is kept as it is), the same way on
//! both engines, and each engine indexes the set:
//!
//! - PostgreSQL: `ticket_search.grams text[]` with a GIN index, queried with
//!   `grams @> ARRAY[...]` (every bigram of the query);
//! - SQLite: the contentless FTS5 table `ticket_grams` (bigrams as space-separated
//!   tokens, `detail=none`: no positions, only which ticket has which bigram), whose
//!   rowid is `ticket_search.n`, queried with `"ab" AND "bc"`.
//!
//! Having every bigram of the query is necessary for a substring match but not
//! sufficient (垃圾 … 圾桶 has both bigrams of 垃圾桶), so the index's candidates are
//! checked against the normalized text (`ticket_search.search`) with `strpos` /
//! `instr`. A one-character query has no bigram: it is that check alone, a scan of
//! `ticket_search` (not of the ticket view). A query that is a whole ticket number
//! goes to the unique number index instead (digit bigrams such as `00` and `12` are
//! in nearly every ticket, so their intersection is no narrower than a scan).
//!
//! The index lives in its own table, not in `ticket_view`: the view row is rewritten
//! by every command, and a GIN or FTS entry per bigram rewritten with it would
//! multiply the write of each command for text that never changes (a ticket's
//! number, title, description and address are fixed when it is accepted).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;
use uuid::Uuid;

use crate::domain::Ticket;
use crate::store::{Appended, PgPart, PgValue, Pool, StoreError, ViewHandler};

/// Bigrams of a query used against the index at most: the candidates are checked
/// against the text anyway, and each more bigram is one more posting list to
/// intersect.
const MAX_QUERY_GRAMS: usize = 8;

/// The text a ticket is searched in: its number, title, description and address,
/// lower-cased (ASCII letters in addresses and titles match either case).
pub fn search_text(t: &Ticket) -> String {
    let mut s = String::with_capacity(t.number.len() + t.title.len() + t.description.len() + 64);
    s.push_str(&t.number);
    s.push('\n');
    s.push_str(&t.title);
    s.push('\n');
    s.push_str(&t.description);
    if let Some(a) = &t.location.address {
        s.push('\n');
        s.push_str(a);
    }
    normalize(&s)
}

/// Lower-cased; the same for the text and the query.
pub fn normalize(s: &str) -> String {
    s.to_lowercase()
}

/// The runs of letters and digits of normalized text (anything else separates).
fn runs(s: &str) -> impl Iterator<Item = Vec<char>> + '_ {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|r| !r.is_empty())
        .map(|r| r.chars().collect())
}

/// Every bigram of normalized text, each once, in the order first met; a run of a
/// single character is itself a gram.
pub fn grams(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for run in runs(s) {
        if run.len() == 1 {
            let g: String = run.iter().collect();
            if seen.insert(g.clone()) {
                out.push(g);
            }
            continue;
        }
        for w in run.windows(2) {
            let g: String = w.iter().collect();
            if seen.insert(g.clone()) {
                out.push(g);
            }
        }
    }
    out
}

/// The bigrams a ticket must have for its text to contain `q` (normalized): those
/// of each run of two characters or more (a run of one may sit inside a longer run
/// of the text, where it is no gram of its own), at most [`MAX_QUERY_GRAMS`],
/// spread over the query. Empty: the index cannot narrow the query.
pub fn query_grams(q: &str) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for run in runs(q).filter(|r| r.len() >= 2) {
        for w in run.windows(2) {
            let g: String = w.iter().collect();
            if !all.contains(&g) {
                all.push(g);
            }
        }
    }
    // Pairs of digits are in nearly every ticket (its number, a date, a house
    // number): with any other bigram to narrow the query they only lengthen the
    // intersection, and the text check sees the digits anyway.
    if all.iter().any(|g| !is_digits(g)) {
        all.retain(|g| !is_digits(g));
    }
    if all.len() <= MAX_QUERY_GRAMS {
        return all;
    }
    // The first, the last and evenly between: a long query is narrow anyway.
    let n = all.len();
    (0..MAX_QUERY_GRAMS)
        .map(|i| all[i * (n - 1) / (MAX_QUERY_GRAMS - 1)].clone())
        .collect()
}

fn is_digits(g: &str) -> bool {
    g.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `q` is a whole ticket number (`YYYYMMDD-NNNNNN`).
pub fn is_ticket_number(q: &str) -> bool {
    let b = q.as_bytes();
    b.len() == 15
        && b[8] == b'-'
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[9..].iter().all(u8::is_ascii_digit)
}

/// The FTS5 query for `grams` (each a phrase of one token, all required). Grams
/// are runs of letters and digits, so they hold no double quote; one is doubled
/// anyway should that change.
pub fn fts_query(grams: &[String]) -> String {
    grams
        .iter()
        .map(|g| format!("\"{}\"", g.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// A new ticket's entry in the search index, written in the same transaction as
/// its first events (an append's [`ViewHandler`], added by the command that
/// accepts the ticket).
#[derive(Clone, Debug)]
pub struct SearchRow {
    pub id: Uuid,
    /// [`search_text`] of the ticket.
    pub search: String,
    /// [`grams`] of `search`.
    pub grams: Vec<String>,
    /// When the ticket was accepted (as in its view row): the order of a search
    /// answered from this table alone.
    pub created_at: DateTime<Utc>,
    /// The queue's filter columns, as in the ticket's view row (migration 0017):
    /// written with the row, then kept by the view's triggers as the ticket moves.
    pub filters: SearchFilters,
}

/// The columns of the view a queue's search filters on, copied into its search row
/// so that a search within a scope needs no look-up in the view per match.
#[derive(Clone, Debug)]
pub struct SearchFilters {
    pub state: String,
    pub unit: Option<String>,
    pub centre: String,
    pub grid: Option<String>,
    pub category: String,
    pub due_at: Option<DateTime<Utc>>,
    pub co_units: Vec<String>,
}

impl SearchFilters {
    /// As the view row of `t` holds them (`app::decide::view_row`).
    pub fn of(t: &Ticket) -> SearchFilters {
        SearchFilters {
            state: t.state.as_str().to_string(),
            unit: t.unit.clone(),
            centre: t.centre.clone(),
            grid: t.location.grid.clone(),
            category: t.category.clone(),
            due_at: t.overdue_from(),
            co_units: t.co_units.clone(),
        }
    }

    fn co_units_json(&self) -> String {
        serde_json::Value::from(self.co_units.clone()).to_string()
    }
}

impl SearchRow {
    pub fn of(t: &Ticket) -> SearchRow {
        let search = search_text(t);
        let grams = grams(&search);
        SearchRow {
            id: t.id,
            search,
            grams,
            created_at: t.created_at,
            filters: SearchFilters::of(t),
        }
    }
}

/// The search row's part of the batched PostgreSQL append.
pub static SEARCH_PART: PgPart = PgPart {
    rows: "ticket_search_rows",
    columns: &[
        ("id", "uuid"),
        ("search", "text"),
        ("grams", "text"),
        ("created_at", "timestamptz"),
        ("state", "text"),
        ("unit", "text"),
        ("centre", "text"),
        ("grid", "text"),
        ("category", "text"),
        ("due_at", "timestamptz"),
        // The co-units as a JSON array (arrays of arrays do not unnest).
        ("co", "text"),
    ],
    write: "INSERT INTO ticket_search (id, search, grams, created_at, state, unit, centre, grid, \
                                       category, due_at, co_units) \
            SELECT id, search, ARRAY(SELECT json_array_elements_text(grams::json)), created_at, \
                   state, unit, centre, grid, category, due_at, \
                   ARRAY(SELECT json_array_elements_text(co::json)) \
            FROM ticket_search_rows ON CONFLICT (id) DO NOTHING",
    refusals: &[],
};

#[async_trait]
impl ViewHandler for SearchRow {
    async fn write_sqlite(
        &self,
        conn: &mut SqliteConnection,
        _appended: &Appended,
    ) -> Result<(), StoreError> {
        write_sqlite_row(conn, self).await
    }

    fn pg_part(&self) -> &'static PgPart {
        &SEARCH_PART
    }

    fn pg_row(&self, _head_hash: &str) -> Vec<PgValue> {
        vec![
            PgValue::Uuid(Some(self.id)),
            PgValue::Text(Some(self.search.clone())),
            PgValue::Text(Some(
                serde_json::Value::from(self.grams.clone()).to_string(),
            )),
            PgValue::Time(Some(self.created_at)),
            PgValue::Text(Some(self.filters.state.clone())),
            PgValue::Text(self.filters.unit.clone()),
            PgValue::Text(Some(self.filters.centre.clone())),
            PgValue::Text(self.filters.grid.clone()),
            PgValue::Text(Some(self.filters.category.clone())),
            PgValue::Time(self.filters.due_at),
            PgValue::Text(Some(self.filters.co_units_json())),
        ]
    }
}

async fn write_sqlite_row(conn: &mut SqliteConnection, row: &SearchRow) -> Result<(), StoreError> {
    let n: Option<i64> = sqlx::query_scalar(
        "INSERT INTO ticket_search (id, search, created_at, state, unit, centre, grid, category, \
         due_at, co_units) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO NOTHING RETURNING n",
    )
    .bind(row.id.to_string())
    .bind(&row.search)
    .bind(crate::store::hash::rfc3339(row.created_at))
    .bind(&row.filters.state)
    .bind(&row.filters.unit)
    .bind(&row.filters.centre)
    .bind(&row.filters.grid)
    .bind(&row.filters.category)
    .bind(row.filters.due_at.map(crate::store::hash::rfc3339))
    .bind(row.filters.co_units_json())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(n) = n {
        sqlx::query("INSERT INTO ticket_grams (rowid, grams) VALUES (?, ?)")
            .bind(n)
            .bind(row.grams.join(" "))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Tickets read per round of [`backfill`].
const BACKFILL_BATCH: i64 = 500;

/// Fills in what migration 0012 added for tickets written without it (a database
/// from before it, a restore, which copies the view alone): the search entry of
/// each ticket that has none, and the view's `due_at` of assigned tickets that have
/// none. Returns how many tickets it indexed. Run once at start-up, before the
/// service answers.
pub async fn backfill(pool: &Pool) -> Result<u64, StoreError> {
    let mut indexed = 0u64;
    // Two counts rather than the anti-join below over every ticket at every
    // start: equal counts mean every view row has its entry (an entry is only
    // ever written with its view row); unequal ones run the anti-join, which
    // ends the loop when it finds nothing.
    while unindexed(pool).await? {
        let docs: Vec<String> = match pool {
            Pool::Postgres(p) => sqlx::query_scalar(
                "SELECT v.doc FROM ticket_view v WHERE NOT EXISTS \
                 (SELECT 1 FROM ticket_search s WHERE s.id = v.id) LIMIT $1",
            )
            .bind(BACKFILL_BATCH)
            .fetch_all(p)
            .await
            .map_err(StoreError::classify)?,
            Pool::Sqlite(p) => sqlx::query_scalar(
                "SELECT v.doc FROM ticket_view v WHERE NOT EXISTS \
                 (SELECT 1 FROM ticket_search s WHERE s.id = v.id) LIMIT ?",
            )
            .bind(BACKFILL_BATCH)
            .fetch_all(p)
            .await
            .map_err(StoreError::classify)?,
        };
        if docs.is_empty() {
            break;
        }
        let mut rows = Vec::with_capacity(docs.len());
        for d in &docs {
            let t: Ticket = serde_json::from_str(d)
                .map_err(|e| StoreError::Corrupt(format!("ticket_view.doc: {e}")))?;
            rows.push(SearchRow::of(&t));
        }
        match pool {
            Pool::Postgres(p) => {
                let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
                let texts: Vec<String> = rows.iter().map(|r| r.search.clone()).collect();
                let grams: Vec<String> = rows
                    .iter()
                    .map(|r| serde_json::Value::from(r.grams.clone()).to_string())
                    .collect();
                let created: Vec<DateTime<Utc>> = rows.iter().map(|r| r.created_at).collect();
                let f: Vec<&SearchFilters> = rows.iter().map(|r| &r.filters).collect();
                let states: Vec<&str> = f.iter().map(|f| f.state.as_str()).collect();
                let units: Vec<Option<&str>> = f.iter().map(|f| f.unit.as_deref()).collect();
                let centres: Vec<&str> = f.iter().map(|f| f.centre.as_str()).collect();
                let grids: Vec<Option<&str>> = f.iter().map(|f| f.grid.as_deref()).collect();
                let categories: Vec<&str> = f.iter().map(|f| f.category.as_str()).collect();
                let dues: Vec<Option<DateTime<Utc>>> = f.iter().map(|f| f.due_at).collect();
                let cos: Vec<String> = f.iter().map(|f| f.co_units_json()).collect();
                sqlx::query(
                    "INSERT INTO ticket_search (id, search, grams, created_at, state, unit, centre, \
                                                grid, category, due_at, co_units) \
                     SELECT id, search, ARRAY(SELECT json_array_elements_text(grams::json)), created_at, \
                            state, unit, centre, grid, category, due_at, \
                            ARRAY(SELECT json_array_elements_text(co::json)) \
                     FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], \
                                 $6::text[], $7::text[], $8::text[], $9::text[], $10::timestamptz[], \
                                 $11::text[]) \
                          AS r(id, search, grams, created_at, state, unit, centre, grid, category, \
                               due_at, co) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(&ids)
                .bind(&texts)
                .bind(&grams)
                .bind(&created)
                .bind(&states)
                .bind(&units)
                .bind(&centres)
                .bind(&grids)
                .bind(&categories)
                .bind(&dues)
                .bind(&cos)
                .execute(p)
                .await
                .map_err(StoreError::classify)?;
            }
            Pool::Sqlite(p) => {
                let mut tx = p.begin().await.map_err(StoreError::classify)?;
                for r in &rows {
                    write_sqlite_row(&mut tx, r).await?;
                }
                tx.commit().await.map_err(StoreError::classify)?;
            }
        }
        indexed += rows.len() as u64;
    }
    backfill_due(pool).await?;
    Ok(indexed)
}

/// Whether some view row may have no search entry.
async fn unindexed(pool: &Pool) -> Result<bool, StoreError> {
    const SQL: &str =
        "SELECT (SELECT COUNT(*) FROM ticket_view) <> (SELECT COUNT(*) FROM ticket_search)";
    match pool {
        Pool::Postgres(p) => sqlx::query_scalar(SQL).fetch_one(p).await,
        Pool::Sqlite(p) => sqlx::query_scalar(SQL).fetch_one(p).await,
    }
    .map_err(StoreError::classify)
}

/// The `due_at` of assigned tickets whose view row was written without it.
async fn backfill_due(pool: &Pool) -> Result<(), StoreError> {
    let docs: Vec<String> = match pool {
        Pool::Postgres(p) => sqlx::query_scalar(
            "SELECT doc FROM ticket_view WHERE state = 'assigned' AND due_at IS NULL",
        )
        .fetch_all(p)
        .await
        .map_err(StoreError::classify)?,
        Pool::Sqlite(p) => sqlx::query_scalar(
            "SELECT doc FROM ticket_view WHERE state = 'assigned' AND due_at IS NULL",
        )
        .fetch_all(p)
        .await
        .map_err(StoreError::classify)?,
    };
    for d in docs {
        let t: Ticket = serde_json::from_str(&d)
            .map_err(|e| StoreError::Corrupt(format!("ticket_view.doc: {e}")))?;
        let Some(due) = t.overdue_from() else {
            continue;
        };
        // Only the version read: a command that wrote the row since set it itself.
        match pool {
            Pool::Postgres(p) => {
                sqlx::query(
                    "UPDATE ticket_view SET due_at = $1 WHERE id = $2 AND version = $3 AND due_at IS NULL",
                )
                .bind(due)
                .bind(t.id)
                .bind(t.version)
                .execute(p)
                .await
                .map_err(StoreError::classify)?;
            }
            Pool::Sqlite(p) => {
                sqlx::query(
                    "UPDATE ticket_view SET due_at = ? WHERE id = ? AND version = ? AND due_at IS NULL",
                )
                .bind(crate::store::hash::rfc3339(due))
                .bind(t.id.to_string())
                .bind(t.version)
                .execute(p)
                .await
                .map_err(StoreError::classify)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigrams_of_chinese_text_and_runs() {
        assert_eq!(grams("垃圾桶"), ["垃圾", "圾桶"]);
        assert_eq!(grams("中山路 8 号"), ["中山", "山路", "8", "号"]);
        assert_eq!(query_grams("垃圾"), ["垃圾"]);
        assert!(query_grams("路").is_empty());
        assert_eq!(query_grams("a-bc").len(), 1);
        assert_eq!(query_grams("青岛路12号"), ["青岛", "岛路", "路1", "2号"]);
        assert_eq!(query_grams("000123"), ["00", "01", "12", "23"]);
        assert_eq!(
            query_grams("一二三四五六七八九十百千万").len(),
            MAX_QUERY_GRAMS
        );
        assert!(is_ticket_number("20261207-000123"));
        assert!(!is_ticket_number("20261207000123"));
        assert_eq!(
            fts_query(&["垃圾".into(), "圾桶".into()]),
            "\"垃圾\" AND \"圾桶\""
        );
    }
}
