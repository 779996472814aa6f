//! `report-reliability`: RELIABILITY.md from the fault suite's JSON (issue 25).
//!
//! The prose is `load/RELIABILITY.template.md`; every figure in it is a
//! `{{name}}` filled in from `target/faults/faults.json` (`load/faults.sh --json`),
//! so the document shows one run, and a figure quoted twice is the same figure.
//! A name the template uses that the run does not have is an error, not a blank.
//!
//! ```sh
//! load/faults.sh
//! load/reliability.sh   # = keep the JSON as load/faults-last-run.json, then
//!                       #   yiwang-load report-reliability load/faults-last-run.json > RELIABILITY.md
//! ```
//!
//! A test holds the committed RELIABILITY.md to the committed JSON.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The template, built in so that the command needs only the JSON.
const TEMPLATE: &str = include_str!("../RELIABILITY.template.md");

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The fault suite's JSON (`load/faults.sh` writes target/faults/faults.json).
    pub json: PathBuf,
    /// Another template than the built-in load/RELIABILITY.template.md.
    #[arg(long)]
    pub template: Option<PathBuf>,
}

pub fn run(a: ReportArgs) -> Result<bool> {
    let text = std::fs::read_to_string(&a.json)
        .with_context(|| format!("reading {}", a.json.display()))?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", a.json.display()))?;
    let template = match &a.template {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => TEMPLATE.to_string(),
    };
    print!("{}", render(&template, &v)?);
    Ok(true)
}

/// The template with every `{{name}}` replaced by its figure from the run `v`.
pub fn render(template: &str, v: &Value) -> Result<String> {
    let values = figures(v)?;
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    let mut unknown: Vec<String> = Vec::new();
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            bail!("the template has a `{{{{` that is never closed");
        };
        let name = after[..close].trim();
        match values.get(name) {
            Some(val) => out.push_str(val),
            None => unknown.push(name.to_string()),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    if !unknown.is_empty() {
        bail!(
            "the run has no figure for {} (a scenario not run, or a name misspelt in the template)",
            unknown.join(", ")
        );
    }
    Ok(reflow(&out, WIDTH))
}

/// The width the prose is wrapped to once the figures are in.
const WIDTH: usize = 85;

/// Paragraphs and list items wrapped again to `width` (a figure is rarely as long as
/// its `{{name}}`): code blocks, tables, headings and comments are left as they are,
/// and a line is never made to start with what Markdown would read as a new block.
fn reflow(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len());
    // The block being gathered: its first line's prefix, the continuation indent,
    // and its words.
    let mut block: Option<(String, String, Vec<String>)> = None;
    let flush = |block: &mut Option<(String, String, Vec<String>)>, out: &mut String| {
        let Some((first, indent, words)) = block.take() else {
            return;
        };
        let mut line = first;
        let mut bare = true;
        for w in words {
            let starts_block = w.starts_with(['-', '+', '*', '#', '>', '|'])
                || w.starts_with("1.")
                || w.starts_with("1)");
            if !bare && line.chars().count() + 1 + w.chars().count() > width && !starts_block {
                out.push_str(&line);
                out.push('\n');
                line = indent.clone();
                bare = true;
            }
            if !bare {
                line.push(' ');
            }
            line.push_str(&w);
            bare = false;
        }
        out.push_str(&line);
        out.push('\n');
    };
    let mut fence = false;
    let mut comment = false;
    for l in text.lines() {
        let t = l.trim_start();
        if fence || comment {
            out.push_str(l);
            out.push('\n');
            if t.starts_with("```") {
                fence = false;
            }
            if l.contains("-->") {
                comment = false;
            }
            continue;
        }
        if t.is_empty()
            || t.starts_with(['#', '|'])
            || t.starts_with("```")
            || t.starts_with("<!--")
        {
            flush(&mut block, &mut out);
            out.push_str(l);
            out.push('\n');
            fence = t.starts_with("```");
            comment = t.starts_with("<!--") && !t.contains("-->");
            continue;
        }
        let lead = &l[..l.len() - t.len()];
        let marker = t.split_once(' ').map(|(m, _)| m).filter(|m| {
            ["-", "*", "+"].contains(m)
                || (m.ends_with('.')
                    && m[..m.len() - 1].chars().all(|c| c.is_ascii_digit())
                    && m.len() > 1)
        });
        let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        match (marker, &mut block) {
            (Some(m), _) => {
                flush(&mut block, &mut out);
                let first = format!("{lead}{m} ");
                let indent = " ".repeat(first.chars().count());
                block = Some((first, indent, words(&t[m.len()..])));
            }
            (None, Some((_, _, ws))) => ws.extend(words(t)),
            (None, None) => block = Some((lead.to_string(), lead.to_string(), words(t))),
        }
    }
    flush(&mut block, &mut out);
    if !text.ends_with('\n') {
        out.pop();
    }
    out
}

/// 12345 → "12,345".
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds as seconds with two decimals.
fn secs2(ms: u64) -> String {
    format!("{:.2}", ms as f64 / 1000.0)
}

fn engine_name(e: &str) -> &str {
    match e {
        "sqlite" => "SQLite",
        "postgres" => "PostgreSQL",
        other => other,
    }
}

/// Every figure of the run, by the name the template uses.
fn figures(v: &Value) -> Result<BTreeMap<String, String>> {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    let u = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let run = v.get("run").context(
        "the JSON has no `run` facts (written by an older yiwang-load): run the suite again",
    )?;
    let args = v.get("args").context("the JSON has no `args`")?;
    let runs = v
        .get("runs")
        .and_then(Value::as_array)
        .context("the JSON has no `runs`")?;
    if runs.is_empty() {
        bail!("the JSON has no scenario runs");
    }

    // The run itself.
    let s = |k: &str| run.get(k).and_then(Value::as_str).unwrap_or("unknown");
    let started = s("started_at");
    m.insert("run.started_at".into(), started.into());
    m.insert(
        "run.date".into(),
        started.get(..10).unwrap_or(started).into(),
    );
    let commit = match run.get("dirty").and_then(Value::as_bool) {
        Some(true) => format!("`{}` with uncommitted changes", s("commit")),
        _ => format!("`{}`", s("commit")),
    };
    m.insert("run.commit".into(), commit);
    m.insert("run.command".into(), s("command").into());
    m.insert("run.profile".into(), s("profile").into());
    m.insert("run.postgres_version".into(), s("postgres_version").into());
    m.insert(
        "run.cpus".into(),
        run.get("cpus")
            .and_then(Value::as_u64)
            .map_or("unknown".into(), |n| n.to_string()),
    );
    m.insert("run.load_average".into(), s("load_average_at_start").into());
    let el = u(run, "elapsed_s");
    m.insert(
        "run.elapsed".into(),
        format!("{} min {:02} s", el / 60, el % 60),
    );
    for k in [
        "clients",
        "kills",
        "outage_secs",
        "drop_percent",
        "seconds",
        "seed",
    ] {
        m.insert(format!("args.{k}"), u(args, k).to_string());
    }
    let full = s("profile") == "release" && u(args, "kills") == 20 && u(args, "seconds") == 20;
    m.insert(
        "run.kind".into(),
        if full {
            "This is the full run: `load/faults.sh` on a release build.".to_string()
        } else {
            format!(
                "**This is not the full run.** It is a short one ({} kills, a {} s outage, {} s of \
                 load around each fault, {} ticket workers) on the {} build, so its counts are \
                 smaller than the full run's (`load/faults.sh` on a release build: 20 kills, \
                 20 s, 16 workers) and its latencies are a debug build's on a shared machine.",
                u(args, "kills"),
                u(args, "outage_secs"),
                u(args, "seconds"),
                u(args, "clients"),
                s("profile")
            )
        },
    );

    // Each scenario on each engine, and the table.
    let mut rows: Vec<String> = Vec::new();
    let (mut lost, mut doubled, mut sse, mut failed, mut compared) =
        (0u64, 0u64, 0u64, 0, u64::MAX);
    let mut engines: Vec<String> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for r in runs {
        let scenario = r.get("scenario").and_then(Value::as_str).unwrap_or("?");
        let engine = r.get("engine").and_then(Value::as_str).unwrap_or("?");
        if !engines.iter().any(|e| e == engine) {
            engines.push(engine.to_string());
        }
        let ok = r.get("ok").and_then(Value::as_bool).unwrap_or(false);
        let check = &r["check"];
        let counts = &check["counts"];
        let load = &r["load"];
        let fault = &r["fault"];
        let c = |k: &str| u(counts, k);
        let problems: Vec<&str> = check
            .get("problems")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let problem_count = u(check, "problem_count");
        let lost_here = problems.iter().filter(|p| p.starts_with("LOST:")).count() as u64;
        let doubled_here = problems
            .iter()
            .filter(|p| p.contains("applied more than once") || p.contains("appended to two"))
            .count() as u64;
        lost += lost_here;
        doubled += doubled_here;
        sse += c("SSE events received");
        compared = compared.min(c("projection answers compared"));
        if !ok {
            failed += 1;
            failures.push(format!(
                "{scenario} on {}: {problem_count} problem{}, {} errors",
                engine_name(engine),
                if problem_count == 1 { "" } else { "s" },
                u(load, "server_errors")
                    + u(load, "unexpected_refusals")
                    + u(load, "refusals_accepted")
                    + u(load, "replay_mismatches")
                    + u(load, "unresolved")
                    + u(load, "refused_reads")
            ));
        }
        let p = format!("{scenario}.{engine}.");
        let mut put = |k: &str, val: String| {
            m.insert(format!("{p}{k}"), val);
        };
        put("result", if ok { "ok" } else { "FAILED" }.into());
        put("acked", thousands(c("acknowledged commands")));
        put("after_retry", thousands(c("acknowledged after a retry")));
        put("refused", thousands(c("refused as intended")));
        put("sla", thousands(c("SLA events")));
        put("sse", thousands(c("SSE events received")));
        put("tickets", thousands(c("tickets")));
        put("events", thousands(c("events in the log")));
        put("replays", thousands(u(load, "replays")));
        put("n503", thousands(u(load, "unavailable_503")));
        put("unresolved", thousands(u(load, "unresolved")));
        put(
            "commands_per_s",
            format!("{:.0}", load["commands_per_s"].as_f64().unwrap_or(0.0)),
        );
        put("problems", problem_count.to_string());
        put(
            "fault",
            fault
                .get("summary")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        );
        match scenario {
            "kill" => put("restart_max_s", secs2(u(fault, "restart_max_ms"))),
            "drop" => put("dropped", thousands(u(fault, "answers_dropped"))),
            "outage" => {
                put("probes", u(fault, "probe_commands").to_string());
                put("slowest_probe_s", secs2(u(fault, "slowest_probe_ms")));
                put("readyz_503", u(fault, "readyz_503").to_string());
                put("readyz_probes", u(fault, "readyz_probes").to_string());
                put("slowest_readyz_s", secs2(u(fault, "slowest_readyz_ms")));
                if let Some(ms) = fault.get("recovered_after_ms").and_then(Value::as_u64) {
                    put("recovered_ms", ms.to_string());
                }
            }
            "disk" => {
                put("full_status", u(fault, "full_probe_status").to_string());
                if let Some(ms) = fault
                    .get("recovered_after_space_ms")
                    .and_then(Value::as_u64)
                {
                    put("recovered_ms", ms.to_string());
                }
            }
            "cluster" => {
                put(
                    "sla_after_kill",
                    u(fault, "sla_events_after_the_kill").to_string(),
                );
                put("killed_instance", (u(fault, "killed") + 1).to_string());
                put("left_open", u(fault, "tickets_left_open").to_string());
            }
            _ => {}
        }
        // The fault, in the same figures and rounding as the prose (the harness's
        // own summary rounds differently).
        let f_ms = |k: &str| fault.get(k).and_then(Value::as_u64);
        let fault_text = match scenario {
            "steady" => "none".to_string(),
            "kill" => format!(
                "{} × kill -9, restarts ≤ {} s",
                u(fault, "kills"),
                secs2(u(fault, "restart_max_ms"))
            ),
            "drop" => format!(
                "{} answers dropped after commit ({} %)",
                thousands(u(fault, "answers_dropped")),
                u(fault, "drop_percent")
            ),
            "outage" => format!(
                "{} s cut; commands 503 in ≤ {} s; recovered {}",
                u(fault, "outage_secs"),
                secs2(u(fault, "slowest_probe_ms")),
                f_ms("recovered_after_ms").map_or("never".into(), |ms| format!("{ms} ms after"))
            ),
            "disk" => format!(
                "disk full → {}; recovered {}",
                u(fault, "full_probe_status"),
                f_ms("recovered_after_space_ms")
                    .map_or("never".into(), |ms| format!("{ms} ms after space returned"))
            ),
            "cluster" => format!(
                "3 instances, instance {} killed, clock +2 days for the others; {} SLA events appended after the kill",
                u(fault, "killed") + 1,
                u(fault, "sla_events_after_the_kill")
            ),
            _ => fault
                .get("summary")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        };
        rows.push(format!(
            "| {scenario} | {engine} | {} | {} | {} | {} | {} ({} differed) | {} | {} | {} | {lost_here} | {doubled_here} | {} | {} | {problem_count} |",
            if ok { "ok" } else { "**FAILED**" },
            fault_text,
            thousands(c("acknowledged commands")),
            thousands(c("acknowledged after a retry")),
            thousands(u(load, "replays")),
            u(load, "replay_mismatches"),
            thousands(c("refused as intended")),
            thousands(u(load, "unavailable_503")),
            u(load, "unresolved"),
            thousands(c("SLA events")),
            thousands(c("SSE events received")),
        ));
    }
    let mut table = String::from(
        "| scenario | engine | result | fault | commands acknowledged | of them after a retry | replays (same key, same answer) | intended refusals | 503s seen | unresolved | lost | duplicated | SLA events | SSE events checked | problems |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    table.push_str(&rows.join("\n"));
    m.insert("table".into(), table);
    m.insert("total.lost".into(), thousands(lost));
    m.insert("total.duplicated".into(), thousands(doubled));
    m.insert("total.sse".into(), thousands(sse));
    m.insert("total.runs".into(), runs.len().to_string());
    m.insert("total.projection_answers".into(), compared.to_string());
    let engines_text = match engines.len() {
        1 => format!("on {} only", engine_name(&engines[0])),
        _ => "on both engines".to_string(),
    };
    m.insert("total.engines".into(), engines_text);
    let skipped: Vec<&str> = v
        .get("skipped")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut result = if failed == 0 {
        format!("All {} scenario runs passed.", runs.len())
    } else {
        format!(
            "**{failed} of {} scenario runs FAILED** ({}).",
            runs.len(),
            failures.join("; ")
        )
    };
    if !skipped.is_empty() {
        result.push_str(&format!(" Skipped: {}.", skipped.join("; ")));
    }
    m.insert("total.result".into(), result);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run_json() -> Value {
        json!({
            "args": {"clients": 8, "kills": 5, "outage_secs": 10, "drop_percent": 20, "seconds": 8, "seed": 1},
            "run": {"started_at": "2026-12-07T10:00:00Z", "elapsed_s": 151, "commit": "abc1234",
                    "dirty": false, "command": "load/faults.sh --quick", "profile": "debug", "cpus": 2,
                    "postgres_version": "15.8", "load_average_at_start": "3.10"},
            "skipped": [],
            "runs": [
                {"scenario": "kill", "engine": "sqlite", "ok": true,
                 "fault": {"kills": 5, "restart_max_ms": 110, "summary": "5 × kill -9"},
                 "load": {"replays": 1573, "replay_mismatches": 0, "unavailable_503": 0, "unresolved": 0},
                 "check": {"ok": true, "problems": [], "problem_count": 0,
                           "counts": {"acknowledged commands": 31418, "acknowledged after a retry": 313,
                                      "SSE events received": 1000, "projection answers compared": 8}}},
                {"scenario": "cluster", "engine": "postgres", "ok": false,
                 "fault": {"killed": 2, "sla_events_after_the_kill": 6, "summary": "3 instances"},
                 "load": {"replays": 2, "replay_mismatches": 0, "unavailable_503": 0, "unresolved": 0},
                 "check": {"ok": false, "problems": ["LOST: x"], "problem_count": 1,
                           "counts": {"acknowledged commands": 5, "SLA events": 14,
                                      "SSE events received": 24}}}
            ]
        })
    }

    /// The committed document is the render of the committed run: regenerate it
    /// with `load/reliability.sh` after `load/faults.sh`, never by hand.
    #[test]
    fn reliability_md_is_the_render_of_the_last_run_kept() {
        let run: Value = serde_json::from_str(include_str!("../faults-last-run.json"))
            .expect("load/faults-last-run.json is JSON");
        let want = render(TEMPLATE, &run).expect("renders");
        let have = include_str!("../../RELIABILITY.md");
        assert!(
            have == want,
            "RELIABILITY.md is not what load/faults-last-run.json and the template give: \
             run load/reliability.sh"
        );
    }

    #[test]
    fn every_figure_comes_from_the_run() {
        let out = render(
            "{{run.date}} {{run.commit}}: {{kill.sqlite.acked}} acked, {{kill.sqlite.after_retry}} \
             after a retry, restarts ≤ {{kill.sqlite.restart_max_s}} s; {{cluster.postgres.sla}} SLA \
             events, {{cluster.postgres.sla_after_kill}} after instance \
             {{cluster.postgres.killed_instance}} died; lost {{total.lost}}; SSE {{total.sse}}; \
             {{total.result}}",
            &run_json(),
        )
        .expect("renders");
        assert_eq!(
            out.split_whitespace().collect::<Vec<_>>().join(" "),
            "2026-12-07 `abc1234`: 31,418 acked, 313 after a retry, restarts ≤ 0.11 s; 14 SLA \
             events, 6 after instance 3 died; lost 1; SSE 1,024; **1 of 2 scenario runs FAILED** \
             (cluster on PostgreSQL: 1 problem, 0 errors)."
        );
    }

    #[test]
    fn prose_is_wrapped_and_everything_else_left_alone() {
        let text = "Some words that run on\nand on.\n\n- an item\n  that wraps\n  - a nested one\n\n| a | b |\n|---|---|\n\n```sh\nlong   code\n```\n";
        assert_eq!(
            reflow(text, 14),
            "Some words\nthat run on\nand on.\n\n- an item that\n  wraps\n  - a nested\n    one\n\n| a | b |\n|---|---|\n\n```sh\nlong   code\n```\n"
        );
        // A word that Markdown would read as a list stays on the line before.
        assert_eq!(
            reflow("aaaa bbbb - cc\n", 9),
            "aaaa bbbb - cc\n".replace("bbbb - cc", "bbbb -\ncc")
        );
    }

    #[test]
    fn a_short_run_says_so() {
        let out = render("{{run.kind}}", &run_json()).expect("renders");
        assert!(out.starts_with("**This is not the full run.**"), "{out}");
    }

    #[test]
    fn a_figure_the_run_does_not_have_is_an_error() {
        let e = render(
            "{{outage.postgres.slowest_readyz_s}} and {{kill.sqlite.acked}}",
            &run_json(),
        )
        .expect_err("no outage in this run");
        assert!(
            e.to_string().contains("outage.postgres.slowest_readyz_s"),
            "{e}"
        );
        assert!(render("{{run.date", &run_json()).is_err());
    }

    #[test]
    fn the_built_in_template_renders_from_a_complete_run() {
        // Every scenario on its engines, with the fields each one writes.
        let mut v = run_json();
        let one = |scenario: &str, engine: &str, fault: Value| {
            json!({"scenario": scenario, "engine": engine, "ok": true, "fault": fault,
                   "load": {}, "check": {"problems": [], "problem_count": 0, "counts": {}}})
        };
        v["runs"] = json!([
            one("steady", "sqlite", json!({})),
            one("kill", "sqlite", json!({"restart_max_ms": 100})),
            one("drop", "sqlite", json!({"answers_dropped": 10})),
            one(
                "disk",
                "sqlite",
                json!({"full_probe_status": 503, "recovered_after_space_ms": 3})
            ),
            one("steady", "postgres", json!({})),
            one("kill", "postgres", json!({"restart_max_ms": 200})),
            one(
                "outage",
                "postgres",
                json!({"probe_commands": 4, "slowest_probe_ms": 5060,
                "readyz_503": 4, "readyz_probes": 4, "slowest_readyz_ms": 960, "recovered_after_ms": 21})
            ),
            one("drop", "postgres", json!({"answers_dropped": 9})),
            one(
                "cluster",
                "postgres",
                json!({"killed": 0, "sla_events_after_the_kill": 6})
            ),
        ]);
        let out = render(TEMPLATE, &v).expect("the built-in template renders");
        assert!(!out.contains("{{"), "{out}");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }
}
