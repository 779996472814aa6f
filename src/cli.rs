//! The one binary's subcommands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::app::App;
use crate::auth::{self, Role};
use crate::org;
use crate::sla::{Calendar, SlaSettings};
use crate::store;

mod serve;
mod user;

use serve::{healthcheck, serve};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://./yiwang-data/yiwang.db";

/// How the service writes its log lines (standard error): one JSON object a line
/// (for a collector) or readable text. A value outside these is refused when the
/// command line is read, naming both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Parser, Debug)]
#[command(
    name = "yiwang",
    version,
    about = "yiwang (一网): ticket dispatch for grid governance and the 12345 hotline"
)]
pub struct Cli {
    /// Database: sqlite://PATH (embedded default) or postgres://…
    #[arg(long, global = true, env = "YIWANG_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// Log format: json (default) or pretty.
    #[arg(long, global = true, env = "YIWANG_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,

    /// A TOML file of settings (README: "Configuration"): each key is an
    /// environment variable's name without `YIWANG_`, in lower case. A flag or an
    /// environment variable overrides it.
    #[arg(long, global = true, env = "YIWANG_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// PostgreSQL connections per instance [default: 32].
    #[arg(long, global = true, env = "YIWANG_PG_POOL", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub pg_pool: Option<u32>,

    /// PostgreSQL connections that append (each writes whatever commands are
    /// waiting in one statement) [default: 4].
    #[arg(long, global = true, env = "YIWANG_PG_WRITERS", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub pg_writers: Option<u32>,

    /// SQLite reader connections (there is one writer) [default: 8].
    #[arg(long, global = true, env = "YIWANG_SQLITE_READERS", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub sqlite_readers: Option<u32>,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The store reads its connection counts from the environment when it opens
    /// (`store::sqlite`, `store::postgres`): a count given as a flag is put there.
    ///
    /// Call it from `main` before the runtime or any other thread is started (as
    /// `config::load`), since it sets environment variables.
    pub fn export_connection_settings(&self) {
        for (var, value) in [
            ("YIWANG_PG_POOL", self.pg_pool),
            ("YIWANG_PG_WRITERS", self.pg_writers),
            ("YIWANG_SQLITE_READERS", self.sqlite_readers),
        ] {
            if let Some(n) = value {
                // SAFETY: called from `main` before any other thread exists, so
                // nothing reads the environment concurrently.
                unsafe { std::env::set_var(var, n.to_string()) };
            }
        }
    }
}

/// A role on the command line: the names `Role::as_str` gives, and no other (clap
/// refuses anything else with exit code 2, listing them).
impl clap::ValueEnum for Role {
    fn value_variants<'a>() -> &'a [Self] {
        &Role::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

// One `Command` is parsed per process, at start: the size of `Serve`'s settings
// costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP service (applies pending migrations first; none pending, it
    /// leaves the schema alone, so a role that may not change it can run it).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Organisation and category catalogue.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Bearer tokens for users.
    #[command(subcommand)]
    Token(TokenCommand),
    /// People who sign in to the pages with a user name and password.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Reporters' contact details (personal data, kept outside the event log).
    #[command(subcommand)]
    Contacts(ContactsCommand),
    /// Import legacy history: one command per line (JSON), each decided as the live
    /// API would at the line's time; a ticket with a bad line is not imported.
    Import(crate::import::ImportArgs),
    /// Check the whole database: every stream's hash chain, positions, each ticket
    /// view against its events, the log against the tally its appends kept (and,
    /// with --anchor, against an anchor kept outside the database); report each
    /// problem with its stream, version and position; exit 1 when any is found.
    Verify(VerifyArgs),
    /// Write the whole database (event log, ticket views, reference data, tokens as
    /// their hashes, contacts, idempotency and attachment records; not the photos) to
    /// a portable NDJSON archive with a checksum, as of one instant, while services
    /// keep running (README: "Backup and restore").
    Export(crate::backup::ExportArgs),
    /// Load an archive made by `yiwang export` (from either engine) into a fresh
    /// database: all or nothing, positions and hashes kept; then verify the hash
    /// chains and rebuild the projections.
    Restore(crate::backup::RestoreArgs),
    /// The configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Exit 0 when the service answers its readiness probe (`GET /readyz`) with
    /// 200, 1 otherwise (no answer, 503 while it drains or cannot reach its
    /// database): a container's HEALTHCHECK, with no curl in the image.
    Healthcheck(HealthcheckArgs),
    /// Rebuild projections from the event log, from position 0 (takes over the
    /// projection's lease from any running `serve` until it is done).
    Replay {
        /// Only this projection (default: all).
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new([
            crate::projections::unit_stats::NAME,
            crate::projections::people::NAME,
        ]))]
        projection: Option<String>,
        /// Directory of calendar year files; default: the calendar built into the binary.
        #[arg(long, env = "YIWANG_CALENDAR_DIR")]
        calendar_dir: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct HealthcheckArgs {
    /// The URL to ask (http only); default: /readyz on the address `serve`
    /// listens on (YIWANG_ADDR), 127.0.0.1 or ::1 for an unspecified one.
    #[arg(long)]
    pub url: Option<String>,
    /// The address `serve` listens on, when no --url is given.
    #[arg(long, env = "YIWANG_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Seconds to wait for the whole answer.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout_secs: u64,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// A file of anchors (`serve --anchor-file`, one JSON object per line): the
    /// events at or below the last anchor's position must still be exactly those
    /// it counted.
    #[arg(long, value_name = "FILE")]
    pub anchor: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the settings `yiwang serve` would run with (flags given here are not
    /// considered: the environment, the file and the defaults), each with where it
    /// came from, secrets hidden; exit 1 on a bad value.
    Check,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "YIWANG_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Serve /metrics on this address only (e.g. 0.0.0.0:9090, a port the public
    /// does not reach), and no longer on --addr; unset: /metrics on --addr.
    #[arg(long, env = "YIWANG_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Directory of calendar year files; default: the calendar built into the binary.
    #[arg(long, env = "YIWANG_CALENDAR_DIR")]
    pub calendar_dir: Option<PathBuf>,
    /// Working days to redo a ticket after a failed verification.
    #[arg(long, env = "YIWANG_REWORK_DAYS", default_value_t = 3)]
    pub rework_days: u32,
    /// Seconds between two rounds of the SLA watcher (SlaWarning / SlaBreached).
    #[arg(long, env = "YIWANG_SLA_INTERVAL_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub sla_interval_secs: u64,
    /// The fraction of a deadline's time after which the SLA watcher warns (0.8 = at 80%).
    #[arg(long, env = "YIWANG_SLA_WARN_FRACTION", default_value = "0.8",
          value_parser = crate::sla::watcher::parse_warn_fraction)]
    pub sla_warn_fraction: f64,
    /// Test and drill setting: business time = the system time shifted by this many
    /// seconds (negative: into the past), so SLA deadlines can be reached without
    /// waiting days. Never set it in production; a non-zero value is logged as a warning.
    #[arg(
        long,
        env = "YIWANG_CLOCK_OFFSET_SECS",
        default_value_t = 0,
        allow_negative_numbers = true,
        hide = true
    )]
    pub clock_offset_secs: i64,
    /// Directory of uploaded photos (content-addressed files); default: `attachments/`
    /// next to the SQLite file, or ./yiwang-data/attachments for PostgreSQL.
    #[arg(long, env = "YIWANG_ATTACHMENT_DIR")]
    pub attachment_dir: Option<PathBuf>,
    /// Largest accepted photo, in bytes (larger uploads get a 413).
    #[arg(long, env = "YIWANG_ATTACHMENT_MAX_BYTES", default_value_t = crate::attachments::DEFAULT_MAX_BYTES,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub attachment_max_bytes: u64,
    /// Seconds between two verifications of the log's hash chains in the background
    /// (the first at start; 0: none). The outcome is in /metrics (yiwang_verify_*).
    #[arg(long, env = "YIWANG_VERIFY_INTERVAL_SECS", default_value_t = 3600)]
    pub verify_interval_secs: u64,
    /// A file every background verification appends its anchor to (one JSON line:
    /// the log's count, digest and stream heads at a position nothing can be
    /// appended below any more). Keep it off the database's host; `yiwang verify
    /// --anchor FILE` checks the database against its last line.
    #[arg(long, env = "YIWANG_ANCHOR_FILE", value_name = "PATH")]
    pub anchor_file: Option<PathBuf>,
    /// Requests per second one bearer token may send (0: no limit); over it, a 429
    /// with Retry-After.
    #[arg(long, env = "YIWANG_RATE_LIMIT_PER_TOKEN", default_value_t = crate::http::limits::DEFAULT_PER_TOKEN)]
    pub rate_limit_per_token: u32,
    /// Requests one token may send at once before its rate applies.
    #[arg(long, env = "YIWANG_RATE_LIMIT_PER_TOKEN_BURST", default_value_t = crate::http::limits::DEFAULT_PER_TOKEN_BURST)]
    pub rate_limit_per_token_burst: u32,
    /// Requests per second one client address may send without a valid token
    /// (pages, Open311, failed authentications; 0: no limit).
    #[arg(long, env = "YIWANG_RATE_LIMIT_PER_IP", default_value_t = crate::http::limits::DEFAULT_PER_IP)]
    pub rate_limit_per_ip: u32,
    /// Requests one address may send at once before its rate applies.
    #[arg(long, env = "YIWANG_RATE_LIMIT_PER_IP_BURST", default_value_t = crate::http::limits::DEFAULT_PER_IP_BURST)]
    pub rate_limit_per_ip_burst: u32,
    /// The longest a request may take before it is answered 503 (the SSE stream is
    /// not bounded; a photo upload gets ten times as long).
    #[arg(long, env = "YIWANG_REQUEST_TIMEOUT_SECS", default_value_t = crate::http::limits::DEFAULT_REQUEST_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,
    /// Live SSE subscribers per instance (0: no cap); beyond it, a 429.
    #[arg(long, env = "YIWANG_MAX_SSE_SUBSCRIBERS", default_value_t = crate::http::limits::DEFAULT_MAX_SSE_SUBSCRIBERS)]
    pub max_sse_subscribers: usize,
    /// Live SSE subscribers per token (0: no cap); beyond it, a 429.
    #[arg(long, env = "YIWANG_MAX_SSE_PER_TOKEN", default_value_t = crate::http::limits::DEFAULT_MAX_SSE_PER_TOKEN)]
    pub max_sse_per_token: usize,
    /// Seconds a client has to send a request's head (request line and headers),
    /// from the connection's start or the head's first byte; past it the connection
    /// is closed (slow-header clients).
    #[arg(long, env = "YIWANG_HEADER_TIMEOUT_SECS", default_value_t = crate::http::server::DEFAULT_HEADER_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_secs: u64,
    /// Seconds a kept-alive connection may wait for its next request before it is
    /// closed.
    #[arg(long, env = "YIWANG_IDLE_TIMEOUT_SECS", default_value_t = crate::http::server::DEFAULT_IDLE_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout_secs: u64,
    /// Open connections one client address may hold (0: no cap); a connection
    /// beyond it is closed as soon as it is accepted.
    #[arg(long, env = "YIWANG_MAX_CONNECTIONS_PER_IP", default_value_t = crate::http::server::DEFAULT_MAX_CONNECTIONS_PER_IP)]
    pub max_connections_per_ip: usize,
    /// Seconds between SIGTERM (or SIGINT) and closing the listener: /readyz
    /// answers 503 at once while every request is still served, so that load
    /// balancers take the instance out first (0: close at once, as behind
    /// Kubernetes with a preStop sleep).
    #[arg(long, env = "YIWANG_SHUTDOWN_DRAIN_SECS", default_value_t = crate::http::server::DEFAULT_SHUTDOWN_DRAIN_SECS,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_drain_secs: u64,
    /// Seconds the requests in flight get to finish once the listener is closed
    /// (live SSE streams get a `close` event and end at its start); then the
    /// process exits whatever is left.
    #[arg(long, env = "YIWANG_SHUTDOWN_GRACE_SECS", default_value_t = crate::http::server::DEFAULT_SHUTDOWN_GRACE_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub shutdown_grace_secs: u64,
    /// Open311: answer `GET requests*` without an api_key, with GeoReport's public
    /// fields (no reporter; phones, ID numbers and e-mails masked in the
    /// description) for every request of the district. Off by default: complaints
    /// carry personal details (README: "Open311").
    #[arg(long, env = "YIWANG_OPEN311_PUBLIC_READS")]
    pub open311_public_reads: bool,
    /// Open311: the jurisdiction_id this endpoint serves; a request naming another
    /// gets a 400. Unset: any jurisdiction_id is accepted and ignored.
    #[arg(long, env = "YIWANG_OPEN311_JURISDICTION", value_name = "ID")]
    pub open311_jurisdiction: Option<String>,
    /// Origins (comma-separated, https://host[:port]) whose pages may read /api/v1
    /// (GET, CORS); none by default. /open311/ answers any origin.
    #[arg(long, env = "YIWANG_CORS_ORIGINS", value_name = "ORIGINS", value_delimiter = ',',
          value_parser = crate::http::cors::parse_origin)]
    pub cors_origins: Vec<String>,
    /// The map's tile server, a URL template with {z}, {x} and {y} (e.g. a
    /// government tile server's https://tiles.example.gov.cn/{z}/{x}/{y}.png). Unset:
    /// the map draws the tickets on a plain background with the units' boundaries
    /// from the organisation file, with no internet.
    #[arg(long, env = "YIWANG_MAP_TILES", value_name = "URL_TEMPLATE",
          value_parser = crate::http::map::parse_tiles)]
    pub map_tiles: Option<String>,
}

impl ServeArgs {
    /// The request limits these flags set.
    pub fn limits(&self) -> crate::http::limits::Settings {
        crate::http::limits::Settings {
            per_token: self.rate_limit_per_token,
            per_token_burst: self.rate_limit_per_token_burst,
            per_ip: self.rate_limit_per_ip,
            per_ip_burst: self.rate_limit_per_ip_burst,
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            max_sse_subscribers: self.max_sse_subscribers,
            max_sse_per_token: self.max_sse_per_token,
        }
    }

    /// The edge settings these flags set (Open311, CORS).
    pub fn edge(&self) -> crate::http::Edge {
        crate::http::Edge {
            open311: crate::http::open311::Settings {
                public_reads: self.open311_public_reads,
                jurisdiction: self
                    .open311_jurisdiction
                    .as_deref()
                    .map(str::trim)
                    .filter(|j| !j.is_empty())
                    .map(str::to_string),
            },
            cors: crate::http::cors::Settings {
                origins: self
                    .cors_origins
                    .iter()
                    .filter(|o| !o.is_empty())
                    .cloned()
                    .collect(),
            },
            metrics_elsewhere: self.metrics_addr.is_some(),
            map: crate::http::map::Settings {
                tiles: self.map_tiles.clone().filter(|t| !t.is_empty()),
            },
        }
    }

    /// The connection limits these flags set.
    pub fn connections(&self) -> crate::http::server::Settings {
        crate::http::server::Settings {
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            max_connections_per_ip: self.max_connections_per_ip,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Validate an organisation file and make it the current one (a bad file changes nothing).
    Load {
        /// The JSON file (see schema/reference/demo-org.json).
        file: Option<PathBuf>,
        /// Load the Weihai ETDZ demo set shipped in the binary.
        #[arg(long, conflicts_with = "file")]
        demo: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token; prints it once, as the last line.
    Create {
        #[arg(long)]
        user: String,
        /// What the token may do.
        #[arg(long, value_enum)]
        role: Role,
        /// The user's unit code (admin defaults to the root unit).
        #[arg(long)]
        unit: Option<String>,
        /// The token stops working after this long: a whole number and a unit, s,
        /// m, h or d (90d, 12h, 30m), at most 365d. Without it the token does not
        /// expire (revoke it when it is no longer needed).
        #[arg(long, value_name = "DURATION", value_parser = crate::auth::parse_expires_in)]
        expires_in: Option<chrono::Duration>,
    },
    /// List tokens (never the secrets).
    List,
    /// Revoke a token by its id.
    Revoke { id: String },
}

#[derive(Subcommand, Debug)]
pub enum ContactsCommand {
    /// Erase the name and phone of contacts created more than DAYS ago (the event log
    /// is not touched); also deletes stored answers to requests older than that.
    Purge {
        /// The retention period in days.
        #[arg(long, value_name = "DAYS")]
        older_than: u32,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(&cli.database_url, args).await,
        Command::Migrate => {
            store::open(&cli.database_url, true).await?;
            println!("migrations applied to {}", redact(&cli.database_url));
            Ok(())
        }
        Command::Org(OrgCommand::Load { file, demo }) => {
            let (text, source) = match (file, demo) {
                (_, true) => (
                    include_str!("../schema/reference/demo-org.json").to_string(),
                    "schema/reference/demo-org.json".to_string(),
                ),
                (Some(f), false) => (
                    std::fs::read_to_string(&f)
                        .with_context(|| format!("cannot read {}", f.display()))?,
                    f.display().to_string(),
                ),
                (None, false) => {
                    anyhow::bail!("name an organisation file, or --demo for the demo set")
                }
            };
            let s = store::open(&cli.database_url, true).await?;
            match org::save(&s.pool(), &text, &source).await? {
                Ok(o) => {
                    println!(
                        "loaded {source}: {} units, {} categories",
                        o.units().len(),
                        o.categories().len()
                    );
                    Ok(())
                }
                Err(problems) => {
                    for p in &problems {
                        eprintln!("{p}");
                    }
                    anyhow::bail!(
                        "{} problem(s) in {source}; nothing was loaded",
                        problems.len()
                    )
                }
            }
        }
        Command::Token(cmd) => token(&cli.database_url, cmd).await,
        Command::User(cmd) => user::run(&cli.database_url, cmd).await,
        Command::Contacts(ContactsCommand::Purge { older_than }) => {
            purge_contacts(&cli.database_url, older_than).await
        }
        Command::Import(args) => crate::import::run(&cli.database_url, args).await,
        Command::Verify(args) => verify(&cli.database_url, args.anchor.as_deref()).await,
        Command::Config(ConfigCommand::Check) => crate::config::check(Cli::command()),
        Command::Healthcheck(args) => healthcheck(&args).await,
        Command::Export(args) => crate::backup::export(&cli.database_url, &args).await,
        Command::Restore(args) => restore(&cli.database_url, args).await,
        Command::Replay {
            projection,
            calendar_dir,
        } => replay(&cli.database_url, projection.as_deref(), calendar_dir).await,
    }
}

/// `yiwang restore`: the archive in, its chains verified, the projections rebuilt
/// (unless `--skip-projections`); an error (exit code 1) when the restored log does
/// not verify (events are copied as they are: the exported log did not verify).
async fn restore(url: &str, args: crate::backup::RestoreArgs) -> anyhow::Result<()> {
    let restored = crate::backup::restore(url, &args).await?;
    if args.skip_projections {
        println!("projections left empty: `yiwang serve` or `yiwang replay` rebuilds them");
    } else {
        replay(url, None, args.calendar_dir.clone()).await?;
    }
    anyhow::ensure!(
        restored.verify.ok(),
        "the archive was restored, but its log does not verify: {} problem(s) listed above \
         (they were in the exported database)",
        restored.verify.problems.len()
    );
    Ok(())
}

/// `yiwang replay`: empties each chosen projection and applies the whole log again,
/// with a progress bar (events/s, ETA) on a terminal and a summary line per projection.
async fn replay(
    url: &str,
    only: Option<&str>,
    calendar_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let calendar = match &calendar_dir {
        Some(d) => Calendar::from_dir(d)?,
        None => Calendar::embedded(),
    };
    let app = crate::app::build_app(url, calendar, SlaSettings::default()).await?;
    let all = crate::projections::all(&app.projection_handles());
    let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
    if let Some(n) = only
        && !names.contains(&n)
    {
        anyhow::bail!(
            "no projection {n:?}; the projections are: {}",
            names.join(", ")
        );
    }
    let total = crate::projections::count_events(&app.store.pool()).await?;
    let owner = format!("replay:{}", std::process::id());
    for p in all.iter().filter(|p| only.is_none_or(|n| n == p.name())) {
        let mut lease = crate::projections::Lease::new(app.store.pool(), p.name(), &owner);
        lease.acquire(true).await?;
        let started = std::time::Instant::now();
        let bar = indicatif::ProgressBar::new(total.max(0) as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:40}] {human_pos}/{human_len} events, {per_sec}, ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(p.name());
        let progress_bar = bar.clone();
        let applied = crate::projections::rebuild_holding_lease(
            &app.store,
            p.as_ref(),
            &owner,
            true,
            &move |n| progress_bar.set_position(n),
        )
        .await?;
        bar.finish_and_clear();
        lease.release().await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{}: rebuilt from {applied} events in {secs:.2} s ({:.0} events/s)",
            p.name(),
            applied as f64 / secs.max(1e-9)
        );
    }
    Ok(())
}

/// `yiwang verify`: each problem on its own line, then the summary and the anchor
/// taken; an error (exit code 1) when anything was found.
async fn verify(url: &str, anchor: Option<&std::path::Path>) -> anyhow::Result<()> {
    let kept = anchor.map(crate::verify::Anchor::last_in).transpose()?;
    let s = store::open(url, true).await?;
    let report = crate::verify::run_against(&s.pool(), kept.as_ref()).await?;
    for p in &report.problems {
        println!("{p}");
    }
    println!("{}", report.summary());
    if let Some(k) = &kept
        && report.ok()
    {
        println!(
            "the events at or below position {} match the anchor kept",
            k.position
        );
    }
    if let Some(a) = &report.anchor {
        println!("anchor {}", serde_json::to_string(a)?);
    }
    anyhow::ensure!(
        report.ok(),
        "the event log was tampered with: {} problem(s) listed above",
        report.problems.len()
    );
    Ok(())
}

async fn purge_contacts(url: &str, days: u32) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let cutoff = now
        .checked_sub_signed(chrono::Duration::days(i64::from(days)))
        .context("--older-than reaches before the start of time")?;
    let s = store::open(url, true).await?;
    let purged = crate::repo::contacts::purge_created_before(&s.pool(), cutoff, now).await?;
    println!(
        "purged {} contact(s) created before {}; deleted {} idempotency record(s) older than that",
        purged.contacts,
        crate::store::hash::rfc3339(cutoff),
        purged.idempotency_records
    );
    Ok(())
}

async fn token(url: &str, cmd: TokenCommand) -> anyhow::Result<()> {
    let s = store::open(url, true).await?;
    let pool = s.pool();
    match cmd {
        TokenCommand::Create {
            user,
            role,
            unit,
            expires_in,
        } => {
            let user = user.trim();
            anyhow::ensure!(
                !user.is_empty() && user.len() <= 100,
                "--user must be 1 to 100 characters"
            );
            let o = org::current_or_demo(&pool).await?;
            let unit = user::resolve_unit(&o, role, unit)?;
            let expires_at = expires_in
                .map(|d| {
                    chrono::Utc::now()
                        .checked_add_signed(d)
                        .context("--expires-in reaches past the end of time")
                })
                .transpose()?;
            let (id, token) =
                auth::create_token_expiring(&pool, user, role, &unit, expires_at).await?;
            let expiry = match expires_at {
                Some(at) => format!("expires at {}", crate::store::hash::rfc3339(at)),
                None => "does not expire".to_string(),
            };
            eprintln!(
                "token {id} for {user} ({}, {unit}), {expiry}; shown once, store it now:",
                role.as_str()
            );
            println!("{token}");
        }
        TokenCommand::List => {
            // id, user, role, unit, created, state (active, expired, or when it was
            // revoked), expiry (never, or when).
            let now = chrono::Utc::now();
            for t in auth::list_tokens(&pool).await? {
                let expired = t.expires_at.as_deref().is_some_and(|at| {
                    chrono::DateTime::parse_from_rfc3339(at).map_or(true, |at| at <= now)
                });
                let state = match (&t.revoked_at, expired) {
                    (Some(at), _) => at.as_str(),
                    (None, true) => "expired",
                    (None, false) => "active",
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.user,
                    t.role,
                    t.unit,
                    t.created_at,
                    state,
                    t.expires_at.as_deref().unwrap_or("never")
                );
            }
        }
        TokenCommand::Revoke { id } => {
            anyhow::ensure!(
                auth::revoke_token(&pool, &id).await?,
                "no active token with id {id}"
            );
            println!("revoked {id}");
        }
    }
    Ok(())
}

/// Hides a password in a database URL for printing.
pub fn redact(url: &str) -> String {
    crate::config::redact_url(url)
}
