//! One phase's figures: the report per phase, its JSON and the printed tables.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::probe::{Statement, TableCounts, index_entries};
use super::proc::{ProcIo, loadavg};
use super::{Kind, ProfileArgs};
use crate::ceiling::Engine;
use crate::stats::{self, Latency, f1, f2, print_table};

/// Statements listed per phase in the printed report (all of them go to the JSON).
const PRINTED_STATEMENTS: usize = 12;

#[derive(Clone, Debug)]
pub(super) struct PhaseReport {
    pub(super) kind: Kind,
    pub(super) commands: u64,
    pub(super) errors: u64,
    pub(super) seconds: f64,
    pub(super) latency: Latency,
    pub(super) loadavg_start: String,
    pub(super) loadavg_end: String,
    /// Milliseconds of CPU per command.
    pub(super) service_ms: f64,
    pub(super) pg_ms: Option<f64>,
    /// PostgreSQL CPU by process kind (service backend, walwriter, checkpointer, …,
    /// "postmaster and exited" for the rest), ms per command.
    pub(super) pg_ms_by_kind: BTreeMap<String, f64>,
    pub(super) load_tool_ms: f64,
    /// The machine's busy CPU not accounted to the service, PostgreSQL or this tool.
    pub(super) rest_ms: f64,
    pub(super) machine_busy_percent: f64,
    pub(super) wal_bytes: Option<i64>,
    pub(super) pg: Option<PgDelta>,
    /// Per table: the counters' difference over the phase.
    pub(super) tables: BTreeMap<String, TableCounts>,
    pub(super) statements: Vec<Statement>,
    pub(super) other_backends: Option<i64>,
    pub(super) service_io: Option<ProcIo>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct PgDelta {
    pub(super) wal_records: i64,
    pub(super) wal_fpi: i64,
    pub(super) wal_bytes_stat: i64,
    pub(super) wal_write: i64,
    pub(super) wal_sync: i64,
    pub(super) xact_commit: i64,
    pub(super) xact_rollback: i64,
    pub(super) checkpoints: i64,
}

impl PhaseReport {
    fn per(&self, x: f64) -> f64 {
        if self.commands > 0 {
            x / self.commands as f64
        } else {
            0.0
        }
    }

    fn rows(&self) -> (i64, i64, i64, i64) {
        self.tables.values().fold((0, 0, 0, 0), |a, t| {
            (
                a.0 + t.ins,
                a.1 + t.upd,
                a.2 + t.hot,
                a.3 + index_entries(t),
            )
        })
    }

    fn statement_calls(&self) -> i64 {
        self.statements.iter().map(|s| s.calls).sum()
    }

    pub(super) fn json(&self) -> Value {
        let per = |x: i64| stats::round3(self.per(x as f64));
        let (ins, upd, hot, idx) = self.rows();
        let tables: serde_json::Map<String, Value> = self
            .tables
            .iter()
            .filter(|(_, t)| t.ins != 0 || t.upd != 0 || t.del != 0)
            .map(|(name, t)| {
                (
                    name.clone(),
                    json!({
                        "inserted": t.ins, "updated": t.upd, "hot_updated": t.hot, "deleted": t.del,
                        "indexes": t.indexes, "index_entries_estimated": index_entries(t),
                        "inserted_per_command": per(t.ins), "updated_per_command": per(t.upd),
                        "hot_updated_per_command": per(t.hot),
                        "index_entries_per_command": per(index_entries(t)),
                    }),
                )
            })
            .collect();
        let statements: Vec<Value> = self
            .statements
            .iter()
            .map(|s| {
                json!({
                    "query": s.query, "calls": s.calls, "rows": s.rows,
                    "total_ms": stats::round3(s.total_ms),
                    "calls_per_command": per(s.calls),
                    "wal_bytes": s.wal_bytes, "wal_fpi": s.wal_fpi,
                    "wal_bytes_per_command": per(s.wal_bytes),
                })
            })
            .collect();
        json!({
            "kind": self.kind.name(),
            "commands": self.commands,
            "errors": self.errors,
            "seconds": stats::round3(self.seconds),
            "commands_per_s": stats::round3(stats::rate(self.commands, self.seconds)),
            "latency": self.latency.json(),
            "loadavg_start": self.loadavg_start,
            "loadavg_end": self.loadavg_end,
            "cpu_ms_per_command": {
                "service": stats::round3(self.service_ms),
                "postgres": self.pg_ms.map(stats::round3),
                "postgres_by_process": self.pg_ms_by_kind.iter()
                    .map(|(k, v)| (k.clone(), json!(stats::round3(*v)))).collect::<serde_json::Map<_, _>>(),
                "load_tool": stats::round3(self.load_tool_ms),
                "rest_of_machine": stats::round3(self.rest_ms),
            },
            "machine_busy_percent": stats::round3(self.machine_busy_percent),
            "wal_bytes": self.wal_bytes,
            "wal_bytes_per_command": self.wal_bytes.map(per),
            "postgres": self.pg.as_ref().map(|p| json!({
                "wal_records": p.wal_records, "wal_fpi": p.wal_fpi,
                "wal_bytes_pg_stat_wal": p.wal_bytes_stat, "wal_write": p.wal_write, "wal_sync": p.wal_sync,
                "xact_commit": p.xact_commit, "xact_rollback": p.xact_rollback,
                "checkpoints": p.checkpoints,
                "wal_records_per_command": per(p.wal_records), "wal_fpi_per_command": per(p.wal_fpi),
                "wal_sync_per_command": per(p.wal_sync), "commits_per_command": per(p.xact_commit),
                "statements_per_command": if self.statements.is_empty() { Value::Null } else { json!(per(self.statement_calls())) },
                "other_client_backends": self.other_backends,
            })),
            "rows_inserted_per_command": per(ins),
            "rows_updated_per_command": per(upd),
            "rows_hot_updated_per_command": per(hot),
            "index_entries_per_command": per(idx),
            "tables": tables,
            "statements": statements,
            "service_io": self.service_io.map(|io| json!({
                "write_bytes": io.write_bytes, "wchar": io.wchar, "syscw": io.syscw,
                "write_bytes_per_command": per(i64::try_from(io.write_bytes).unwrap_or(i64::MAX)),
                "wchar_per_command": per(i64::try_from(io.wchar).unwrap_or(i64::MAX)),
                "syscw_per_command": per(i64::try_from(io.syscw).unwrap_or(i64::MAX)),
            })),
        })
    }
}

pub(super) fn sub_io(a: Option<ProcIo>, b: Option<ProcIo>) -> Option<ProcIo> {
    let (a, b) = (a?, b?);
    Some(ProcIo {
        write_bytes: b.write_bytes.saturating_sub(a.write_bytes),
        wchar: b.wchar.saturating_sub(a.wchar),
        syscw: b.syscw.saturating_sub(a.syscw),
    })
}

fn opt(x: Option<f64>, f: fn(f64) -> String) -> String {
    x.map_or("-".into(), f)
}

fn f3(x: f64) -> String {
    format!("{x:.3}")
}

pub(super) fn print_reports(
    engine: Engine,
    a: &ProfileArgs,
    reports: &[PhaseReport],
    tls: Option<(i64, i64)>,
) {
    println!();
    println!(
        "yiwang-load profile: {} at {} clients; create for {} s, every later phase once per ticket created; load average now {}",
        engine.name(),
        a.clients,
        a.duration,
        loadavg()
    );
    if let Some((t, n)) = tls {
        println!("the service's connections to PostgreSQL on TLS: {t} of {n}");
    }
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let (ins, upd, hot, idx) = r.rows();
            let per = |x: i64| f2(r.per(x as f64));
            let pg = r.pg.as_ref();
            vec![
                r.kind.name().to_string(),
                r.commands.to_string(),
                r.errors.to_string(),
                f1(stats::rate(r.commands, r.seconds)),
                f2(r.latency.p50_ms),
                f2(r.latency.p99_ms),
                f3(r.service_ms),
                opt(r.pg_ms, f3),
                f3(r.load_tool_ms + r.rest_ms),
                format!("{:.0}", r.machine_busy_percent),
                if r.statements.is_empty() {
                    "-".into()
                } else {
                    per(r.statement_calls())
                },
                pg.map_or("-".into(), |p| f3(r.per(p.xact_commit as f64))),
                per(ins),
                format!("{} ({})", per(upd), per(hot)),
                per(idx),
                r.wal_bytes
                    .map_or("-".into(), |b| format!("{:.0}", r.per(b as f64))),
                pg.map_or("-".into(), |p| per(p.wal_records)),
                pg.map_or("-".into(), |p| per(p.wal_fpi)),
                pg.map_or("-".into(), |p| f3(r.per(p.wal_sync as f64))),
                r.service_io.map_or("-".into(), |io| {
                    format!("{:.0}", r.per(io.write_bytes as f64))
                }),
                format!("{} → {}", r.loadavg_start, r.loadavg_end),
            ]
        })
        .collect();
    print_table(
        &[
            "kind",
            "cmds",
            "errors",
            "cmds/s",
            "p50 ms",
            "p99 ms",
            "svc CPU ms",
            "pg CPU ms",
            "other CPU ms",
            "busy %",
            "stmts",
            "commits",
            "rows ins",
            "rows upd (HOT)",
            "idx entries",
            "WAL B",
            "WAL recs",
            "FPI",
            "WAL syncs",
            "svc write B",
            "load avg",
        ],
        &rows,
    );
    println!(
        "per command; CPU from /proc (pg: the postmaster and all its children); other = this load tool and the rest of the machine; \
         idx entries estimated = (rows inserted + non-HOT updates) × the table's non-partial indexes (GIN: one per row)"
    );

    println!();
    let mut rows = Vec::new();
    for r in reports {
        for (name, t) in &r.tables {
            if t.ins == 0 && t.upd == 0 && t.del == 0 {
                continue;
            }
            rows.push(vec![
                r.kind.name().to_string(),
                name.clone(),
                f2(r.per(t.ins as f64)),
                f2(r.per(t.upd as f64)),
                f2(r.per(t.hot as f64)),
                f2(r.per(t.del as f64)),
                t.indexes.to_string(),
                f2(r.per(index_entries(t) as f64)),
            ]);
        }
    }
    print_table(
        &[
            "kind",
            "table",
            "ins/cmd",
            "upd/cmd",
            "HOT/cmd",
            "del/cmd",
            "indexes",
            "idx entries/cmd",
        ],
        &rows,
    );
    if engine == Engine::Sqlite {
        println!(
            "SQLite: ins/cmd is the change of count(*) (net rows added); updates are not counted"
        );
    }

    let by_process: BTreeSet<&String> = reports
        .iter()
        .flat_map(|r| r.pg_ms_by_kind.keys())
        .collect();
    if !by_process.is_empty() {
        println!();
        let mut header = vec!["kind"];
        header.extend(by_process.iter().map(|s| s.as_str()));
        let rows: Vec<Vec<String>> = reports
            .iter()
            .map(|r| {
                let mut row = vec![r.kind.name().to_string()];
                row.extend(
                    by_process
                        .iter()
                        .map(|k| r.pg_ms_by_kind.get(*k).map_or("-".into(), |v| f3(*v))),
                );
                row
            })
            .collect();
        println!("PostgreSQL CPU per command by process (ms)");
        print_table(&header, &rows);
    }

    for r in reports {
        if r.statements.is_empty() {
            continue;
        }
        println!();
        println!(
            "{}: statements per command (pg_stat_statements ÷ {} commands), top {PRINTED_STATEMENTS} by execution time",
            r.kind.name(),
            r.commands
        );
        let rows: Vec<Vec<String>> = r
            .statements
            .iter()
            .take(PRINTED_STATEMENTS)
            .map(|s| {
                let q: String = s.query.split_whitespace().collect::<Vec<_>>().join(" ");
                let q: String = q.chars().take(110).collect();
                vec![
                    f3(r.per(s.calls as f64)),
                    f2(r.per(s.rows as f64)),
                    f3(if s.calls > 0 {
                        s.total_ms / s.calls as f64
                    } else {
                        0.0
                    }),
                    f3(r.per(s.total_ms)),
                    format!("{:.0}", r.per(s.wal_bytes as f64)),
                    f3(r.per(s.wal_fpi as f64)),
                    q,
                ]
            })
            .collect();
        print_table(
            &[
                "calls/cmd",
                "rows/cmd",
                "mean ms",
                "exec ms/cmd",
                "WAL B/cmd",
                "FPI/cmd",
                "query",
            ],
            &rows,
        );
    }
}
