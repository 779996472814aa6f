//! The import proper: workers that take the tickets in file order, decide each in
//! memory and append it line by line, or refuse it whole.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use uuid::Uuid;

use crate::app::App;
use crate::app::commands::{ActionInput, CloseBody, CommandMeta, HandleBody, ParsedCommand};
use crate::app::decide::{Decided, check_new_ticket, decide_action, decide_create};
use crate::domain::{Deadlines, Ticket};
use crate::error::AppError;
use crate::org::Org;

use super::read::{Group, Line, command, read_file};
use super::{BadLine, Outcome, line_key, reason, rfc3339, ticket_id};

/// An error that is not about the line: the import stops.
fn fatal(e: &AppError) -> bool {
    matches!(e, AppError::Unavailable(_) | AppError::Internal(_))
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
        answers: Default::default(),
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
                    ActionInput::Handle(HandleBody { photos, .. }) => {
                        self.app.check_photos(&l.actor, "photos", photos).await?;
                    }
                    ActionInput::Close(CloseBody { duplicate_of, .. }) => {
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
