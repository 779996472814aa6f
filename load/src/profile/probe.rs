//! PostgreSQL's and SQLite's counters: WAL, commits, statements, rows and index
//! entries per table.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use anyhow::{Context, Result};
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use super::proc::proc_stat;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct TableCounts {
    pub(super) ins: i64,
    pub(super) upd: i64,
    pub(super) hot: i64,
    pub(super) del: i64,
    pub(super) indexes: i64,
}

/// Cumulative counters read after the previous phase settled.
#[derive(Clone, Debug, Default)]
pub(super) struct PgCounters {
    pub(super) wal_records: i64,
    pub(super) wal_fpi: i64,
    pub(super) wal_bytes: i64,
    pub(super) wal_write: i64,
    pub(super) wal_sync: i64,
    pub(super) xact_commit: i64,
    pub(super) xact_rollback: i64,
    pub(super) checkpoints: i64,
    tables: BTreeMap<String, TableCounts>,
}

#[derive(Clone, Debug)]
pub(super) struct Statement {
    pub(super) query: String,
    pub(super) calls: i64,
    pub(super) rows: i64,
    pub(super) total_ms: f64,
    /// WAL this statement wrote (pg_stat_statements 1.8+).
    pub(super) wal_bytes: i64,
    pub(super) wal_fpi: i64,
}

/// Index entries written, estimated: every inserted row and every non-HOT update
/// writes one entry into each index of its table (a HOT update writes none).
/// Partial indexes are left out of the count on PostgreSQL (whether a row enters one
/// depends on its predicate), and a GIN index counts as one entry per row although
/// it writes one per key, so this is a floor for tables with either.
pub(super) fn index_entries(t: &TableCounts) -> i64 {
    (t.ins + (t.upd - t.hot)) * t.indexes
}

pub(super) fn table_delta(a: &TableCounts, b: &TableCounts) -> TableCounts {
    TableCounts {
        ins: b.ins - a.ins,
        upd: b.upd - a.upd,
        hot: b.hot - a.hot,
        del: b.del - a.del,
        indexes: b.indexes,
    }
}

pub(super) struct PgProbe {
    /// One connection to the service's database (per-database views).
    target: PgPool,
    /// One connection to the `postgres` database (cluster-wide views and
    /// `pg_stat_statements`, so that these queries do not count against the service's
    /// database).
    admin: PgPool,
    db_oid: i64,
    pub(super) postmaster: Option<u32>,
    statements: bool,
}

impl PgProbe {
    pub(super) async fn connect(url: &str) -> Result<Self> {
        let opts = PgConnectOptions::from_str(url).context("parsing the PostgreSQL URL")?;
        let one = || PgPoolOptions::new().max_connections(1).min_connections(1);
        let target = one()
            .connect_with(opts.clone())
            .await
            .context("connecting to the service's database")?;
        let admin = one()
            .connect_with(opts.database("postgres"))
            .await
            .context("connecting to the postgres database")?;
        let db_oid: i64 = sqlx::query_scalar(
            "SELECT oid::bigint FROM pg_database WHERE datname = current_database()",
        )
        .fetch_one(&target)
        .await?;
        // The postmaster is the parent of our own backend, when the server runs here.
        let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&admin)
            .await?;
        let postmaster = u32::try_from(backend)
            .ok()
            .and_then(proc_stat)
            .map(|s| s.ppid)
            .filter(|pm| {
                std::fs::read_to_string(format!("/proc/{pm}/comm"))
                    .is_ok_and(|c| c.trim().starts_with("postgres"))
            });
        if postmaster.is_none() {
            eprintln!(
                "profile: the PostgreSQL server's processes are not visible here; no PostgreSQL CPU"
            );
        }
        // pg_stat_statements only where the server already preloads it: the profiler
        // never asks for a restart, and creates the extension in `postgres` only then.
        let preload: String =
            sqlx::query_scalar("SELECT current_setting('shared_preload_libraries')")
                .fetch_one(&admin)
                .await?;
        let statements = preload.contains("pg_stat_statements")
            && sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                .execute(&admin)
                .await
                .is_ok()
            && sqlx::query("SELECT pg_stat_statements_reset()")
                .execute(&admin)
                .await
                .is_ok();
        if !statements {
            eprintln!(
                "profile: pg_stat_statements is not preloaded on this server; statements per command are not counted (commits per command are)"
            );
        }
        Ok(PgProbe {
            target,
            admin,
            db_oid,
            postmaster,
            statements,
        })
    }

    /// Client backends of the service's database on TLS, of all of them (sqlx's
    /// default `sslmode=prefer` takes TLS whenever the server offers it).
    pub(super) async fn tls(&self) -> Result<(i64, i64)> {
        let r = sqlx::query(
            "SELECT count(*) FILTER (WHERE s.ssl) AS tls, count(*) AS all \
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.datid = $1::bigint::oid AND a.backend_type = 'client backend'",
        )
        .bind(self.db_oid)
        .fetch_one(&self.admin)
        .await?;
        Ok((r.try_get("tls")?, r.try_get("all")?))
    }

    pub(super) async fn checkpoint(&self) -> Result<()> {
        sqlx::query("CHECKPOINT").execute(&self.admin).await?;
        Ok(())
    }

    pub(super) async fn lsn(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
                .fetch_one(&self.admin)
                .await?,
        )
    }

    /// Client backends of other databases: others' work on the same cluster, whose
    /// CPU and WAL would be counted here too.
    pub(super) async fn other_backends(&self) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
             AND datid IS DISTINCT FROM $1::bigint::oid AND pid <> pg_backend_pid()",
        )
        .bind(self.db_oid)
        .fetch_one(&self.admin)
        .await?)
    }

    /// pid → backend type, for the processes of this cluster.
    pub(super) async fn backend_types(&self) -> Result<HashMap<u32, String>> {
        let rows = sqlx::query(
            "SELECT pid, CASE WHEN backend_type = 'client backend' AND datid = $1::bigint::oid \
             THEN 'service backend' ELSE backend_type END AS kind FROM pg_stat_activity",
        )
        .bind(self.db_oid)
        .fetch_all(&self.admin)
        .await?;
        let mut out = HashMap::new();
        for r in rows {
            let pid: i32 = r.try_get("pid")?;
            let kind: Option<String> = r.try_get("kind")?;
            if let Ok(pid) = u32::try_from(pid) {
                out.insert(pid, kind.unwrap_or_default());
            }
        }
        Ok(out)
    }

    async fn counters(&self) -> Result<PgCounters> {
        let w = sqlx::query(
            "SELECT wal_records, wal_fpi, wal_bytes::bigint AS wal_bytes, wal_write, wal_sync \
             FROM pg_stat_wal",
        )
        .fetch_one(&self.admin)
        .await?;
        let d = sqlx::query(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datid = $1::bigint::oid",
        )
        .bind(self.db_oid)
        .fetch_one(&self.admin)
        .await?;
        let checkpoints: i64 =
            sqlx::query_scalar("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
                .fetch_one(&self.admin)
                .await?;
        let rows = sqlx::query(
            "SELECT CASE WHEN t.schemaname = 'public' THEN t.relname \
             ELSE t.schemaname || '.' || t.relname END AS name, \
             t.n_tup_ins, t.n_tup_upd, t.n_tup_hot_upd, t.n_tup_del, \
             (SELECT count(*) FROM pg_index i WHERE i.indrelid = t.relid AND i.indpred IS NULL) \
             AS indexes \
             FROM pg_stat_user_tables t",
        )
        .fetch_all(&self.target)
        .await?;
        let mut tables = BTreeMap::new();
        for r in rows {
            tables.insert(
                r.try_get::<String, _>("name")?,
                TableCounts {
                    ins: r.try_get("n_tup_ins")?,
                    upd: r.try_get("n_tup_upd")?,
                    hot: r.try_get("n_tup_hot_upd")?,
                    del: r.try_get("n_tup_del")?,
                    indexes: r.try_get("indexes")?,
                },
            );
        }
        Ok(PgCounters {
            wal_records: w.try_get("wal_records")?,
            wal_fpi: w.try_get("wal_fpi")?,
            wal_bytes: w.try_get("wal_bytes")?,
            wal_write: w.try_get("wal_write")?,
            wal_sync: w.try_get("wal_sync")?,
            xact_commit: d.try_get("xact_commit")?,
            xact_rollback: d.try_get("xact_rollback")?,
            checkpoints,
            tables,
        })
    }

    pub(super) async fn reset_statements(&self) -> Result<()> {
        if self.statements {
            sqlx::query("SELECT pg_stat_statements_reset()")
                .execute(&self.admin)
                .await?;
        }
        Ok(())
    }

    /// The service database's statements since the last reset, most called first.
    pub(super) async fn statements(&self) -> Result<Vec<Statement>> {
        if !self.statements {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT query, calls, rows, total_exec_time, wal_bytes::bigint AS wal_bytes, wal_fpi \
             FROM pg_stat_statements \
             WHERE dbid = $1::bigint::oid ORDER BY total_exec_time DESC",
        )
        .bind(self.db_oid)
        .fetch_all(&self.admin)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Statement {
                    query: r.try_get("query")?,
                    calls: r.try_get("calls")?,
                    rows: r.try_get("rows")?,
                    total_ms: r.try_get("total_exec_time")?,
                    wal_bytes: r.try_get("wal_bytes")?,
                    wal_fpi: r.try_get("wal_fpi")?,
                })
            })
            .collect()
    }
}

/// Rows and indexes per table of the SQLite database.
pub(super) struct SqliteProbe {
    pool: SqlitePool,
}

impl SqliteProbe {
    pub(super) async fn connect(url: &str) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .context("parsing the SQLite URL")?
            .read_only(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .context("opening the SQLite database read-only")?;
        Ok(SqliteProbe { pool })
    }

    /// table → (rows, indexes). Virtual tables are left out (their shadow tables are
    /// ordinary tables and counted).
    async fn tables(&self) -> Result<BTreeMap<String, TableCounts>> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL%'",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = BTreeMap::new();
        for name in names {
            let quoted = name.replace('"', "\"\"");
            let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM \"{quoted}\""
            )))
            .fetch_one(&self.pool)
            .await?;
            let indexes: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 \
                 AND coalesce(upper(sql), '') NOT LIKE '% WHERE %'",
            )
            .bind(&name)
            .fetch_one(&self.pool)
            .await?;
            out.insert(
                name,
                TableCounts {
                    ins: rows,
                    indexes,
                    ..TableCounts::default()
                },
            );
        }
        Ok(out)
    }
}

pub(super) enum Probe {
    Pg(PgProbe),
    Sqlite(SqliteProbe),
}

#[derive(Clone, Debug, Default)]
pub(super) struct Counters {
    pub(super) pg: Option<PgCounters>,
    pub(super) tables: BTreeMap<String, TableCounts>,
}

impl Probe {
    pub(super) async fn counters(&self) -> Result<Counters> {
        match self {
            Probe::Pg(p) => {
                let c = p.counters().await?;
                Ok(Counters {
                    tables: c.tables.clone(),
                    pg: Some(c),
                })
            }
            Probe::Sqlite(s) => Ok(Counters {
                pg: None,
                tables: s.tables().await?,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_entries_count_inserts_and_non_hot_updates() {
        let t = TableCounts {
            ins: 10,
            upd: 7,
            hot: 3,
            del: 0,
            indexes: 5,
        };
        assert_eq!(index_entries(&t), (10 + 4) * 5);
    }
}
