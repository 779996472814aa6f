//! `yiwang import FILE.ndjson`: the history of a legacy system, one command per line
//! in the API's own shape plus when and by whom:
//!
//! ```text
//! {"ticket": "<external ref>", "at": "<RFC 3339>", "actor": {"user", "role", "unit"},
//!  "action": "create" | "assign" | …, "body": {…}}
//! ```
//!
//! Each line is the command the API would take (its body is parsed by the API's
//! own code, `app::commands`) and goes through the live path, `App::create` / `App::act`,
//! on an app whose clock stands at the line's `at`: the same policy, aggregate rules
//! and working-day deadlines, with `occurred_at` = `at`.
//!
//! A ticket is all or nothing. Its lines are grouped by `ticket`, kept in file order,
//! and first decided in memory (policy, organisation, aggregate; nothing written);
//! only when every line decides cleanly are they appended, one append per line with
//! that line's actor. The ticket's id is derived from its reference (a UUID v7 with
//! the first line's time and bits of the reference's SHA-256), and each line's
//! Idempotency-Key from the line itself, so a second run finds the ticket and skips
//! the lines already in its stream: it imports nothing new, and a file extended at
//! the end of a ticket's history applies only the new lines.
//!
//! The files: this one holds the command's arguments, the outcome and the ids and
//! keys derived from the file; `read.rs` reads and checks the lines and groups them
//! by ticket; `apply.rs` runs the workers that decide each ticket in memory and
//! append it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::AppError;
use crate::sla::{Calendar, SlaSettings};

mod apply;
mod read;

pub use apply::import;

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The file: one JSON command per line (README.md, "Import legacy history").
    pub file: PathBuf,
    /// Directory of calendar year files; default: the calendar built into the
    /// binary. Deadlines are computed as `serve` computes them: use the same.
    #[arg(long, env = "YIWANG_CALENDAR_DIR")]
    pub calendar_dir: Option<PathBuf>,
    /// Working days to redo a ticket after a failed verification (as `serve`).
    #[arg(long, env = "YIWANG_REWORK_DAYS", default_value_t = 3)]
    pub rework_days: u32,
    /// Tickets imported at the same time (each ticket's lines stay in order; a
    /// ticket that names an earlier one waits for it).
    #[arg(long, short = 'j', env = "YIWANG_IMPORT_JOBS", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
}

/// The `token_id` of the actors of imported lines (they come from the file, not
/// from a token).
pub const IMPORT_TOKEN: &str = "import";

/// A problem with one line of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based, as an editor counts.
    pub line: usize,
    /// None when the line's ticket reference could not be read.
    pub ticket: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.ticket {
            Some(t) => write!(f, "line {}: ticket {t}: {}", self.line, self.reason),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

/// What an import did.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Lines that are not blank.
    pub lines_read: usize,
    /// Lines appended by this run.
    pub lines_applied: usize,
    /// Lines found in their ticket's stream already (an earlier run).
    pub lines_already: usize,
    /// Tickets this run appended to (new, or extended with new lines).
    pub tickets_imported: usize,
    /// Tickets whose every line was imported before.
    pub tickets_already: usize,
    /// Tickets with a bad line: nothing of them was appended.
    pub tickets_refused: usize,
    /// Tickets whose append failed after their lines had decided cleanly (another
    /// writer changed them meanwhile): the lines before the failure are in.
    pub tickets_partial: usize,
    pub events_appended: usize,
    pub bad: Vec<BadLine>,
}

impl Outcome {
    /// Adds the counts and bad lines of another part of the same import.
    pub fn absorb(&mut self, o: Outcome) {
        self.lines_read += o.lines_read;
        self.lines_applied += o.lines_applied;
        self.lines_already += o.lines_already;
        self.tickets_imported += o.tickets_imported;
        self.tickets_already += o.tickets_already;
        self.tickets_refused += o.tickets_refused;
        self.tickets_partial += o.tickets_partial;
        self.events_appended += o.events_appended;
        self.bad.extend(o.bad);
    }

    /// The summary printed at the end: the bad lines in file order, then the counts.
    pub fn report(&self, elapsed: Duration) -> String {
        let mut bad = self.bad.clone();
        bad.sort_by_key(|b| b.line);
        let mut out = String::new();
        for b in &bad {
            out.push_str(&format!("{b}\n"));
        }
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.lines_read as f64 / secs
        } else {
            0.0
        };
        out.push_str(&format!(
            "lines read: {}\nlines applied: {}\nlines already imported: {}\n\
             tickets imported: {}\ntickets already imported: {}\ntickets refused: {}\n",
            self.lines_read,
            self.lines_applied,
            self.lines_already,
            self.tickets_imported,
            self.tickets_already,
            self.tickets_refused,
        ));
        if self.tickets_partial > 0 {
            out.push_str(&format!(
                "tickets stopped partway: {}\n",
                self.tickets_partial
            ));
        }
        out.push_str(&format!(
            "events appended: {}\nelapsed: {secs:.2} s ({rate:.0} lines/s)\n",
            self.events_appended
        ));
        out
    }
}

/// `yiwang import`: reads the file, imports it, prints the summary; fails when a
/// line was bad (the good tickets are in all the same).
pub async fn run(database_url: &str, args: ImportArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let calendar = match &args.calendar_dir {
        Some(d) => Calendar::from_dir(d)?,
        None => Calendar::embedded(),
    };
    let settings = SlaSettings {
        rework_days: args.rework_days,
        ..SlaSettings::default()
    };
    // Business time stands at each line's `at` while that line is applied.
    let clock = crate::clock::Clock::manual(Utc::now());
    let app = crate::app::build_app_with_clock(database_url, calendar, settings, clock).await?;
    let name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| args.file.display().to_string());
    let mut outcome = Outcome::default();
    let result = import(&app, &name, &bytes, usize::from(args.jobs), &mut outcome).await;
    print!("{}", outcome.report(started.elapsed()));
    result?;
    if !outcome.bad.is_empty() {
        anyhow::bail!(
            "{} bad line(s) in {}: their tickets were not imported (the other tickets were)",
            outcome.bad.len(),
            args.file.display()
        );
    }
    Ok(())
}

/// The id of the ticket with external reference `reference` whose first line is
/// at `first_at`: a UUID v7 with that time and the first 80 bits of the reference's
/// SHA-256 in place of the random bits. None before 1970.
pub fn ticket_id(reference: &str, first_at: DateTime<Utc>) -> Option<Uuid> {
    let millis = u64::try_from(first_at.timestamp_millis()).ok()?;
    let digest = Sha256::digest(reference.as_bytes());
    let mut bits = [0u8; 10];
    bits.copy_from_slice(&digest[..10]);
    Some(uuid::Builder::from_unix_timestamp_millis(millis, &bits).into_uuid())
}

/// A time as the file would write it.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// What every line's Idempotency-Key starts with. The API refuses such keys
/// (`crate::http::extract::command_meta`), so only the import makes them.
pub const LINE_KEY_PREFIX: &str = "import:";

/// The Idempotency-Key of a line: the same line of the same ticket, the same key.
pub fn line_key(reference: &str, text: &str) -> String {
    let mut h = Sha256::new();
    h.update(reference.as_bytes());
    h.update(b"\n");
    h.update(text.as_bytes());
    format!("{LINE_KEY_PREFIX}{}", hex::encode(h.finalize()))
}

/// The problem as the API would state it: status, then the field for a 422 (within
/// the line's body), then the detail.
fn reason(e: &AppError) -> String {
    match e {
        AppError::Invalid { field, message } => format!("422 body.{field}: {message}"),
        other => format!("{}: {other}", other.status()),
    }
}

#[cfg(test)]
mod tests;
