//! Commands end to end: replay an idempotent retry, load the ticket, check who may
//! act, let the aggregate decide, and append the events together with the idempotency
//! record and the ticket view in one transaction.
//!
//! This module holds the service's state ([`App`]) and that pipeline (load, decide,
//! commit, retry). Around it: [`commands`] (the command inputs and the bodies they
//! are parsed from), [`text`] (what a text field may hold), [`decide`] (policy,
//! organisation and aggregate: the pure decision) and `queries` (ticket reads). The
//! ticket's JSON is `crate::views::ticket`.

pub mod answers;
pub mod appraisal;
pub mod commands;
pub mod decide;
mod queries;
pub mod similar;
pub mod text;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use chrono_tz::Asia::Shanghai;
use serde_json::Value;
use uuid::Uuid;

use self::commands::{ActionInput, CloseBody, CommandMeta, HandleBody, NewTicket};
use self::decide::{Decided, check_new_ticket, decide_action, decide_create, new_events, view_row};
use crate::auth::Actor;
use crate::auth::policy;
use crate::domain::*;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::org::{self, OrgHandle};
use crate::repo::contacts::Contact;
use crate::repo::tickets::{NUMBER_TAKEN as NUMBER_REFUSED, Serials};
use crate::sla::{Calendar, SlaPolicy, SlaSettings};
use crate::store::{self, AppendRequest, Store, StoreError, ViewHandler};
use crate::views::ticket::{render_string, reporter_json};

/// How often a command without If-Match is re-decided after losing a race. Each
/// round lets at least one contender through, so this bounds the contenders on one
/// ticket at one moment that all succeed; beyond it the caller gets a 409 to retry.
const MAX_ATTEMPTS: u32 = 16;

/// The answer when a new ticket's number was taken meanwhile by another process.
const NUMBER_TAKEN: &str =
    "the ticket number was taken by another instance; retry with the same Idempotency-Key";

pub struct App {
    pub store: Store,
    /// The ticket serial numbers this process hands out (shared by its import
    /// workers).
    pub serials: Arc<Serials>,
    pub org: OrgHandle,
    pub sla: SlaPolicy,
    pub metrics: Metrics,
    pub tokens: crate::auth::TokenCache,
    pub clock: crate::clock::Clock,
    /// Tickets this process wrote last, so the next command on them needs no read.
    pub recent: RecentTickets,
    /// The answers this process gave most recently, for retries (`answers`).
    pub answers: answers::RecentAnswers,
    /// How this process's projection runners are doing (for /readyz).
    pub projections: Arc<crate::projections::Statuses>,
    /// Where photos are stored and how large one may be.
    pub attachments: crate::attachments::Settings,
    /// What the latest verification of the log found: tampered tickets are frozen.
    pub integrity: Arc<crate::verify::Integrity>,
}

/// The state (and stream head) of the tickets this process appended to most
/// recently. A copy may be stale when another instance (or the SLA watcher) has
/// appended since: a command decided on it then fails the store's head check,
/// nothing is written, and the command is decided again on a fresh read. So the
/// cache saves reads without ever letting a stale decision commit.
pub struct RecentTickets(std::sync::Mutex<lru::LruCache<Uuid, (Ticket, String)>>);

/// How many tickets [`RecentTickets`] keeps: the tickets moving now, about a month
/// of a district's (a seeded year is some 125,000 tickets, 340 a day; a ticket's view
/// is 1.17 kB of JSON on average). At 50,000, as before, a long-running instance grew
/// with every ticket it wrote, for months. A miss costs one read of the view row.
pub const RECENT_TICKETS: usize = 10_000;

impl Default for RecentTickets {
    fn default() -> Self {
        // A non-zero constant: the conversion cannot fail.
        let cap = std::num::NonZeroUsize::new(RECENT_TICKETS).expect("non-zero capacity");
        RecentTickets(std::sync::Mutex::new(lru::LruCache::new(cap)))
    }
}

impl RecentTickets {
    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<Uuid, (Ticket, String)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, id: Uuid) -> Option<(Ticket, String)> {
        self.lock().get(&id).cloned()
    }

    pub fn put(&self, t: Ticket, head_hash: String) {
        self.lock().put(t.id, (t, head_hash));
    }

    pub fn forget(&self, id: Uuid) {
        self.lock().pop(&id);
    }
}

pub type SharedApp = Arc<App>;

/// A command's answer: the ticket JSON, fresh or replayed.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub version: i64,
    pub replayed: bool,
}

impl App {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The handles the projections and their runners take (`projections::all`,
    /// `projections::spawn`): the log, the organisation, the calendar, the metrics
    /// and this process's projection statuses.
    pub fn projection_handles(&self) -> crate::projections::Handles {
        crate::projections::Handles {
            store: self.store.clone(),
            org: self.org.clone(),
            calendar: self.sla.calendar.clone(),
            metrics: self.metrics.clone(),
            statuses: self.projections.clone(),
        }
    }

    /// The first answer to an earlier request with this key, if any: the stored body
    /// (the appraisal's answers, and the records written before migration 0016), or
    /// the ticket rendered again from its stream at the version the command left
    /// ([`App::render_at`]).
    async fn replay(&self, actor: &Actor, meta: &CommandMeta) -> Result<Option<Reply>, AppError> {
        match self
            .store
            .find_idempotency(&actor.user, &meta.idempotency_key)
            .await?
        {
            None => Ok(None),
            Some(rec) if rec.request_hash == meta.request_hash => {
                let (body, version) = match (rec.body, rec.version) {
                    (Some(body), Some(version)) => (body, version),
                    (Some(body), None) => {
                        let version = serde_json::from_str::<Value>(&body)
                            .ok()
                            .and_then(|v| v.get("version").and_then(Value::as_i64))
                            .unwrap_or(0);
                        (body, version)
                    }
                    (None, Some(version)) => {
                        let body = self
                            .render_at(actor, rec.stream_id, version, rec.status)
                            .await?;
                        (body, version)
                    }
                    // The table's CHECK refuses such a row.
                    (None, None) => {
                        return Err(AppError::Internal(anyhow::anyhow!(
                            "the stored answer to key {:?} has neither a body nor a version",
                            meta.idempotency_key
                        )));
                    }
                };
                let reply = Reply {
                    status: rec.status,
                    body,
                    version,
                    replayed: true,
                };
                self.metrics.replays.with_label_values(&["log"]).inc();
                self.answers.keep(
                    &actor.user,
                    &meta.idempotency_key,
                    &meta.request_hash,
                    &reply,
                    self.now(),
                );
                Ok(Some(reply))
            }
            Some(_) => Err(AppError::invalid(
                "Idempotency-Key",
                "this key was already used for a different request; use a new key for a new command",
            )),
        }
    }

    /// A ticket command's first answer, rendered again for a retry from what the log
    /// holds: the ticket folded from its stream up to `version` (what the command
    /// left; later commands and SLA warnings do not count), as of the command's own
    /// time (its last event's `occurred_at`, which is the `now` its first answer was
    /// rendered with), by [`render_string`] as the command rendered it. A creation's
    /// answer (201) carries the reporter's contact as this actor may see it, read
    /// from the contacts as the first answer had it (null once purged); an action's
    /// carries none.
    async fn render_at(
        &self,
        actor: &Actor,
        id: Uuid,
        version: i64,
        status: u16,
    ) -> Result<String, AppError> {
        let mut events = self.store.read_stream(id).await?;
        events.retain(|e| e.version <= version);
        let Some(at) = events
            .last()
            .filter(|e| e.version == version)
            .map(|e| e.occurred_at)
        else {
            return Err(AppError::Internal(anyhow::anyhow!(
                "the stored answer names version {version} of ticket {id}, and its log holds {} \
                 event(s) up to it: the log was cut (run `yiwang verify`)",
                events.len()
            )));
        };
        let decoded = events
            .iter()
            .map(|e| {
                TicketEvent::from_parts(&e.event_type, e.schema_version, &e.data).map_err(|err| {
                    AppError::Internal(anyhow::anyhow!("event {} unreadable: {err}", e.position))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ticket = Ticket::fold(id, decoded.iter().zip(events.iter().map(|e| e.occurred_at)))
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("stream {id} folds to no ticket")))?;
        let reporter = match ticket.reporter_ref {
            Some(r) if status == 201 => crate::repo::contacts::contact(&self.store.pool(), r)
                .await?
                .map(|c| reporter_json(&c, policy::sees_contact(&self.org.get(), actor, &ticket))),
            _ => None,
        };
        Ok(render_string(&ticket, at, reporter))
    }

    /// A failed command may be the retry of one that succeeded: then the first
    /// answer is the answer. Looking the key up only on failure keeps the happy
    /// path one read shorter; a retry that decides again is caught by the key's
    /// unique index at append (see `commit`).
    async fn replay_or(
        &self,
        actor: &Actor,
        meta: &CommandMeta,
        err: AppError,
    ) -> Result<Reply, AppError> {
        if matches!(err, AppError::Unavailable(_) | AppError::Internal(_)) {
            return Err(err);
        }
        match self.replay(actor, meta).await {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(err),
            // The key could not be looked up (the database went away between the
            // decision and the lookup): the refusal may be the retry of a command
            // that succeeded, so it must not be answered; the 503 says retry.
            // Found by the fault suite's outage scenario.
            Err(e) => Err(e),
        }
    }

    /// The answer this process gave to the same request under the same key a
    /// moment ago, if it still has it (`answers`): a retry answered with no read.
    fn kept_answer(&self, actor: &Actor, meta: &CommandMeta) -> Option<Reply> {
        let reply = self.answers.get(
            &actor.user,
            &meta.idempotency_key,
            &meta.request_hash,
            self.now(),
        )?;
        self.metrics.replays.with_label_values(&["memory"]).inc();
        Some(reply)
    }

    pub async fn create(
        &self,
        actor: &Actor,
        input: NewTicket,
        meta: CommandMeta,
    ) -> Result<Reply, AppError> {
        if let Some(r) = self.kept_answer(actor, &meta) {
            return Ok(r);
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.create_inner(actor, input.clone(), &meta).await {
                Ok(r) => return Ok(r),
                // Another instance took the ticket number (SQLite with several
                // processes): `commit` has moved the serial on; decide again.
                Err(AppError::Conflict(m)) if m == NUMBER_TAKEN && attempt < 5 => continue,
                Err(e) => return self.replay_or(actor, &meta, e).await,
            }
        }
    }

    pub async fn act(
        &self,
        actor: &Actor,
        id: Uuid,
        input: ActionInput,
        meta: CommandMeta,
    ) -> Result<Reply, AppError> {
        if let Some(r) = self.kept_answer(actor, &meta) {
            return Ok(r);
        }
        self.check_frozen(actor, id).await?;
        match self.act_inner(actor, id, input, &meta).await {
            Ok(r) => Ok(r),
            Err(e) => self.replay_or(actor, &meta, e).await,
        }
    }

    /// Every photo a command names must be an attachment its user uploaded (422
    /// naming the field otherwise). An import actor (`token_id` "import": an operator
    /// with the database in hand) only needs the attachment to exist.
    pub async fn check_photos(
        &self,
        actor: &Actor,
        field: &str,
        photos: &[String],
    ) -> Result<(), AppError> {
        crate::attachments::check_hashes(field, photos)?;
        let pool = self.store.pool();
        let owner = (actor.token_id != crate::import::IMPORT_TOKEN).then_some(actor.user.as_str());
        for (i, hash) in photos.iter().enumerate() {
            if crate::attachments::find(&pool, hash, owner)
                .await?
                .is_none()
            {
                return Err(AppError::invalid(
                    format!("{field}[{i}]"),
                    match owner {
                        Some(user) => format!(
                            "no attachment {hash} uploaded by {user}: upload the photo with POST /api/v1/attachments first"
                        ),
                        None => format!("no attachment {hash}: upload the photo first"),
                    },
                ));
            }
        }
        Ok(())
    }

    async fn create_inner(
        &self,
        actor: &Actor,
        mut input: NewTicket,
        meta: &CommandMeta,
    ) -> Result<Reply, AppError> {
        let org = self.org.get();
        check_new_ticket(&org, actor, &input)?;
        self.check_linked(actor, "related_to", input.related_to)
            .await?;
        self.check_photos(actor, "photos", &input.photos).await?;
        let now = self.now();
        let id = input.id.unwrap_or_else(Uuid::now_v7);
        let serial = self.serials.next().await?;
        let number = format!(
            "{}-{serial:06}",
            now.with_timezone(&Shanghai).format("%Y%m%d")
        );
        let contact = input.reporter.take().map(|(name, phone)| Contact {
            id: Uuid::now_v7(),
            name,
            phone,
        });
        let Decided {
            events,
            next: ticket,
        } = decide_create(
            &org,
            &self.sla.with_org(org.clone()),
            actor,
            input,
            (id, number),
            contact.as_ref().map(|c| c.id),
            now,
        )?;
        let body = render_string(
            &ticket,
            now,
            contact
                .as_ref()
                .map(|c| reporter_json(c, policy::sees_contact(&org, actor, &ticket))),
        );
        let new_stream = (0, Some(crate::store::hash::GENESIS.to_string()));
        self.commit(
            actor, meta, id, new_stream, &events, &ticket, now, 201, body, contact,
        )
        .await
    }

    async fn act_inner(
        &self,
        actor: &Actor,
        id: Uuid,
        input: ActionInput,
        meta: &CommandMeta,
    ) -> Result<Reply, AppError> {
        let org = self.org.get();
        let deadlines = self.sla.with_org(org.clone());
        // Checked once, after the first decision: who may act and in which state
        // come first (a 403 or 409 before a 422 about a photo).
        let mut photos_checked = false;
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                // Lost a race: the cached state is stale. Jitter, so the losers do
                // not collide again in lockstep, and read the ticket afresh.
                self.recent.forget(id);
                let ms = rand::random_range(0..=2 * u64::from(attempt));
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            let (mut ticket, mut head_hash, mut cached) = self.load_for_command(id).await?;
            if cached
                && meta
                    .if_match
                    .as_ref()
                    .is_some_and(|m| !m.matches(ticket.version))
            {
                // Judge a precondition on the stored state, never on a cached copy.
                self.recent.forget(id);
                (ticket, head_hash, cached) = self.load_for_command(id).await?;
            }
            let now = self.now();
            let decide = |t: &Ticket| {
                decide_action(
                    &org,
                    &deadlines,
                    actor,
                    t,
                    input.clone(),
                    now,
                    meta.if_match.as_ref(),
                )
            };
            let Decided { events, next } = match decide(&ticket) {
                Ok(d) => d,
                // A refusal is judged on the stored state, never on a cached copy:
                // another instance may have moved the ticket on since this process
                // last wrote it (a stale copy that allows a command is caught by
                // the append's version check instead).
                Err(_) if cached => {
                    self.recent.forget(id);
                    (ticket, head_hash, _) = self.load_for_command(id).await?;
                    decide(&ticket)?
                }
                Err(e) => return Err(e),
            };
            if !photos_checked {
                match &input {
                    ActionInput::Handle(HandleBody { photos, .. }) => {
                        self.check_photos(actor, "photos", photos).await?;
                    }
                    ActionInput::Close(CloseBody { duplicate_of, .. }) => {
                        self.check_linked(actor, "duplicate_of", *duplicate_of)
                            .await?;
                    }
                    _ => {}
                }
                photos_checked = true;
            }
            let body = render_string(&next, now, None);
            match self
                .commit(
                    actor,
                    meta,
                    id,
                    (ticket.version, head_hash),
                    &events,
                    &next,
                    now,
                    200,
                    body,
                    None,
                )
                .await
            {
                Err(AppError::PreconditionFailed(m)) if meta.if_match.is_none() => {
                    tracing::debug!(%id, reason = %m, "lost a race; deciding again");
                    continue;
                }
                other => return other,
            }
        }
        // Every attempt lost. A stream whose log runs past its ticket view (an event
        // put in behind the service's back: view and events are written together)
        // refuses every command so, for ever: say what it is. (The stream is read
        // first: a view read after it is never behind it, however many commands
        // land in between.)
        let head = self.store.read_stream(id).await?.last().map(|e| e.version);
        if let Some(row) = crate::repo::tickets::ticket_view(&self.store.pool(), id).await?
            && head.is_some_and(|v| v > row.version)
        {
            return Err(AppError::Tampered(format!(
                "ticket {id} cannot take commands: its event log runs past its ticket view \
                     (version {} in the log, {} in the view), which only an edit outside the \
                     service does. An operator: run `yiwang verify` for the findings and restore \
                     the ticket's records from a backup",
                head.unwrap_or(0),
                row.version
            )));
        }
        Err(AppError::Conflict(
            "the ticket is changing too fast to apply this command; retry with the same Idempotency-Key".into(),
        ))
    }

    #[allow(clippy::too_many_arguments)]
    async fn commit(
        &self,
        actor: &Actor,
        meta: &CommandMeta,
        id: Uuid,
        (expected_version, prev_hash): (i64, Option<String>),
        events: &[TicketEvent],
        ticket: &Ticket,
        now: DateTime<Utc>,
        status: u16,
        body: String,
        contact: Option<Contact>,
    ) -> Result<Reply, AppError> {
        let new_events = new_events(events, now);
        // The contact first, then the view: the order the store writes them in.
        let mut views: Vec<Arc<dyn ViewHandler>> = Vec::with_capacity(2);
        if let Some(c) = contact {
            views.push(Arc::new(c));
        }
        views.push(Arc::new(view_row(ticket)));
        // A new ticket's text goes into the search index once, with its first events.
        if expected_version == 0 {
            views.push(Arc::new(crate::repo::tickets::search::SearchRow::of(
                ticket,
            )));
        }
        let req = AppendRequest {
            stream_id: id,
            expected_version,
            prev_hash,
            events: new_events,
            metadata: meta.metadata(actor),
            // No body: a retry renders the answer again from the stream at this
            // version (`replay`), so the record stays small.
            idempotency: Some(meta.idempotency_record(actor, status, None, (id, ticket.version))),
            views,
        };
        match self.append_ticket(req, ticket, events).await {
            Ok(_) => {
                let reply = Reply {
                    status,
                    body,
                    version: ticket.version,
                    replayed: false,
                };
                self.answers.keep(
                    &actor.user,
                    &meta.idempotency_key,
                    &meta.request_hash,
                    &reply,
                    now,
                );
                Ok(reply)
            }
            // A concurrent request with the same key won: answer with its result.
            Err(StoreError::Refused(why)) if why == NUMBER_REFUSED => {
                // Another process on this SQLite file took the number: continue
                // after the highest one in the log (`create` decides again).
                self.serials.resync().await;
                Err(AppError::Conflict(NUMBER_TAKEN.into()))
            }
            Err(StoreError::DuplicateKey) => self.replay(actor, meta).await?.ok_or_else(|| {
                AppError::Conflict("a request with this Idempotency-Key is in flight; retry".into())
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Appends a ticket's events (the request carries its view row), timing the
    /// append, counting the events, and keeping the new state as this process's
    /// copy for the ticket's next command. Commands and the SLA watcher both write
    /// through here.
    pub async fn append_ticket(
        &self,
        req: AppendRequest,
        next: &Ticket,
        events: &[TicketEvent],
    ) -> Result<crate::store::Appended, StoreError> {
        if self.integrity.is_tampered(req.stream_id) {
            return Err(StoreError::Tampered(req.stream_id));
        }
        let started = Instant::now();
        let result = self.store.append(req).await;
        self.metrics
            .append_seconds
            .with_label_values(&[self.store.engine()])
            .observe(started.elapsed().as_secs_f64());
        if let Ok(appended) = &result {
            self.recent.put(next.clone(), appended.head_hash.clone());
            for e in events {
                self.metrics
                    .events_appended
                    .with_label_values(&[e.type_name()])
                    .inc();
            }
        }
        result
    }
}

pub async fn build_app(
    url: &str,
    calendar: Calendar,
    settings: SlaSettings,
) -> anyhow::Result<Arc<App>> {
    build_app_with_clock(url, calendar, settings, crate::clock::Clock::system()).await
}

/// The application with a chosen clock (tests stand it at a chosen instant), and
/// attachments where [`crate::attachments::Settings::for_database`] puts them.
pub async fn build_app_with_clock(
    url: &str,
    calendar: Calendar,
    settings: SlaSettings,
    clock: crate::clock::Clock,
) -> anyhow::Result<Arc<App>> {
    let attachments = crate::attachments::Settings::for_database(url);
    build_app_with(url, calendar, settings, clock, attachments).await
}

/// The application with every setting chosen.
pub async fn build_app_with(
    url: &str,
    calendar: Calendar,
    settings: SlaSettings,
    clock: crate::clock::Clock,
    attachments: crate::attachments::Settings,
) -> anyhow::Result<Arc<App>> {
    let store = store::open(url, true).await?;
    let org = org::current_or_demo(&store.pool()).await?;
    let serials = Arc::new(Serials::open(&store.pool()).await);
    // Tickets without a search entry or a due_at (a database from before migration
    // 0012, a restore): indexed before the service answers.
    let indexed = crate::repo::tickets::search::backfill(&store.pool()).await?;
    if indexed > 0 {
        tracing::info!(tickets = indexed, "indexed tickets for search");
    }
    Ok(Arc::new(App {
        store,
        serials,
        org: OrgHandle::new(org),
        sla: SlaPolicy::new(calendar, settings),
        metrics: Metrics::new(),
        tokens: Default::default(),
        clock,
        recent: Default::default(),
        answers: Default::default(),
        projections: Default::default(),
        attachments,
        integrity: Default::default(),
    }))
}
