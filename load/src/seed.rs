//! `seed`: fills a database with a simulated year of ticket histories through the
//! yiwang library (no HTTP), and `import-file`: the same histories as an import
//! file for `yiwang import`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use chrono_tz::Asia::Shanghai;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use uuid::Uuid;

use yiwang::app::decide::{new_events, view_row};
use yiwang::sla::watcher::{ACTOR as WATCHER, ROLE as WATCHER_ROLE};
use yiwang::sla::{Calendar, SlaPolicy, SlaSettings};
use yiwang::store::hash::GENESIS;
use yiwang::store::{AppendRequest, Metadata, Store, ViewHandler};

use crate::plan::{History, TicketPlan, Traits, World, plan_ticket};

#[derive(clap::Args, Debug)]
pub struct SeedArgs {
    /// sqlite://PATH or postgres://… (migrated if needed; the organisation in
    /// force is used, the demo set when none was loaded).
    #[arg(long)]
    pub database_url: String,
    /// Events to append, about (whole tickets: it stops at the first ticket that
    /// reaches this many).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub events: u64,
    /// Concurrent tasks, each appending its own tickets (the store batches them:
    /// group commit).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub clients: u32,
    /// Seed of the random choices (the same seed and clients give the same plans).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(clap::Args, Debug)]
pub struct ImportFileArgs {
    /// Lines to write, about (whole tickets).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub lines: u64,
    /// The NDJSON file to write.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// How many tickets had each kind of history.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    tickets: u64,
    events: u64,
    hotline: u64,
    straight: u64,
    returned: u64,
    extension: u64,
    extension_denied: u64,
    supervised: u64,
    supervised_repeat: u64,
    reworked: u64,
    late_sign: u64,
    late_handle: u64,
    self_handled: u64,
    duplicate: u64,
    invalid: u64,
    repeat_complaint: u64,
    via_centre: u64,
    open: u64,
}

impl Counts {
    fn add(&mut self, t: &Traits, events: usize) {
        self.tickets += 1;
        self.events += events as u64;
        let b = |x: bool| u64::from(x);
        self.hotline += b(t.hotline);
        self.straight += b(t.straight);
        self.returned += b(t.returned);
        self.extension += b(t.extension);
        self.extension_denied += b(t.extension_denied);
        self.supervised += b(t.supervised);
        self.supervised_repeat += b(t.supervised_repeat);
        self.reworked += b(t.reworked);
        self.late_sign += b(t.late_sign);
        self.late_handle += b(t.late_handle);
        self.self_handled += b(t.self_handled);
        self.duplicate += b(t.duplicate);
        self.invalid += b(t.invalid);
        self.repeat_complaint += b(t.repeat_complaint);
        self.via_centre += b(t.via_centre);
        self.open += b(!t.closed);
    }

    fn merge(&mut self, o: &Counts) {
        self.tickets += o.tickets;
        self.events += o.events;
        self.hotline += o.hotline;
        self.straight += o.straight;
        self.returned += o.returned;
        self.extension += o.extension;
        self.extension_denied += o.extension_denied;
        self.supervised += o.supervised;
        self.supervised_repeat += o.supervised_repeat;
        self.reworked += o.reworked;
        self.late_sign += o.late_sign;
        self.late_handle += o.late_handle;
        self.self_handled += o.self_handled;
        self.duplicate += o.duplicate;
        self.invalid += o.invalid;
        self.repeat_complaint += o.repeat_complaint;
        self.via_centre += o.via_centre;
        self.open += o.open;
    }

    fn describe(&self) -> String {
        let n = self.tickets.max(1) as f64;
        let pct = |x: u64| format!("{:.1}%", 100.0 * x as f64 / n);
        format!(
            "tickets: {} ({} hotline, {} grid), {:.2} events per ticket\n\
             paths: straight {}, via a second centre {}, returned {}, extension {} (denied {}), \
             supervised {} (repeatedly {}), failed verification {}, late sign {}, late handling {}, \
             self-handled {}, duplicate {}, invalid/withdrawn {}, repeat complaint {}, open now {}",
            self.tickets,
            pct(self.hotline),
            pct(self.tickets - self.hotline),
            self.events as f64 / n,
            pct(self.straight),
            pct(self.via_centre),
            pct(self.returned),
            pct(self.extension),
            pct(self.extension_denied),
            pct(self.supervised),
            pct(self.supervised_repeat),
            pct(self.reworked),
            pct(self.late_sign),
            pct(self.late_handle),
            pct(self.self_handled),
            pct(self.duplicate),
            pct(self.invalid),
            pct(self.repeat_complaint),
            pct(self.open),
        )
    }
}

/// The ticket number the service gives: acceptance date (Asia/Shanghai) and serial.
pub(crate) fn number(at: chrono::DateTime<Utc>, serial: i64) -> String {
    format!(
        "{}-{serial:06}",
        at.with_timezone(&Shanghai).format("%Y%m%d")
    )
}

/// Appends one planned ticket, step by step, each step as its own command with
/// its actor (as the API would have), chained on the previous step's head. The
/// ticket-view row goes with the last step only: each append would overwrite the
/// previous one, so the stored row is the same and the seed writes less.
async fn append_plan(store: &Store, plan: TicketPlan) -> Result<()> {
    let mut version = 0;
    let mut head = GENESIS.to_string();
    let last = plan.steps.len().saturating_sub(1);
    for (i, step) in plan.steps.into_iter().enumerate() {
        let metadata = match &step.command {
            Some((actor, _, _)) => Metadata {
                actor: actor.user.clone(),
                role: actor.role.as_str().to_string(),
                unit: Some(actor.unit.clone()),
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                idempotency_key: None,
                request_id: None,
            },
            None => Metadata {
                actor: WATCHER.to_string(),
                role: WATCHER_ROLE.to_string(),
                unit: None,
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                idempotency_key: None,
                request_id: None,
            },
        };
        // The contact first, then the view (the order the service writes them in).
        let mut views: Vec<Arc<dyn ViewHandler>> = Vec::new();
        if let Some(c) = step.contact {
            views.push(Arc::new(c));
        }
        if i == last {
            views.push(Arc::new(view_row(&step.next)));
        }
        let req = AppendRequest {
            stream_id: plan.id,
            expected_version: version,
            prev_hash: Some(head),
            events: new_events(&step.events, step.at),
            metadata,
            idempotency: None,
            views,
        };
        let appended = store
            .append(req)
            .await
            .with_context(|| format!("appending to ticket {}", plan.id))?;
        version = appended.version;
        head = appended.head_hash;
    }
    Ok(())
}

/// `seed`: tickets until about `events` events are appended. The acceptance time
/// of each new ticket follows the share of events appended so far, so the year
/// fills evenly whatever the mean length of a history.
pub async fn seed(a: SeedArgs) -> Result<()> {
    crate::ceiling::ensure_local(&a.database_url)?;
    let app = yiwang::app::build_app(
        &a.database_url,
        Calendar::embedded(),
        SlaSettings::default(),
    )
    .await
    .context("opening the database")?;
    let store = app.store.clone();
    let world = Arc::new(World::new(app.org.get(), app.sla.clone(), Utc::now())?);
    eprintln!(
        "seed: {} events into {} ({}), {} tasks, tickets accepted {} .. {} (UTC)",
        a.events,
        store.engine(),
        yiwang::cli::redact(&a.database_url),
        a.clients,
        world.from,
        world.until
    );
    let planned = Arc::new(AtomicU64::new(0));
    let appended = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for k in 0..a.clients {
        let (store, serials, world, planned, appended) = (
            store.clone(),
            app.serials.clone(),
            world.clone(),
            planned.clone(),
            appended.clone(),
        );
        let target = a.events;
        let mut rng =
            StdRng::seed_from_u64(a.seed.wrapping_mul(1_000_003).wrapping_add(u64::from(k)));
        tasks.spawn(async move {
            let mut history = History::default();
            let mut counts = Counts::default();
            loop {
                let so_far = planned.load(Ordering::Relaxed);
                if so_far >= target {
                    break;
                }
                let at = world.accept_time(so_far as f64 / target as f64, &mut rng);
                let serial = serials.next().await?;
                let plan = plan_ticket(&world, &mut rng, at, number(at, serial), &mut history)?;
                let n = plan.events();
                planned.fetch_add(n as u64, Ordering::Relaxed);
                counts.add(&plan.traits, n);
                append_plan(&store, plan).await?;
                appended.fetch_add(n as u64, Ordering::Relaxed);
            }
            anyhow::Ok(counts)
        });
    }
    let progress = {
        let appended = appended.clone();
        let total = a.events;
        tokio::spawn(async move {
            let mut last = (Instant::now(), 0u64);
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let n = appended.load(Ordering::Relaxed);
                let dt = last.0.elapsed().as_secs_f64();
                eprintln!(
                    "seed: {n} / {total} events ({:.0} events/s over the last {dt:.0} s)",
                    (n - last.1) as f64 / dt.max(1e-9)
                );
                last = (Instant::now(), n);
            }
        })
    };
    let mut counts = Counts::default();
    let mut failed = None;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(c)) => counts.merge(&c),
            Ok(Err(e)) => {
                failed.get_or_insert(e);
                tasks.abort_all();
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => {
                failed.get_or_insert(anyhow::anyhow!("a seed task panicked: {e}"));
                tasks.abort_all();
            }
        }
    }
    progress.abort();
    if let Some(e) = failed {
        return Err(e);
    }
    let secs = started.elapsed().as_secs_f64();
    let n = appended.load(Ordering::Relaxed);
    println!("{}", counts.describe());
    println!(
        "seeded {n} events ({} tickets) in {secs:.1} s: {:.0} events/s",
        counts.tickets,
        n as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// A ticket reference of the import file.
fn reference(i: u64) -> String {
    format!("RX-2026-{i:06}")
}

/// `import-file`: the commands of simulated tickets as `yiwang import` lines
/// (the SLA watcher's events are not commands and are left out; the import's own
/// watcher-free history has none).
pub fn import_file(a: ImportFileArgs) -> Result<()> {
    let org = Arc::new(yiwang::org::model::demo());
    let sla = SlaPolicy::new(Calendar::embedded(), SlaSettings::default());
    let world = World::new(org, sla, Utc::now())?;
    let mut rng = StdRng::seed_from_u64(a.seed);
    let mut history = History::default();
    let file =
        std::fs::File::create(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut refs: std::collections::HashMap<Uuid, String> = std::collections::HashMap::new();
    let (mut lines, mut tickets, mut events) = (0u64, 0u64, 0u64);
    let mut counts = Counts::default();
    while lines < a.lines {
        let at = world.accept_time(lines as f64 / a.lines as f64, &mut rng);
        let plan = plan_ticket(
            &world,
            &mut rng,
            at,
            format!("import-{tickets}"),
            &mut history,
        )?;
        let r = reference(tickets);
        refs.insert(plan.id, r.clone());
        counts.add(&plan.traits, plan.events());
        for step in &plan.steps {
            let Some((actor, action, body)) = &step.command else {
                continue;
            };
            let mut body = body.clone();
            for field in ["related_to", "duplicate_of"] {
                if let Some(Value::String(s)) = body.get(field) {
                    let id = Uuid::parse_str(s).context("a planned ticket id")?;
                    match refs.get(&id) {
                        Some(r) => body[field] = json!(r),
                        None => bail!("ticket {id} named by {field} is not in the file"),
                    }
                }
            }
            let line = json!({
                "ticket": r,
                "at": step.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                "actor": {"user": actor.user, "role": actor.role.as_str(), "unit": actor.unit},
                "action": action,
                "body": body,
            });
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
            lines += 1;
            events += step.events.len() as u64;
        }
        tickets += 1;
    }
    out.flush()?;
    println!("{}", counts.describe());
    println!(
        "wrote {} lines ({tickets} tickets; {events} events when imported) to {}",
        lines,
        a.out.display()
    );
    Ok(())
}
