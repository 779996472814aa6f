//! Commands end to end: replay an idempotent retry, load the ticket, check who may
//! act, let the aggregate decide, and append the events together with the idempotency
//! record and the ticket view in one transaction.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use chrono_tz::Asia::Shanghai;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::policy::{self, Action};
use crate::auth::{Actor, Role};
use crate::domain::*;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::org::{Org, OrgHandle};
use crate::sla::SlaPolicy;
use crate::store::{
    AppendRequest, Contact, IdempotencyRecord, Metadata, NewEvent, Store, StoreError, TicketQuery,
    TicketViewRow,
};

/// How often a command without If-Match is re-decided after losing a race. Each
/// round lets at least one contender through, so this bounds the contenders on one
/// ticket at one moment that all succeed; beyond it the caller gets a 409 to retry.
const MAX_ATTEMPTS: u32 = 16;

/// The answer when a new ticket's number was taken meanwhile by another process.
const NUMBER_TAKEN: &str =
    "the ticket number was taken by another instance; retry with the same Idempotency-Key";

pub struct App {
    pub store: Store,
    pub org: OrgHandle,
    pub sla: SlaPolicy,
    pub metrics: Metrics,
    pub tokens: crate::auth::TokenCache,
    pub clock: crate::clock::Clock,
    /// Tickets this process wrote last, so the next command on them needs no read.
    pub recent: RecentTickets,
    /// How this process's projection runners are doing (for /readyz).
    pub projections: crate::projections::Statuses,
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

impl Default for RecentTickets {
    fn default() -> Self {
        // A non-zero literal: the conversion cannot fail.
        let cap = std::num::NonZeroUsize::new(50_000).expect("non-zero capacity");
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

/// A new ticket as the API takes it, already parsed.
#[derive(Clone, Debug)]
pub struct NewTicket {
    /// The ticket's id. None (the API) draws a fresh UUID v7; the import of legacy
    /// history names one derived from the ticket's external reference, so that a
    /// second run of the same file finds the same ticket.
    pub id: Option<Uuid>,
    pub source: Source,
    pub category: String,
    pub title: String,
    pub description: String,
    pub urgency: Urgency,
    pub location: Location,
    pub reporter: Option<(Option<String>, Option<String>)>,
    pub related_to: Option<Uuid>,
    pub self_handled: Option<String>,
    /// Attachment hashes of the report's photos.
    pub photos: Vec<String>,
}

/// An action on an existing ticket as the API takes it.
#[derive(Clone, Debug)]
pub enum ActionInput {
    Assign {
        unit: String,
        co_units: Vec<String>,
        note: Option<String>,
    },
    Sign {
        handler: String,
    },
    Return {
        reason: String,
    },
    RequestExtension {
        days: u32,
        reason: String,
    },
    DecideExtension {
        approved: bool,
        days: Option<u32>,
    },
    Supervise {
        note: String,
    },
    Handle {
        result: String,
        photos: Vec<String>,
    },
    Verify {
        passed: bool,
        note: String,
    },
    Feedback {
        satisfaction: Satisfaction,
    },
    Comment {
        text: String,
    },
    Close {
        code: CloseCode,
        duplicate_of: Option<Uuid>,
    },
}

impl ActionInput {
    fn action(&self) -> Action {
        match self {
            ActionInput::Assign { .. } => Action::Assign,
            ActionInput::Sign { .. } => Action::Sign,
            ActionInput::Return { .. } => Action::Return,
            ActionInput::RequestExtension { .. } => Action::RequestExtension,
            ActionInput::DecideExtension { .. } => Action::DecideExtension,
            ActionInput::Supervise { .. } => Action::Supervise,
            ActionInput::Handle { .. } => Action::Handle,
            ActionInput::Verify { .. } => Action::Verify,
            ActionInput::Feedback { .. } => Action::Feedback,
            ActionInput::Comment { .. } => Action::Comment,
            ActionInput::Close { .. } => Action::Close,
        }
    }
}

/// The request facts that are not the body.
#[derive(Clone, Debug)]
pub struct CommandMeta {
    pub idempotency_key: String,
    /// Hash of method, path and body.
    pub request_hash: String,
    pub if_match: Option<i64>,
    pub request_id: String,
}

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

    /// The stored answer to an earlier request with this key, if any.
    async fn replay(&self, actor: &Actor, meta: &CommandMeta) -> Result<Option<Reply>, AppError> {
        match self
            .store
            .find_idempotency(&actor.user, &meta.idempotency_key)
            .await?
        {
            None => Ok(None),
            Some(rec) if rec.request_hash == meta.request_hash => {
                let version = serde_json::from_str::<Value>(&rec.body)
                    .ok()
                    .and_then(|v| v.get("version").and_then(Value::as_i64))
                    .unwrap_or(0);
                Ok(Some(Reply {
                    status: rec.status,
                    body: rec.body,
                    version,
                    replayed: true,
                }))
            }
            Some(_) => Err(AppError::invalid(
                "Idempotency-Key",
                "this key was already used for a different request; use a new key for a new command",
            )),
        }
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

    pub async fn create(
        &self,
        actor: &Actor,
        input: NewTicket,
        meta: CommandMeta,
    ) -> Result<Reply, AppError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.create_inner(actor, input.clone(), &meta).await {
                Ok(r) => return Ok(r),
                // Another instance took the ticket number (SQLite with several
                // processes): the store has moved its serial on; decide again.
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

    /// A ticket a command links to (a new ticket's `related_to`, a close's
    /// `duplicate_of`) must be one the actor may read. Anything else, a ticket that
    /// does not exist or one outside the actor's scope, answers the same 404, so that
    /// the link neither reaches into another unit's figures (a repeat complaint
    /// counts against the earlier ticket's unit) nor tells whether a ticket exists.
    pub async fn check_linked(
        &self,
        actor: &Actor,
        field: &str,
        linked: Option<Uuid>,
    ) -> Result<(), AppError> {
        let Some(id) = linked else { return Ok(()) };
        let readable = match self.load(id).await? {
            Some(t) => policy::check(&self.org.get(), actor, Action::Read, &t).is_ok(),
            None => false,
        };
        if readable {
            Ok(())
        } else {
            Err(AppError::NotFound(format!(
                "{field} names no ticket {id} that this token may read"
            )))
        }
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
        let serial = self.store.next_ticket_serial().await?;
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
            if cached && meta.if_match.is_some_and(|v| v != ticket.version) {
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
                    meta.if_match,
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
                    ActionInput::Handle { photos, .. } => {
                        self.check_photos(actor, "photos", photos).await?;
                    }
                    ActionInput::Close { duplicate_of, .. } => {
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
        if let Some(row) = self.store.ticket_view(id).await? {
            if head.is_some_and(|v| v > row.version) {
                return Err(AppError::Tampered(format!(
                    "ticket {id} cannot take commands: its event log runs past its ticket view \
                     (version {} in the log, {} in the view), which only an edit outside the \
                     service does. An operator: run `yiwang verify` for the findings and restore \
                     the ticket's records from a backup",
                    head.unwrap_or(0),
                    row.version
                )));
            }
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
        let req = AppendRequest {
            stream_id: id,
            expected_version,
            prev_hash,
            events: new_events,
            metadata: Metadata {
                actor: actor.user.clone(),
                role: actor.role.as_str().to_string(),
                unit: Some(actor.unit.clone()),
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                idempotency_key: Some(meta.idempotency_key.clone()),
                request_id: Some(meta.request_id.clone()),
            },
            idempotency: Some(IdempotencyRecord {
                scope: actor.user.clone(),
                key: meta.idempotency_key.clone(),
                request_hash: meta.request_hash.clone(),
                status,
                body: body.clone(),
                stream_id: id,
            }),
            view: Some(view_row(ticket)),
            contact,
        };
        match self.append_ticket(req, ticket, events).await {
            Ok(_) => Ok(Reply {
                status,
                body,
                version: ticket.version,
                replayed: false,
            }),
            // A concurrent request with the same key won: answer with its result.
            Err(StoreError::DuplicateNumber) => Err(AppError::Conflict(NUMBER_TAKEN.into())),
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

    /// The state a command decides on: this process's last write if it has one
    /// (`true`: a cached copy), else the stored state.
    async fn load_for_command(&self, id: Uuid) -> Result<(Ticket, Option<String>, bool), AppError> {
        if let Some((t, h)) = self.recent.get(id) {
            return Ok((t, Some(h), true));
        }
        let (t, h) = self
            .load_with_head(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no ticket {id}")))?;
        Ok((t, h, false))
    }

    pub async fn load(&self, id: Uuid) -> Result<Option<Ticket>, AppError> {
        Ok(self.load_with_head(id).await?.map(|(t, _)| t))
    }

    /// The ticket and the hash of its stream's last event (None when unknown).
    pub async fn load_with_head(
        &self,
        id: Uuid,
    ) -> Result<Option<(Ticket, Option<String>)>, AppError> {
        if let Some(row) = self.store.ticket_view(id).await? {
            if let Ok(t) = serde_json::from_str::<Ticket>(&row.doc) {
                return Ok(Some((t, Some(row.head_hash))));
            }
        }
        self.load_from_stream(id).await
    }

    /// The ticket folded from its stream (each event read through the upcasters of
    /// its schema version), with the hash of its last event: what the view holds,
    /// read from the log itself.
    pub async fn load_from_stream(
        &self,
        id: Uuid,
    ) -> Result<Option<(Ticket, Option<String>)>, AppError> {
        let events = self.store.read_stream(id).await?;
        let mut state: Option<Ticket> = None;
        for e in &events {
            let ev = TicketEvent::from_parts(&e.event_type, e.schema_version, &e.data).map_err(
                |err| AppError::Internal(anyhow::anyhow!("event {} unreadable: {err}", e.position)),
            )?;
            state = Some(Ticket::apply(state, id, &ev, e.occurred_at));
        }
        Ok(state.map(|t| (t, events.last().map(|e| e.hash.clone()))))
    }

    /// Err when the latest verification froze ticket `id`: 409 `integrity.tampered`
    /// to those who may see it, judged on the fold of its events (its view is what is
    /// not trusted), and the 404 of a ticket that does not exist to everyone else, so
    /// that a frozen ticket's existence does not leak beyond its scope either.
    pub async fn check_frozen(&self, actor: &Actor, id: Uuid) -> Result<(), AppError> {
        if !self.integrity.is_tampered(id) {
            return Ok(());
        }
        match self.load_from_stream(id).await {
            Ok(Some((t, _))) if !policy::can_see(&self.org.get(), actor, &t) => {
                Err(AppError::NotFound(format!("no ticket {id}")))
            }
            Ok(None) => Err(AppError::NotFound(format!("no ticket {id}"))),
            // Visible, or events too damaged to fold: the freeze is the answer.
            _ => self.integrity.check(id),
        }
    }

    /// One ticket as the actor may see it, with the reporter's contact (masked
    /// unless the actor needs it).
    pub async fn get(&self, actor: &Actor, id: Uuid) -> Result<(Ticket, Value), AppError> {
        self.check_frozen(actor, id).await?;
        let t = self
            .load(id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no ticket {id}")))?;
        let org = self.org.get();
        policy::check(&org, actor, Action::Read, &t)?;
        let reporter = match t.reporter_ref {
            Some(r) => self
                .store
                .contact(r)
                .await?
                .map(|c| reporter_json(&c, policy::sees_contact(&org, actor, &t))),
            None => None,
        };
        let v = render(&t, self.now(), reporter);
        Ok((t, v))
    }

    pub async fn list(&self, actor: &Actor, mut q: TicketQuery) -> Result<Vec<Ticket>, AppError> {
        let org = self.org.get();
        q.within = policy::visible_units(&org, actor);
        let rows = self.store.list_tickets(&q).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            // A frozen ticket's view decides nothing (a failed verification).
            if self.integrity.is_tampered(r.id) {
                continue;
            }
            match serde_json::from_str::<Ticket>(&r.doc) {
                Ok(t) if policy::can_see(&org, actor, &t) => out.push(t),
                Ok(_) => {}
                Err(_) => {
                    if let Some(t) = self.load(r.id).await? {
                        if policy::can_see(&org, actor, &t) {
                            out.push(t);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// What a command decided, before anything is written: the events to append and
/// the ticket's state after them.
#[derive(Clone, Debug)]
pub struct Decided {
    pub events: Vec<TicketEvent>,
    pub next: Ticket,
}

/// The checks of a new ticket against the organisation that need no store: who may
/// report where, the source, the category, the grid. (`related_to` is
/// [`App::check_linked`].)
pub fn check_new_ticket(org: &Org, actor: &Actor, input: &NewTicket) -> Result<(), AppError> {
    policy::check_create(org, actor, input.location.grid.as_deref())?;
    check_source(actor, input.source)?;
    if org.category(&input.category).is_none() {
        return Err(AppError::invalid(
            "category",
            format!(
                "unknown category {:?}; GET /api/v1/categories lists them",
                input.category
            ),
        ));
    }
    if let Some(g) = input.location.grid.as_deref() {
        match org.unit(g) {
            Some(u) if u.kind == crate::org::UnitKind::Grid => {}
            _ => {
                return Err(AppError::invalid(
                    "location.grid",
                    format!(
                        "{g:?} is not a grid of the organisation; GET /api/v1/units?kind=grid lists them"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A ticket's `source` follows the role of whoever reports it: a grid worker's
/// reports are `grid`, a hotline agent's `hotline`; dispatchers and admins (a
/// centre that takes a report by other means) choose. The area rules of the
/// appraisal (容貌管理) count reports by their recorded source, so a client must not
/// be able to claim another one (issue 19: a hotline ticket posted as `grid`
/// deducted from the squad; a grid worker's report posted as `hotline` escaped).
fn check_source(actor: &Actor, source: Source) -> Result<(), AppError> {
    let required = match actor.role {
        Role::GridWorker => Source::Grid,
        Role::HotlineAgent => Source::Hotline,
        _ => return Ok(()),
    };
    if source == required {
        return Ok(());
    }
    let name = |s: Source| match s {
        Source::Grid => "grid",
        Source::Hotline => "hotline",
    };
    Err(AppError::invalid(
        "source",
        format!(
            "a {}'s reports have the source \"{}\", not \"{}\"",
            actor.role.as_str(),
            name(required),
            name(source)
        ),
    ))
}

/// The aggregate's decision on a new ticket at `now`, after [`check_new_ticket`]:
/// the receiving centre, the suggested unit, the events and the state. Pure. The
/// caller has settled the id and number (`id_number`) and the reporter's contact
/// (`reporter_ref`); `input.id` and `input.reporter` are not read here.
pub fn decide_create(
    org: &Org,
    deadlines: &(dyn Deadlines + Sync),
    actor: &Actor,
    input: NewTicket,
    (id, number): (Uuid, String),
    reporter_ref: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<Decided, AppError> {
    let centre = receiving_centre(org, actor, input.location.grid.as_deref());
    let suggested_unit = input
        .location
        .grid
        .as_deref()
        .and_then(|g| org.route(&input.category, g))
        .or_else(|| {
            org.category(&input.category)
                .and_then(|c| c.default_unit.as_deref())
        })
        .map(str::to_string);
    let cmd = Command::Accept(Box::new(AcceptTicket {
        id,
        number,
        source: input.source,
        category: input.category,
        urgency: input.urgency,
        title: input.title,
        description: input.description,
        location: input.location,
        reporter_ref,
        related_to: input.related_to,
        suggested_unit,
        centre,
        self_handled: input.self_handled,
        photos: input.photos,
    }));
    let ctx = Ctx { now, deadlines };
    let events = decide(None, cmd, &ctx)?;
    let next = fold_new(None, id, &events, now);
    Ok(Decided { events, next })
}

/// A command on an existing ticket decided at `now`, as the live API decides it:
/// who may act (the policy), the If-Match precondition, the input against the
/// organisation, then the aggregate. Pure: nothing is read or written.
pub fn decide_action(
    org: &Org,
    deadlines: &(dyn Deadlines + Sync),
    actor: &Actor,
    ticket: &Ticket,
    input: ActionInput,
    now: DateTime<Utc>,
    if_match: Option<i64>,
) -> Result<Decided, AppError> {
    policy::check(org, actor, input.action(), ticket)?;
    if let Some(v) = if_match {
        if v != ticket.version {
            return Err(AppError::PreconditionFailed(format!(
                "If-Match names version {v} but the ticket is at version {}; reload it and decide again",
                ticket.version
            )));
        }
    }
    let cmd = to_command(org, actor, ticket, input)?;
    let ctx = Ctx { now, deadlines };
    let events = decide(Some(ticket), cmd, &ctx)?;
    let next = fold_new(Some(ticket.clone()), ticket.id, &events, now);
    Ok(Decided { events, next })
}

/// Where a new ticket waits for dispatch: the caller's centre for the hotline and
/// dispatchers; the township centre of the grid for a grid worker's report.
fn receiving_centre(org: &Org, actor: &Actor, grid: Option<&str>) -> String {
    if actor.role != Role::GridWorker && org.is_centre(&actor.unit) {
        return actor.unit.clone();
    }
    grid.and_then(|g| org.township_of(g))
        .unwrap_or(&org.root().code)
        .to_string()
}

fn to_command(
    org: &Org,
    actor: &Actor,
    t: &Ticket,
    input: ActionInput,
) -> Result<Command, AppError> {
    Ok(match input {
        ActionInput::Assign {
            unit,
            co_units,
            note,
        } => {
            let from = policy::holding_centre(t).to_string();
            if org.unit(&unit).is_none() {
                return Err(AppError::invalid(
                    "unit",
                    format!("no unit {unit:?} in the organisation"),
                ));
            }
            if !org.may_dispatch(&from, &unit) {
                return Err(AppError::invalid(
                    "unit",
                    format!(
                        "{from} does not dispatch to {unit}; it dispatches to: {}{}",
                        org.dispatch_targets(&from).join(", "),
                        // The way there, when there is one (through a township, or up).
                        org.next_hop(&from, &unit)
                            .map(|hop| format!(" (to reach {unit}, dispatch to {hop})"))
                            .unwrap_or_default()
                    ),
                ));
            }
            // Co-units (协办) pass the same reach check as the lead: a centre names
            // only units it may dispatch to. A co-unit reads and comments on the
            // ticket (policy::check), so naming one of another township would open
            // the ticket to it.
            for (i, c) in co_units.iter().enumerate() {
                let field = format!("co_units[{i}]");
                if org.unit(c).is_none() {
                    return Err(AppError::invalid(
                        field,
                        format!("no unit {c:?} in the organisation"),
                    ));
                }
                if c == &unit {
                    return Err(AppError::invalid(
                        field,
                        format!("{c} is the lead unit already"),
                    ));
                }
                if !org.may_dispatch(&from, c) {
                    return Err(AppError::invalid(
                        field,
                        format!(
                            "{from} does not dispatch to {c}; it dispatches to: {}",
                            org.dispatch_targets(&from).join(", ")
                        ),
                    ));
                }
            }
            Command::Assign {
                to_centre: org.is_centre(&unit),
                from_unit: from,
                unit,
                co_units,
                note,
            }
        }
        ActionInput::Sign { handler } => Command::Sign {
            unit: t.unit.clone().unwrap_or_else(|| actor.unit.clone()),
            handler,
        },
        ActionInput::Return { reason } => Command::Return {
            unit: t.unit.clone().unwrap_or_else(|| actor.unit.clone()),
            reason,
        },
        ActionInput::RequestExtension { days, reason } => {
            Command::RequestExtension { days, reason }
        }
        ActionInput::DecideExtension { approved, days } => {
            Command::DecideExtension { approved, days }
        }
        ActionInput::Supervise { note } => Command::Supervise { note },
        ActionInput::Handle { result, photos } => Command::Handle { result, photos },
        ActionInput::Verify { passed, note } => Command::Verify { passed, note },
        ActionInput::Feedback { satisfaction } => Command::Feedback { satisfaction },
        ActionInput::Comment { text } => Command::Comment { text },
        ActionInput::Close { code, duplicate_of } => Command::Close { code, duplicate_of },
    })
}

fn fold_new(
    mut state: Option<Ticket>,
    id: Uuid,
    events: &[TicketEvent],
    at: DateTime<Utc>,
) -> Ticket {
    for e in events {
        state = Some(Ticket::apply(state, id, e, at));
    }
    // decide never returns an empty list for a valid command and a new stream
    // always starts with TicketAccepted, so there is a state here.
    state.expect("decide returned at least one event")
}

/// The ticket-view row for `t` (also written by the SLA watcher with its events).
/// The store's form of a ticket's events, all occurring at `at`.
pub fn new_events(events: &[TicketEvent], at: DateTime<Utc>) -> Vec<NewEvent> {
    events
        .iter()
        .map(|e| {
            let (event_type, data) = e.to_parts();
            NewEvent {
                event_type,
                schema_version: e.schema_version(),
                data,
                occurred_at: at,
            }
        })
        .collect()
}

pub fn view_row(t: &Ticket) -> TicketViewRow {
    TicketViewRow {
        id: t.id,
        number: t.number.clone(),
        state: t.state.as_str().to_string(),
        unit: t.unit.clone(),
        centre: t.centre.clone(),
        category: t.category.clone(),
        grid: t.location.grid.clone(),
        co_units: t.co_units.clone(),
        version: t.version,
        created_at: t.created_at,
        updated_at: t.updated_at,
        // Serializing the derived Ticket struct into a Value cannot fail.
        doc: serde_json::to_string(t).expect("ticket serializes"),
        // The store fills in the hash of the last event it appends.
        head_hash: String::new(),
    }
}

/// met / missed / running for one deadline.
fn deadline_status(
    due: Option<DateTime<Utc>>,
    done: Option<DateTime<Utc>>,
    open: bool,
    now: DateTime<Utc>,
) -> Option<&'static str> {
    match (due, done) {
        (None, _) => None,
        (Some(d), Some(at)) => Some(if at <= d { "met" } else { "missed" }),
        (Some(d), None) if open => Some(if now <= d { "running" } else { "missed" }),
        (Some(_), None) => None,
    }
}

/// The ticket JSON of the public contract.
pub fn render(t: &Ticket, now: DateTime<Utc>, reporter: Option<Value>) -> Value {
    // Serializing a struct of plain fields into a Value cannot fail.
    serde_json::to_value(TicketJson::new(t, now, reporter)).expect("ticket JSON serializes")
}

/// The same JSON as text, without building a Value first (the command path).
pub fn render_string(t: &Ticket, now: DateTime<Utc>, reporter: Option<Value>) -> String {
    // Serializing a struct of plain fields cannot fail.
    serde_json::to_string(&TicketJson::new(t, now, reporter)).expect("ticket JSON serializes")
}

/// The ticket JSON of the public contract, borrowed from the folded state (its
/// OpenAPI schema is `Ticket`).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Ticket)]
pub(crate) struct TicketJson<'a> {
    id: Uuid,
    /// `YYYYMMDD-NNNNNN`: the acceptance date (Asia/Shanghai) and a serial.
    number: &'a str,
    #[schema(value_type = State)]
    state: &'static str,
    /// The stream version; also the ETag.
    version: i64,
    source: Source,
    category: &'a str,
    urgency: Urgency,
    title: &'a str,
    description: &'a str,
    location: &'a Location,
    /// The reporter's contact, on the creation answer and on a single ticket (masked
    /// unless the reader needs it); null in lists, in the answers to actions, and
    /// once erased.
    #[schema(value_type = Option<crate::http::openapi::Reporter>)]
    reporter: Option<Value>,
    /// The earlier ticket this one repeats (重复投诉).
    related_to: Option<Uuid>,
    /// The unit the catalogue routes the category to, for the dispatcher.
    suggested_unit: Option<&'a str>,
    /// The centre that holds (or last dispatched) the ticket.
    centre: &'a str,
    /// The lead unit (主办) once dispatched.
    unit: Option<&'a str>,
    /// Co-units (协办).
    co_units: &'a [String],
    /// The person the lead unit named when signing.
    handler: Option<&'a str>,
    deadlines: DeadlinesJson,
    /// An open deadline has passed.
    overdue: bool,
    /// Times returned (退回).
    returned: u32,
    /// Times supervised (督办).
    supervised: u32,
    /// An extension was approved.
    extended: bool,
    /// Failed verifications (返工).
    reworked: u32,
    /// Days asked for by an undecided extension request.
    pending_extension_days: Option<u32>,
    /// Fixed on the spot by the grid worker (自行处置).
    self_handled: bool,
    result: Option<&'a str>,
    satisfaction: Option<Satisfaction>,
    close_code: Option<CloseCode>,
    duplicate_of: Option<Uuid>,
    photos: Vec<PhotoJson<'a>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
}

/// A photo of the ticket (an attachment), with the URL that serves it to whoever
/// may see the ticket.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = TicketPhoto)]
pub(crate) struct PhotoJson<'a> {
    /// The attachment's SHA-256 (from `POST /api/v1/attachments`).
    hash: &'a str,
    /// `accepted`: with the report; `handled`: with a result.
    stage: PhotoStage,
    /// `/api/v1/tickets/{id}/attachments/{hash}`.
    url: String,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Deadlines)]
pub(crate) struct DeadlinesJson {
    sign_due_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<crate::http::openapi::DeadlineStatus>)]
    sign: Option<&'static str>,
    handle_due_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<crate::http::openapi::DeadlineStatus>)]
    handle: Option<&'static str>,
}

impl<'a> TicketJson<'a> {
    fn new(t: &'a Ticket, now: DateTime<Utc>, reporter: Option<Value>) -> TicketJson<'a> {
        let open = t.state == State::Assigned;
        TicketJson {
            id: t.id,
            number: &t.number,
            state: t.state.as_str(),
            version: t.version,
            source: t.source,
            category: &t.category,
            urgency: t.urgency,
            title: &t.title,
            description: &t.description,
            location: &t.location,
            reporter,
            related_to: t.related_to,
            suggested_unit: t.suggested_unit.as_deref(),
            centre: &t.centre,
            unit: t.unit.as_deref(),
            co_units: &t.co_units,
            handler: t.handler.as_deref(),
            deadlines: DeadlinesJson {
                sign_due_at: t.sign_due_at,
                sign: deadline_status(t.sign_due_at, t.signed_at, open, now),
                handle_due_at: t.handle_due_at,
                handle: deadline_status(t.handle_due_at, t.handled_at, open, now),
            },
            overdue: t.overdue(now),
            returned: t.returns,
            supervised: t.supervisions,
            extended: t.extensions > 0,
            reworked: t.reworks,
            pending_extension_days: t.pending_extension_days,
            self_handled: t.self_handled,
            result: t.result.as_deref(),
            satisfaction: t.satisfaction,
            close_code: t.close_code,
            duplicate_of: t.duplicate_of,
            photos: t
                .photos
                .iter()
                .map(|p| PhotoJson {
                    hash: &p.hash,
                    stage: p.stage,
                    url: format!("/api/v1/tickets/{}/attachments/{}", t.id, p.hash),
                })
                .collect(),
            created_at: t.created_at,
            updated_at: t.updated_at,
            closed_at: t.closed_at,
        }
    }
}

/// The reporter's contact: in full when `full` ([`policy::sees_contact`]: the
/// hotline and admins of a unit that owns the ticket, and its lead unit's handlers);
/// masked for everyone else.
fn reporter_json(c: &Contact, full: bool) -> Value {
    // Erased after the retention period (yiwang contacts purge): nothing to show.
    if c.name.is_none() && c.phone.is_none() {
        return Value::Null;
    }
    if full {
        json!({ "name": c.name, "phone": c.phone, "masked": false })
    } else {
        json!({
            "name": c.name.as_deref().map(mask_name),
            "phone": c.phone.as_deref().map(mask_phone),
            "masked": true,
        })
    }
}

/// Whether a ticket answer (its JSON as [`render_string`] writes it, fresh or kept
/// for an idempotent replay) shows a reporter's contact in full: the HTTP layer then
/// forbids caches to keep it (`Cache-Control: no-store`).
///
/// serde_json writes compact JSON, and a `"` inside a string is always escaped as
/// `\"`, so `"masked":false` occurs only as the key and value that
/// [`reporter_json`] writes for a contact shown in full, never inside a title or a
/// description.
pub fn shows_contact(body: &str) -> bool {
    body.contains(r#""masked":false"#)
}

/// `张三` -> `张*`; keeps the first character.
pub fn mask_name(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// `13800000000` -> `138****0000`: keeps the first three and last four digits.
pub fn mask_phone(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars[..3]
        .iter()
        .chain(std::iter::repeat_n(&'*', n - 7))
        .chain(&chars[n - 4..])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_names_and_phones() {
        assert_eq!(mask_name("赵先生"), "赵**");
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_phone("13800000000"), "138****0000");
        assert_eq!(mask_phone("12345"), "*****");
    }

    #[test]
    fn an_unmasked_contact_is_told_from_the_body() {
        let full = json!({"name": "赵先生", "phone": "13800000000", "masked": false});
        let masked = json!({"name": "赵**", "phone": "138****0000", "masked": true});
        for (reporter, shown) in [(full, true), (masked, false), (Value::Null, false)] {
            let body = json!({"id": 1, "title": "x", "reporter": reporter}).to_string();
            assert_eq!(shows_contact(&body), shown, "{body}");
        }
        // The words inside a text are escaped, so they do not count.
        let body = json!({"title": "\"masked\":false", "reporter": null}).to_string();
        assert!(!shows_contact(&body), "{body}");
    }
}
