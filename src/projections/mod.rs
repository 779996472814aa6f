//! Projections (DESIGN §5): read models built from the gap-free global feed.
//!
//! A projection keeps a checkpoint (the last position it applied) in the same
//! transaction as its rows, and moves it only from the value it read ("compare and
//! set"), so a batch is applied exactly once even if two processes try. Which
//! process does the work is decided by a lease (`projection_leases`): the holder
//! renews it; when it dies, the lease expires and another `serve` takes over from
//! the checkpoint. `yiwang replay` takes the lease, empties the projection and
//! rebuilds it from position 0.
//!
//! The ticket view is not here: it is written inline with each append (the queue
//! must never lag a command). `unit_stats` and `people_stats` (the per-person
//! figures, `people.rs`) follow the feed; the appraisal is computed from
//! `unit_stats` at query time, so a changed rule profile applies to every period at
//! once and a score is always reproducible from the log.

pub mod daily;
pub mod facts;
pub mod gauges;
pub mod people;
pub mod periods;
pub mod stats;
pub mod unit_stats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::metrics::Metrics;
use crate::org::OrgHandle;
use crate::sla::calendar::Calendar;
use crate::store::{Pool, RecordedEvent, Store, StoreError};

/// Events read from the feed per batch.
pub const BATCH: i64 = 5000;

/// How long a lease lasts unless renewed; the holder renews it every third of this.
pub const LEASE_TTL: Duration = Duration::from_secs(15);

/// What one `apply` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    /// False: the checkpoint had moved (another process applied it); nothing written.
    pub applied: bool,
    pub events: usize,
    /// The checkpoint after the batch.
    pub to: i64,
}

#[async_trait]
pub trait Projection: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn checkpoint(&self) -> Result<i64, StoreError>;
    /// Applies events that follow `from` (the checkpoint read before) and moves the
    /// checkpoint to the last of them, in one transaction.
    async fn apply(&self, from: i64, events: Vec<RecordedEvent>) -> Result<Batch, StoreError>;
    /// Empties the read model and sets the checkpoint to 0.
    async fn reset(&self) -> Result<(), StoreError>;
    /// Builds the read model again from the whole feed and leaves the checkpoint
    /// at the feed's end, replacing the old rows in one transaction (readers see the
    /// old figures until it commits). `progress` is told the events read so far.
    /// Returns the number of events read.
    async fn rebuild(
        &self,
        store: &Store,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, StoreError>;
    /// Drops anything kept in memory (after losing the lease or a race).
    fn forget(&self);
}

/// What the projections and their runners need of the service, and no more: the
/// log, the organisation and the working-day calendar (to build the projections),
/// the metrics and this process's statuses (for the runners). `App::projection_handles`
/// hands them out.
#[derive(Clone)]
pub struct Handles {
    pub store: Store,
    pub org: OrgHandle,
    pub calendar: Calendar,
    pub metrics: Metrics,
    pub statuses: Arc<Statuses>,
}

/// The projections this build has, by name, as a rebuild (`yiwang replay`) folds
/// them: with the caches the whole log needs.
pub fn all(h: &Handles) -> Vec<Arc<dyn Projection>> {
    with_facts_cache(h, unit_stats::REBUILD_CACHE)
}

/// The same projections as runners keeping up with live commands hold them
/// ([`spawn`]): caches sized for the tickets moving now, so a long-running
/// service does not grow with every ticket it has ever folded.
fn live(h: &Handles) -> Vec<Arc<dyn Projection>> {
    with_facts_cache(h, unit_stats::LIVE_CACHE)
}

/// The projections, the statistics keeping the facts of up to `tickets` tickets in
/// memory (the rest are read back from `stats_tickets` when their next event comes).
pub fn with_facts_cache(h: &Handles, tickets: usize) -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(unit_stats::UnitStats::with_cache(
            h.store.pool(),
            h.org.clone(),
            h.calendar.clone(),
            tickets,
        )),
        Arc::new(people::PeopleStats::new(h.store.pool())),
    ]
}

/// One process's claim on running a projection.
pub struct Lease {
    pool: Pool,
    name: String,
    owner: String,
    renewed: Option<Instant>,
}

impl Lease {
    pub fn new(pool: Pool, name: &str, owner: &str) -> Lease {
        Lease {
            pool,
            name: name.to_string(),
            owner: owner.to_string(),
            renewed: None,
        }
    }

    /// Takes or renews the lease; false while another live process holds it.
    /// `force` takes it regardless (replay).
    pub async fn acquire(&mut self, force: bool) -> Result<bool, StoreError> {
        if let Some(at) = self.renewed
            && at.elapsed() < LEASE_TTL / 3
        {
            return Ok(true);
        }
        let now = facts::micros(chrono::Utc::now());
        let expires = now + LEASE_TTL.as_micros() as i64;
        let taken = crate::repo::projections::take_lease(
            &self.pool,
            &self.name,
            &self.owner,
            expires,
            now,
            force,
        )
        .await?;
        if taken == 1 {
            self.renewed = Some(Instant::now());
            Ok(true)
        } else {
            self.renewed = None;
            Ok(false)
        }
    }

    /// Gives the lease up at once (so another process need not wait for expiry).
    pub async fn release(&mut self) -> Result<(), StoreError> {
        self.renewed = None;
        crate::repo::projections::release_lease(&self.pool, &self.name, &self.owner).await?;
        Ok(())
    }

    /// Who holds a projection's lease now, if anyone does.
    pub async fn holder(pool: &Pool, name: &str) -> Result<Option<String>, StoreError> {
        let now = facts::micros(chrono::Utc::now());
        crate::repo::projections::lease_holder(pool, name, now).await
    }
}

/// How a projection is doing in this process, for `/readyz` and the metrics.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// This process holds the lease.
    pub leader: bool,
    /// The last time the runner finished a round without an error.
    pub last_ok: Option<Instant>,
    pub last_error: Option<String>,
    pub checkpoint: i64,
}

/// The statuses of this process's projection runners, by name.
#[derive(Default)]
pub struct Statuses(std::sync::Mutex<std::collections::BTreeMap<String, Status>>);

impl Statuses {
    pub fn update(&self, name: &str, f: impl FnOnce(&mut Status)) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(m.entry(name.to_string()).or_default());
    }

    pub fn snapshot(&self) -> Vec<(String, Status)> {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Rebuilds `projection` from the whole feed (see `Projection::rebuild`) while a
/// background task keeps renewing `owner`'s lease on it (taking it by force when
/// `force`, as `yiwang replay` does), so no other process takes it over meanwhile.
pub async fn rebuild_holding_lease(
    store: &Store,
    projection: &dyn Projection,
    owner: &str,
    force: bool,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<u64, StoreError> {
    let mut held = Lease::new(store.pool(), projection.name(), owner);
    let renew = tokio::spawn(async move {
        loop {
            tokio::time::sleep(LEASE_TTL / 3).await;
            if let Err(e) = held.acquire(force).await {
                tracing::warn!(error = %e, "could not renew the lease during a rebuild");
            }
        }
    });
    // Stops the renewal however this function ends (also if its future is dropped).
    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _renewing = AbortOnDrop(renew);
    projection.rebuild(store, progress).await
}

/// A runner that has not finished a round for this long is reported as stopped.
pub const STALL: Duration = Duration::from_secs(60);

/// Applies one batch if there is one; Ok(None) when caught up.
pub async fn step(
    store: &Store,
    projection: &dyn Projection,
    batch: i64,
) -> Result<Option<(Batch, Option<chrono::DateTime<chrono::Utc>>)>, StoreError> {
    let from = projection.checkpoint().await?;
    step_from(store, projection, from, batch).await
}

/// [`step`] from a checkpoint the caller already knows (the runner keeps the one
/// its last batch moved to, rather than reading it again every round). A wrong
/// `from` writes nothing: the batch's compare-and-set finds the checkpoint
/// elsewhere and the batch comes back not applied.
pub async fn step_from(
    store: &Store,
    projection: &dyn Projection,
    from: i64,
    batch: i64,
) -> Result<Option<(Batch, Option<chrono::DateTime<chrono::Utc>>)>, StoreError> {
    let events = store.read_all(from, batch).await?;
    if events.is_empty() {
        return Ok(None);
    }
    let full = events.len() as i64 >= batch;
    let last_recorded = events.last().map(|e| e.recorded_at);
    let b = projection.apply(from, events).await?;
    // More may be waiting behind a full batch: its last event's age is the lag.
    Ok(Some((b, if full { last_recorded } else { None })))
}

/// Starts one runner per projection in this process.
pub fn spawn(h: Handles) {
    let owner = format!(
        "{}:{}:{}",
        hostname(),
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    );
    for p in live(&h) {
        let h = h.clone();
        let owner = owner.clone();
        tokio::spawn(async move { run(h, p, owner).await });
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "host".into())
}

/// The shortest time between the starts of two rounds of a runner that is
/// keeping up, on PostgreSQL. A command wakes the runners; under a stream of
/// commands, each round then folds what came in since the last one (at 1,500
/// commands/s, some 150 commands' events in one transaction) instead of one
/// append batch's few. A round costs its reads, its transaction and its commit
/// whatever it folds: at 16 clients, rounds woken by every append batch were two
/// thirds of the statements PostgreSQL ran (BENCHMARKS.md "Where one command's
/// cost goes"). The figures lag the log by at most this much more; a command
/// after a quiet spell is folded at once, as before.
pub const ROUND_EVERY: Duration = Duration::from_millis(100);

/// The same on SQLite: none, as before the period came. Its one write lock serves
/// the append writer and the runners alike (the writer waits for a runner's batch
/// by sleeping in SQLite's busy handler), and rounds of 0.01 s or 0.1 s measured no
/// better than none, within a spread of about 15% (BENCHMARKS.md "Lifecycle
/// commands/s", passes 5 and 6).
pub const SQLITE_ROUND_EVERY: Duration = Duration::ZERO;

/// The shortest time between two rounds for `pool`'s engine, unless
/// `YIWANG_PROJECTION_ROUND_MS` says otherwise (0 to 5,000 ms).
pub fn round_every(pool: &Pool) -> Duration {
    if let Some(ms) = std::env::var("YIWANG_PROJECTION_ROUND_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Duration::from_millis(ms.min(5000));
    }
    match pool {
        Pool::Postgres(_) => ROUND_EVERY,
        Pool::Sqlite(_) => SQLITE_ROUND_EVERY,
    }
}

/// Whether the round that just ended leaves more to do at once.
enum Next {
    /// A full batch was applied (more may be waiting), or a rebuild ran.
    Again,
    /// Caught up, or standing by (another process holds the lease).
    Wait,
}

async fn run(h: Handles, p: Arc<dyn Projection>, owner: String) {
    let name = p.name();
    let mut lease = Lease::new(h.store.pool(), name, &owner);
    let mut appended = h.store.appended();
    let lag = h.metrics.projection_lag.with_label_values(&[name]);
    let leader_gauge = h.metrics.projection_leader.with_label_values(&[name]);
    let applied = h.metrics.projection_events.with_label_values(&[name]);
    let batches = h.metrics.projection_batches.with_label_values(&[name]);
    let every = round_every(&h.store.pool());
    // The checkpoint as this runner last read or moved it; None: read it again
    // (at the start, after losing the lease, a lost race or an error).
    let mut known: Option<i64> = None;
    tracing::info!(projection = name, %owner, "projection runner started");
    loop {
        let started = Instant::now();
        // What was appended before this point, this round reads; only a later
        // append needs to wake the wait below.
        appended.borrow_and_update();
        let round: Result<Next, StoreError> = async {
            if !lease.acquire(false).await? {
                p.forget();
                known = None;
                leader_gauge.set(0);
                h.statuses.update(name, |s| {
                    s.leader = false;
                    s.last_ok = Some(Instant::now());
                });
                return Ok(Next::Wait);
            }
            leader_gauge.set(1);
            let from = match known {
                Some(at) => at,
                None => p.checkpoint().await?,
            };
            // From zero (a bulk load, or a migration that emptied the read model) a
            // long feed is folded in one pass, much faster than batch by batch. A feed
            // shorter than a batch (a new database's first commands) goes batch by
            // batch: a rebuild also vacuums the tables, which stalled every command
            // for a quarter of a second to fold a handful of events.
            if from == 0 && crate::store::holds_at_least(&h.store.pool(), BATCH).await? {
                tracing::info!(
                    projection = name,
                    "rebuilding the projection from the whole feed"
                );
                let started = Instant::now();
                known = None;
                let n = rebuild_holding_lease(&h.store, p.as_ref(), &owner, false, &|_| {}).await?;
                applied.inc_by(n);
                tracing::info!(
                    projection = name,
                    events = n,
                    secs = started.elapsed().as_secs_f64(),
                    "projection rebuilt"
                );
                return Ok(Next::Again);
            }
            match step_from(&h.store, p.as_ref(), from, BATCH).await? {
                None => {
                    lag.set(0.0);
                    // Caught up: report where (after a start, a rebuild or another
                    // instance's batches, no batch of ours has said so).
                    known = Some(from);
                    h.statuses.update(name, |s| {
                        s.leader = true;
                        s.last_ok = Some(Instant::now());
                        s.last_error = None;
                        s.checkpoint = from;
                    });
                    Ok(Next::Wait)
                }
                Some((b, _)) if !b.applied => {
                    // Another process moved the checkpoint: read it again.
                    known = None;
                    Ok(Next::Again)
                }
                Some((b, behind)) => {
                    applied.inc_by(b.events as u64);
                    batches.inc();
                    known = Some(b.to);
                    let secs = behind
                        .map(|t| (chrono::Utc::now() - t).num_milliseconds() as f64 / 1000.0)
                        .unwrap_or(0.0);
                    lag.set(secs.max(0.0));
                    h.statuses.update(name, |s| {
                        s.leader = true;
                        s.last_ok = Some(Instant::now());
                        s.last_error = None;
                        s.checkpoint = b.to;
                    });
                    // A batch short of full took everything the feed had: caught up
                    // as of that read, without a round to find it empty.
                    Ok(if behind.is_some() {
                        Next::Again
                    } else {
                        Next::Wait
                    })
                }
            }
        }
        .await;
        match round {
            Ok(Next::Again) => continue,
            Ok(Next::Wait) => {
                // Caught up (or standing by): wait for an append here, or poll for
                // other instances' appends and for the lease; then let the commands
                // of the rest of the period gather before the next round.
                let _ = tokio::time::timeout(Duration::from_millis(500), appended.changed()).await;
                if let Some(rest) = every.checked_sub(started.elapsed()) {
                    tokio::time::sleep(rest).await;
                }
            }
            Err(e) => {
                p.forget();
                known = None;
                tracing::warn!(projection = name, error = %e, "projection round failed; retrying");
                h.statuses
                    .update(name, |s| s.last_error = Some(e.to_string()));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// How many events the log holds (for progress bars).
pub use crate::store::count_events;
