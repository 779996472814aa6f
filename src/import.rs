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

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use uuid::Uuid;

use crate::app::App;
use crate::app::commands::{ACTIONS, ActionInput, CommandMeta, ParsedCommand, parse_command};
use crate::app::decide::{Decided, check_new_ticket, decide_action, decide_create};
use crate::auth::{Actor, Role};
use crate::domain::{Deadlines, Ticket};
use crate::error::AppError;
use crate::org::Org;
use crate::sla::{Calendar, SlaSettings};

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

/// A line read and checked, its body not parsed yet (that needs every ticket's id).
struct Line {
    no: usize,
    text: String,
    at: DateTime<Utc>,
    actor: Actor,
    action: String,
    body: Value,
}

/// One ticket's lines, in file order.
struct Group {
    reference: String,
    lines: Vec<Line>,
    /// Lines of this ticket that could not be read.
    bad: Vec<BadLine>,
    /// The line number of the ticket's first line and its `at` when that line was
    /// read (the ticket's id comes from it).
    first: (usize, Option<DateTime<Utc>>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    #[allow(dead_code)] // read before, from the Value; kept so the field is allowed
    ticket: String,
    at: String,
    actor: RawActor,
    action: String,
    body: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActor {
    user: String,
    role: String,
    unit: String,
}

/// Reads every line; lines whose ticket reference can be read are grouped by it,
/// in the order of each ticket's first line.
fn read_file(bytes: &[u8], org: &Org, now: DateTime<Utc>) -> (Vec<Group>, Vec<BadLine>, usize) {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut loose = Vec::new();
    let mut read = 0;
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let no = i + 1;
        let raw = if no == 1 {
            raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
        } else {
            raw
        };
        let raw = raw.trim_ascii();
        if raw.is_empty() {
            continue;
        }
        read += 1;
        let loose_bad = |reason: String| BadLine {
            line: no,
            ticket: None,
            reason,
        };
        let Ok(text) = std::str::from_utf8(raw) else {
            loose.push(loose_bad("not UTF-8 text".into()));
            continue;
        };
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                loose.push(loose_bad(format!("not valid JSON: {}", json_error(&e))));
                continue;
            }
        };
        let reference = match value.get("ticket") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => {
                loose.push(loose_bad(
                    "no ticket reference: \"ticket\" must be a non-empty string".into(),
                ));
                continue;
            }
        };
        let g = *index.entry(reference.clone()).or_insert_with(|| {
            groups.push(Group {
                reference: reference.clone(),
                lines: Vec::new(),
                bad: Vec::new(),
                first: (no, None),
            });
            groups.len() - 1
        });
        let group = &mut groups[g];
        match read_line(no, text, value, org, now) {
            Ok(line) => {
                if group.first.0 == no {
                    group.first.1 = Some(line.at);
                }
                group.lines.push(line);
            }
            Err(reason) => group.bad.push(BadLine {
                line: no,
                ticket: Some(reference),
                reason,
            }),
        }
    }
    (groups, loose, read)
}

/// A serde_json error without its "line 1" (every line is line 1 to the parser).
fn json_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.find(" at line ") {
        Some(i) => format!("{} at column {}", &msg[..i], e.column()),
        None => msg,
    }
}

/// Checks the parts of a line around its body: the time, the actor, the action.
fn read_line(
    no: usize,
    text: &str,
    value: Value,
    org: &Org,
    now: DateTime<Utc>,
) -> Result<Line, String> {
    let raw: RawLine = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." {
            inner
        } else {
            format!("{path}: {inner}")
        }
    })?;
    let at = DateTime::parse_from_rfc3339(raw.at.trim())
        .map_err(|e| format!("at: {:?} is not an RFC 3339 time ({e})", raw.at))?
        .with_timezone(&Utc);
    let at = crate::store::truncate_micros(at);
    if at.timestamp_millis() < 0 {
        return Err(format!("at: {} is before 1970", raw.at));
    }
    if at > now {
        return Err(format!("at: {} is in the future", raw.at));
    }
    let role = Role::parse(raw.actor.role.trim()).ok_or_else(|| {
        format!(
            "actor.role: unknown role {:?}; use grid_worker, hotline_agent, dispatcher, handler, analyst or admin",
            raw.actor.role
        )
    })?;
    let user = raw.actor.user.trim();
    if user.is_empty() || user.len() > 100 {
        return Err("actor.user: must be 1 to 100 characters".into());
    }
    // The user lands in every event's metadata: the API's rule for text.
    if let Err(AppError::Invalid { message, .. }) =
        crate::app::text::check_text("actor.user", user, 100)
    {
        return Err(format!("actor.user: {message}"));
    }
    let unit = raw.actor.unit.trim();
    if org.unit(unit).is_none() {
        return Err(format!("actor.unit: no unit {unit:?} in the organisation"));
    }
    let action = raw.action;
    if action != "create" && !ACTIONS.contains(&action.as_str()) {
        return Err(format!(
            "action: unknown action {action:?}; actions are create, {}",
            ACTIONS.join(", ")
        ));
    }
    Ok(Line {
        no,
        text: text.to_string(),
        at,
        actor: Actor {
            token_id: IMPORT_TOKEN.into(),
            user: user.to_string(),
            role,
            unit: unit.to_string(),
        },
        action,
        body: raw.body,
    })
}

/// The problem as the API would state it: status, then the field for a 422 (within
/// the line's body), then the detail.
fn reason(e: &AppError) -> String {
    match e {
        AppError::Invalid { field, message } => format!("422 body.{field}: {message}"),
        other => format!("{}: {other}", other.status()),
    }
}

/// An error that is not about the line: the import stops.
fn fatal(e: &AppError) -> bool {
    matches!(e, AppError::Unavailable(_) | AppError::Internal(_))
}

/// The line's body as the API parses it, with a `related_to` (create) or
/// `duplicate_of` (close) that names a ticket of the file replaced by its id.
fn command(line: &Line, ids: &HashMap<String, Option<Uuid>>) -> Result<ParsedCommand, String> {
    let mut body = line.body.clone();
    let field = match line.action.as_str() {
        "create" => Some("related_to"),
        "close" => Some("duplicate_of"),
        _ => None,
    };
    if let Some(field) = field {
        if let Some(Value::String(s)) = body.get(field) {
            match ids.get(s) {
                Some(Some(id)) => body[field] = Value::String(id.to_string()),
                Some(None) => {
                    return Err(format!(
                        "422 body.{field}: ticket {s:?} of this file cannot be imported (see its first line)"
                    ));
                }
                None if Uuid::parse_str(s).is_ok() => {}
                None => {
                    return Err(format!(
                        "422 body.{field}: {s:?} is neither a ticket of this file nor a ticket id"
                    ));
                }
            }
        }
    }
    // Serializing a Value cannot fail.
    let raw = serde_json::to_vec(&body).expect("a JSON value serializes");
    if raw.len() > crate::app::commands::BODY_LIMIT {
        return Err("413: the body is over the API's 1 MiB limit".into());
    }
    parse_command(&line.action, &raw).map_err(|e| reason(&e))
}

/// Imports the file's tickets into `app`, counting into `out`, `jobs` tickets at a
/// time. An error is a failure of the database, not of a line: the import stops
/// there (what is in, is in; the tickets under way finish first).
///
/// Each worker has an app of its own (its own clock, which each line sets to its
/// `at`) on the shared store, whose group commit batches the workers' appends. A
/// ticket whose lines name an earlier ticket of the file (`related_to`,
/// `duplicate_of`) waits until that one is done, imported or refused, and is then
/// judged as the live API would judge it. A ticket named before its own first line
/// (a forward reference) is judged as a run in file order would judge it: by
/// whether it existed before this run.
pub async fn import(
    app: &App,
    file_name: &str,
    bytes: &[u8],
    jobs: usize,
    out: &mut Outcome,
) -> anyhow::Result<()> {
    let org = app.org.get();
    let (groups, loose, read) = read_file(bytes, &org, Utc::now());
    out.lines_read = read;
    out.bad.extend(loose.iter().cloned());
    let ids: HashMap<String, Option<Uuid>> = groups
        .iter()
        .map(|g| {
            let id = g.first.1.and_then(|at| ticket_id(&g.reference, at));
            (g.reference.clone(), id)
        })
        .collect();
    let (waits_for, forward) = dependencies(&groups, &ids);
    let mut absent = HashSet::new();
    for id in forward {
        if crate::repo::tickets::ticket_view(&app.store.pool(), id)
            .await?
            .is_none()
        {
            absent.insert(id);
        }
    }
    let progress = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(read as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{wide_bar}] {pos}/{len} lines, {rate} lines/s, ETA {eta}",
        )
        .map(|s| {
            s.with_key(
                "rate",
                |p: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}", p.per_sec());
                },
            )
        })
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.inc(loose.len() as u64);
    let n = groups.len();
    let shared = Arc::new(Shared {
        groups: groups.into_iter().map(|g| Mutex::new(Some(g))).collect(),
        waits_for,
        done: (0..n).map(|_| watch::channel(false).0).collect(),
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        ids,
        absent,
        org,
        file_name: file_name.to_string(),
        progress: progress.clone(),
    });
    let workers: Vec<_> = (0..jobs.clamp(1, n.max(1)))
        .map(|_| tokio::spawn(worker(worker_app(app), shared.clone())))
        .collect();
    let mut failed = None;
    for w in workers {
        match w.await {
            Ok((o, result)) => {
                out.absorb(o);
                if let Err(e) = result {
                    failed.get_or_insert(e);
                }
            }
            Err(e) => {
                failed.get_or_insert(anyhow::anyhow!("an import worker failed: {e}"));
            }
        }
    }
    match failed {
        Some(e) => {
            progress.abandon();
            Err(e)
        }
        None => {
            progress.finish_and_clear();
            Ok(())
        }
    }
}

/// What the workers of one import share.
struct Shared {
    /// The tickets in the order of their first line, each taken by one worker.
    groups: Vec<Mutex<Option<Group>>>,
    /// For each ticket, the earlier tickets it names.
    waits_for: Vec<Vec<usize>>,
    /// For each ticket, true once it is done (imported, refused or given up).
    done: Vec<watch::Sender<bool>>,
    /// The next ticket to take.
    next: AtomicUsize,
    /// Set by a worker that met a database failure: no new ticket is taken.
    stop: AtomicBool,
    ids: HashMap<String, Option<Uuid>>,
    /// Tickets of the file named before their first line that did not exist
    /// before this run.
    absent: HashSet<Uuid>,
    org: Arc<Org>,
    file_name: String,
    progress: ProgressBar,
}

/// Marks a ticket done when its worker is through with it, however it ends.
struct MarkDone<'a>(&'a watch::Sender<bool>);

impl Drop for MarkDone<'_> {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

/// For each ticket, the earlier tickets of the file its lines name (`related_to`
/// of a create, `duplicate_of` of a close); and the ids of tickets named by a line
/// before their own first line.
fn dependencies(
    groups: &[Group],
    ids: &HashMap<String, Option<Uuid>>,
) -> (Vec<Vec<usize>>, HashSet<Uuid>) {
    let index: HashMap<&str, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.reference.as_str(), i))
        .collect();
    let mut forward = HashSet::new();
    let waits = groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let mut w: Vec<usize> = Vec::new();
            for l in &g.lines {
                let field = match l.action.as_str() {
                    "create" => "related_to",
                    "close" => "duplicate_of",
                    _ => continue,
                };
                let Some(Value::String(r)) = l.body.get(field) else {
                    continue;
                };
                match index.get(r.as_str()) {
                    Some(&j) if j < i => w.push(j),
                    Some(&j) if j > i => {
                        if let Some(Some(id)) = ids.get(r) {
                            forward.insert(*id);
                        }
                    }
                    _ => {}
                }
            }
            w.sort_unstable();
            w.dedup();
            w
        })
        .collect();
    (waits, forward)
}

/// An app for one worker: the same store, organisation, SLA policy and metrics as
/// `app`, with a clock and a cache of its own.
fn worker_app(app: &App) -> App {
    App {
        store: app.store.clone(),
        serials: app.serials.clone(),
        org: app.org.clone(),
        sla: app.sla.clone(),
        metrics: app.metrics.clone(),
        tokens: Default::default(),
        clock: crate::clock::Clock::manual(app.now()),
        recent: Default::default(),
        projections: Default::default(),
        attachments: app.attachments.clone(),
        integrity: app.integrity.clone(),
    }
}

/// Takes tickets in file order until there are none left (or the import stops),
/// each once the tickets it names are done.
async fn worker(app: App, shared: Arc<Shared>) -> (Outcome, anyhow::Result<()>) {
    let mut out = Outcome::default();
    let deadlines = app.sla.with_org(shared.org.clone());
    let mut importer = Importer {
        app: &app,
        org: &shared.org,
        deadlines: &deadlines,
        ids: &shared.ids,
        absent: &shared.absent,
        file_name: &shared.file_name,
        out: &mut out,
    };
    let result = loop {
        if shared.stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        let (Some(slot), Some(done)) = (shared.groups.get(i), shared.done.get(i)) else {
            break Ok(());
        };
        let _done = MarkDone(done);
        for j in &shared.waits_for[i] {
            // Earlier tickets were taken before this one, so each is under way.
            let _ = shared.done[*j].subscribe().wait_for(|d| *d).await;
        }
        let Some(group) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            continue;
        };
        let n = (group.lines.len() + group.bad.len()) as u64;
        let result = importer.ticket(group).await;
        shared.progress.inc(n);
        if let Err(e) = result {
            shared.stop.store(true, Ordering::Relaxed);
            break Err(e);
        }
    };
    (out, result)
}

struct Importer<'a> {
    app: &'a App,
    org: &'a Org,
    deadlines: &'a (dyn Deadlines + Sync),
    ids: &'a HashMap<String, Option<Uuid>>,
    absent: &'a HashSet<Uuid>,
    file_name: &'a str,
    out: &'a mut Outcome,
}

impl Importer<'_> {
    fn refuse(&mut self, reference: &str, problems: Vec<(usize, String)>) {
        self.out.tickets_refused += 1;
        self.out
            .bad
            .extend(problems.into_iter().map(|(line, reason)| BadLine {
                line,
                ticket: Some(reference.to_string()),
                reason,
            }));
    }

    /// One ticket: all its new lines, or none.
    async fn ticket(&mut self, group: Group) -> anyhow::Result<()> {
        let reference = group.reference;
        if !group.bad.is_empty() {
            self.out.tickets_refused += 1;
            self.out.bad.extend(group.bad);
            return Ok(());
        }
        let lines = group.lines;
        let mut problems = Vec::new();
        for w in lines.windows(2) {
            if w[1].at < w[0].at {
                problems.push((
                    w[1].no,
                    format!(
                        "at {} is before the at of line {} ({}): a ticket's lines run forward in time",
                        rfc3339(w[1].at),
                        w[0].no,
                        rfc3339(w[0].at)
                    ),
                ));
            }
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for l in &lines {
            if let Some(first) = seen.insert(l.text.as_str(), l.no) {
                problems.push((
                    l.no,
                    format!(
                        "the same line as line {first}: an exact repeat would be taken for a retry of it"
                    ),
                ));
            }
        }
        let mut commands = Vec::with_capacity(lines.len());
        for l in &lines {
            match command(l, self.ids) {
                Ok(c) => commands.push(c),
                Err(r) => problems.push((l.no, r)),
            }
        }
        let Some(id) = self.ids.get(&reference).copied().flatten() else {
            // Unreachable in practice: the first line was read, so its time is known.
            problems.push((
                group.first.0,
                "no ticket id can be made from this line".into(),
            ));
            self.refuse(&reference, problems);
            return Ok(());
        };
        if !problems.is_empty() {
            self.refuse(&reference, problems);
            return Ok(());
        }

        // What an earlier run stored: the ticket, and the keys of the lines in its stream.
        let existing = self.app.load(id).await.map_err(anyhow::Error::from)?;
        let done: HashSet<String> = match &existing {
            None => HashSet::new(),
            Some(_) => self
                .app
                .store
                .read_stream(id)
                .await?
                .iter()
                .filter_map(|e| {
                    e.metadata
                        .get("idempotency_key")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .collect(),
        };
        let keys: Vec<String> = lines
            .iter()
            .map(|l| line_key(&reference, &l.text))
            .collect();
        let Some(first_new) = keys.iter().position(|k| !done.contains(k)) else {
            self.out.tickets_already += 1;
            self.out.lines_already += lines.len();
            return Ok(());
        };
        if let Some(later) = (first_new..lines.len()).find(|&i| done.contains(&keys[i])) {
            self.refuse(
                &reference,
                vec![(
                    lines[first_new].no,
                    format!(
                        "a new line before line {}, which was imported before: new lines can only extend a ticket's history at its end",
                        lines[later].no
                    ),
                )],
            );
            return Ok(());
        }
        if let Some(t) = &existing {
            let l = &lines[first_new];
            if l.at < t.updated_at {
                self.refuse(
                    &reference,
                    vec![(
                        l.no,
                        format!(
                            "at {} is before the ticket's last recorded change ({}): new lines can only extend its history",
                            rfc3339(l.at),
                            rfc3339(t.updated_at)
                        ),
                    )],
                );
                return Ok(());
            }
        }

        // Decide every new line in memory first: a bad one refuses the ticket whole.
        let mut state: Option<Ticket> = existing;
        let mut counts = Vec::with_capacity(lines.len() - first_new);
        for (l, cmd) in lines[first_new..].iter().zip(&commands[first_new..]) {
            match self.decide(&reference, id, state.as_ref(), l, cmd).await {
                Ok(d) => {
                    counts.push(d.events.len());
                    state = Some(d.next);
                }
                Err(e) if fatal(&e) => {
                    return Err(anyhow::Error::from(e).context(format!("line {}", l.no)));
                }
                Err(e) => {
                    self.refuse(&reference, vec![(l.no, reason(&e))]);
                    return Ok(());
                }
            }
        }

        // Append them, line by line, through the live command path.
        self.out.lines_already += first_new;
        for ((l, cmd), (key, n)) in lines[first_new..]
            .iter()
            .zip(commands.into_iter().skip(first_new))
            .zip(keys[first_new..].iter().zip(counts))
        {
            self.app.clock.set(l.at);
            let meta = CommandMeta {
                idempotency_key: key.clone(),
                request_hash: hex::encode(Sha256::digest(l.text.as_bytes())),
                if_match: None,
                // With a space: no request over HTTP can carry such an id
                // (`crate::http::extract::is_valid_request_id`).
                request_id: format!("import {}:{}", self.file_name, l.no),
            };
            let result = match cmd {
                ParsedCommand::Create(mut input) => {
                    input.id = Some(id);
                    self.app.create(&l.actor, input, meta).await
                }
                ParsedCommand::Act(input) => self.app.act(&l.actor, id, input, meta).await,
            };
            match result {
                Ok(reply) => {
                    self.out.lines_applied += 1;
                    if !reply.replayed {
                        self.out.events_appended += n;
                    }
                }
                Err(e) if fatal(&e) => {
                    return Err(anyhow::Error::from(e).context(format!("line {}", l.no)));
                }
                Err(e) => {
                    self.out.tickets_partial += 1;
                    self.out.bad.push(BadLine {
                        line: l.no,
                        ticket: Some(reference.clone()),
                        reason: format!(
                            "{} (the ticket changed while it was imported: its lines before this one are in; run the import again)",
                            reason(&e)
                        ),
                    });
                    return Ok(());
                }
            }
        }
        self.out.tickets_imported += 1;
        Ok(())
    }

    /// One line decided as the live command would be, at the line's `at`, on the
    /// state the lines before it led to. Nothing is written.
    async fn decide(
        &self,
        reference: &str,
        id: Uuid,
        state: Option<&Ticket>,
        l: &Line,
        cmd: &ParsedCommand,
    ) -> Result<Decided, AppError> {
        match (cmd, state) {
            (ParsedCommand::Create(_), Some(_)) => Err(AppError::Conflict(format!(
                "ticket {reference} exists already (imported before from another create line)"
            ))),
            (ParsedCommand::Create(input), None) => {
                check_new_ticket(self.org, &l.actor, input)?;
                if let Some(rel) = input.related_to.filter(|r| self.absent.contains(r)) {
                    // What check_linked says when the ticket is not there (yet).
                    return Err(AppError::NotFound(format!(
                        "related_to names no ticket {rel} that this token may read"
                    )));
                }
                self.app
                    .check_linked(&l.actor, "related_to", input.related_to)
                    .await?;
                self.app
                    .check_photos(&l.actor, "photos", &input.photos)
                    .await?;
                // The number is drawn at append; until then the reference stands in.
                let reporter_ref = input.reporter.as_ref().map(|_| Uuid::nil());
                decide_create(
                    self.org,
                    self.deadlines,
                    &l.actor,
                    input.clone(),
                    (id, reference.to_string()),
                    reporter_ref,
                    l.at,
                )
            }
            (ParsedCommand::Act(_), None) => Err(AppError::NotFound(format!(
                "no ticket {reference}: a ticket's first line is its create"
            ))),
            (ParsedCommand::Act(input), Some(t)) => {
                let d = decide_action(
                    self.org,
                    self.deadlines,
                    &l.actor,
                    t,
                    input.clone(),
                    l.at,
                    None,
                )?;
                match input {
                    ActionInput::Handle { photos, .. } => {
                        self.app.check_photos(&l.actor, "photos", photos).await?;
                    }
                    ActionInput::Close { duplicate_of, .. } => {
                        self.app
                            .check_linked(&l.actor, "duplicate_of", *duplicate_of)
                            .await?;
                    }
                    _ => {}
                }
                Ok(d)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_ticket_id_is_a_v7_uuid_fixed_by_reference_and_first_time() {
        let at = t("2026-09-30T03:00:00Z");
        let a = ticket_id("GD-1", at).expect("id");
        assert_eq!(a, ticket_id("GD-1", at).expect("id"), "deterministic");
        assert_eq!(a.get_version_num(), 7);
        let (secs, _) = a.get_timestamp().expect("v7 has a time").to_unix();
        assert_eq!(secs as i64, at.timestamp());
        assert_ne!(a, ticket_id("GD-2", at).expect("id"));
        assert_ne!(a, ticket_id("GD-1", t("2026-09-30T03:00:01Z")).expect("id"));
        assert_eq!(ticket_id("GD-1", t("1969-12-31T23:59:59Z")), None);
    }

    #[test]
    fn lines_are_grouped_by_ticket_in_order_and_blank_lines_are_not_counted() {
        let org = crate::org::model::demo();
        let line = |r: &str, at: &str| {
            format!(
                r#"{{"ticket":"{r}","at":"{at}","actor":{{"user":"u","role":"dispatcher","unit":"etdz"}},"action":"comment","body":{{"text":"x"}}}}"#
            )
        };
        let text = format!(
            "\u{feff}{}\r\n\n{}\n{}\n[1,2]\n",
            line("B", "2026-01-05T01:00:00Z"),
            line("A", "2026-01-05T02:00:00Z"),
            line("B", "2026-01-05T03:00:00Z"),
        );
        let (groups, loose, read) = read_file(text.as_bytes(), &org, Utc::now());
        assert_eq!(read, 4);
        let refs: Vec<(&str, Vec<usize>)> = groups
            .iter()
            .map(|g| (g.reference.as_str(), g.lines.iter().map(|l| l.no).collect()))
            .collect();
        assert_eq!(refs, [("B", vec![1, 4]), ("A", vec![3])]);
        assert_eq!(groups[0].first, (1, Some(t("2026-01-05T01:00:00Z"))));
        assert_eq!(loose.len(), 1);
        assert_eq!(loose[0].line, 5);
        assert!(
            loose[0].reason.contains("no ticket reference"),
            "{:?}",
            loose[0]
        );
    }
}
