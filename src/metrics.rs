//! Prometheus metrics (the `prometheus` crate), one registry per process.

use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub http_requests: HistogramVec,
    pub append_seconds: HistogramVec,
    pub events_appended: IntCounterVec,
    pub calendar_missing_year: IntGaugeVec,
    pub projection_lag: GaugeVec,
    pub projection_leader: IntGaugeVec,
    pub projection_events: IntCounterVec,
    pub projection_batches: IntCounterVec,
    /// Retries answered with their first answer, by where it came from
    /// (`memory`: `app::answers`; `log`: the stored record).
    pub replays: IntCounterVec,
    pub open_tickets: IntGaugeVec,
    pub overdue_tickets: IntGaugeVec,
    /// When this process last finished verifying the log's hash chains (Unix time).
    pub verify_last_run: Gauge,
    /// 1 when that verification found nothing wrong.
    pub verify_last_ok: IntGauge,
    /// Edited, deleted and inserted events that verification found.
    pub verify_problems: IntGauge,
    /// Requests refused by a limit (`crate::http::limits`), by limit.
    pub limited: IntCounterVec,
    /// Open HTTP connections (`crate::http::server`).
    pub connections_open: IntGauge,
    /// Connections the server closed on its own, by reason.
    pub connections_closed: IntCounterVec,
    /// Rounds of the SLA watcher (`crate::sla::watcher`), by outcome.
    pub sla_rounds: IntCounterVec,
    /// Live SSE streams of this instance (`crate::http::events`).
    pub sse_subscribers: IntGauge,
    /// Database connections by pool and state (`in_use`, `idle`), set when
    /// `/metrics` is read from the pool's own counts (no query).
    pub db_connections: IntGaugeVec,
    /// The most connections each pool may open.
    pub db_max_connections: IntGaugeVec,
    /// When the open and overdue ticket gauges were last read from the database
    /// (`projections::gauges`): a scrape reads them again only when they are older
    /// than a few seconds, so scrapes cost the database at most one query per
    /// interval whoever sends them.
    pub ticket_gauges_read: std::sync::Arc<tokio::sync::Mutex<Option<std::time::Instant>>>,
}

/// The `method` label of a request: the methods the API and the pages use, or
/// `_OTHER`, so that a client inventing methods cannot add series.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "_OTHER",
    }
}

/// The revision this binary was built from (`build.rs`: `git rev-parse HEAD`, or
/// `unknown` outside a git checkout).
pub const REVISION: &str = env!("YIWANG_REVISION");

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let http_requests = HistogramVec::new(
            HistogramOpts::new(
                "yiwang_http_request_duration_seconds",
                "HTTP request latency (until the response head) by method, route template and status code",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route", "code"],
        )
        .expect("static metric definition is valid");
        let append_seconds = HistogramVec::new(
            HistogramOpts::new(
                "yiwang_append_duration_seconds",
                "Event store append latency (commit included)",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["engine"],
        )
        .expect("static metric definition is valid");
        let events_appended = IntCounterVec::new(
            Opts::new(
                "yiwang_events_appended_total",
                "Events appended, by event type",
            ),
            &["type"],
        )
        .expect("static metric definition is valid");
        let calendar_missing_year = IntGaugeVec::new(
            Opts::new(
                "yiwang_calendar_missing_year",
                "1 for a year whose deadlines fell back to weekends only (no calendar file)",
            ),
            &["year"],
        )
        .expect("static metric definition is valid");
        let projection_lag = GaugeVec::new(
            Opts::new(
                "yiwang_projection_lag_seconds",
                "Age of the oldest event a projection has not applied yet (0: caught up); set by the instance running it",
            ),
            &["projection"],
        )
        .expect("static metric definition is valid");
        let projection_leader = IntGaugeVec::new(
            Opts::new(
                "yiwang_projection_leader",
                "1 if this instance holds the projection's lease and runs it",
            ),
            &["projection"],
        )
        .expect("static metric definition is valid");
        let projection_events = IntCounterVec::new(
            Opts::new(
                "yiwang_projection_events_total",
                "Events applied by a projection in this instance",
            ),
            &["projection"],
        )
        .expect("static metric definition is valid");
        let projection_batches = IntCounterVec::new(
            Opts::new(
                "yiwang_projection_batches_total",
                "Batches a projection applied in this instance, one transaction each (events per batch: yiwang_projection_events_total over this)",
            ),
            &["projection"],
        )
        .expect("static metric definition is valid");
        let replays = IntCounterVec::new(
            Opts::new(
                "yiwang_idempotent_replays_total",
                "Ticket commands retried with the same Idempotency-Key and answered with their first answer, by where it came from: memory (this instance answered it minutes ago) or log (the stored record, the ticket rendered at its version)",
            ),
            &["from"],
        )
        .expect("static metric definition is valid");
        let open_tickets = IntGaugeVec::new(
            Opts::new(
                "yiwang_open_tickets",
                "Tickets with a unit and not yet handled, by unit (refreshed when /metrics is read)",
            ),
            &["unit"],
        )
        .expect("static metric definition is valid");
        let overdue_tickets = IntGaugeVec::new(
            Opts::new(
                "yiwang_overdue_tickets",
                "Open tickets past their handle deadline, by unit (refreshed when /metrics is read)",
            ),
            &["unit"],
        )
        .expect("static metric definition is valid");
        let verify_last_run = Gauge::new(
            "yiwang_verify_last_run_timestamp_seconds",
            "When this instance last finished verifying the event log's hash chains (0: not yet)",
        )
        .expect("static metric definition is valid");
        let verify_last_ok = IntGauge::new(
            "yiwang_verify_last_ok",
            "1 if the last verification of the event log found every hash chain intact (0 also before the first)",
        )
        .expect("static metric definition is valid");
        let verify_problems = IntGauge::new(
            "yiwang_verify_problems",
            "Edited, deleted or inserted events found by the last verification",
        )
        .expect("static metric definition is valid");
        let limited = IntCounterVec::new(
            Opts::new(
                "yiwang_http_limited_total",
                "Requests refused by a limit: 429 for per_token, per_ip, sse_instance and sse_token; 503 for timeout",
            ),
            &["limit"],
        )
        .expect("static metric definition is valid");
        let connections_open = IntGauge::new(
            "yiwang_http_connections_open",
            "Open HTTP connections of this instance",
        )
        .expect("static metric definition is valid");
        let connections_closed = IntCounterVec::new(
            Opts::new(
                "yiwang_http_connections_closed_total",
                "Connections the server closed by itself: header_timeout (a request head too slow), idle_timeout (kept alive with no request), per_address_cap (over the open connections one address may hold; closed on accept)",
            ),
            &["reason"],
        )
        .expect("static metric definition is valid");
        let sla_rounds = IntCounterVec::new(
            Opts::new(
                "yiwang_sla_watcher_rounds_total",
                "Rounds of this instance's SLA watcher: done, failed (the tickets could not be listed) or panicked",
            ),
            &["outcome"],
        )
        .expect("static metric definition is valid");
        let sse_subscribers = IntGauge::new(
            "yiwang_sse_subscribers",
            "Live event streams (SSE) this instance is serving",
        )
        .expect("static metric definition is valid");
        let db_connections = IntGaugeVec::new(
            Opts::new(
                "yiwang_db_pool_connections",
                "Database connections of this instance's pools by state: in_use (lent to a query or transaction) or idle; pool: sqlite_readers or postgres (SQLite's single writer connection is outside any pool)",
            ),
            &["pool", "state"],
        )
        .expect("static metric definition is valid");
        let db_max_connections = IntGaugeVec::new(
            Opts::new(
                "yiwang_db_pool_max_connections",
                "The most connections a pool of this instance may open (YIWANG_SQLITE_READERS, YIWANG_PG_POOL)",
            ),
            &["pool"],
        )
        .expect("static metric definition is valid");
        let build_info = IntGaugeVec::new(
            Opts::new(
                "yiwang_build_info",
                "1, labelled with the version of this binary and the git revision it was built from",
            ),
            &["version", "revision"],
        )
        .expect("static metric definition is valid");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), REVISION])
            .set(1);
        // Registering distinct names in a fresh registry cannot fail.
        registry
            .register(Box::new(http_requests.clone()))
            .expect("fresh registry");
        registry
            .register(Box::new(append_seconds.clone()))
            .expect("fresh registry");
        registry
            .register(Box::new(events_appended.clone()))
            .expect("fresh registry");
        registry
            .register(Box::new(calendar_missing_year.clone()))
            .expect("fresh registry");
        for c in [
            Box::new(projection_lag.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(projection_leader.clone()),
            Box::new(projection_events.clone()),
            Box::new(projection_batches.clone()),
            Box::new(replays.clone()),
            Box::new(open_tickets.clone()),
            Box::new(overdue_tickets.clone()),
            Box::new(verify_last_run.clone()),
            Box::new(verify_last_ok.clone()),
            Box::new(verify_problems.clone()),
            Box::new(limited.clone()),
            Box::new(connections_open.clone()),
            Box::new(connections_closed.clone()),
            Box::new(sla_rounds.clone()),
            Box::new(sse_subscribers.clone()),
            Box::new(crate::store::RETRIED_ONE_BY_ONE.clone()),
            Box::new(crate::store::batching::BATCH_REQUESTS.clone()),
            Box::new(crate::store::batching::BATCH_SECONDS.clone()),
            Box::new(db_connections.clone()),
            Box::new(db_max_connections.clone()),
            Box::new(build_info),
        ] {
            registry.register(c).expect("fresh registry");
        }
        // process_cpu_seconds_total, process_resident_memory_bytes,
        // process_open_fds, process_start_time_seconds… read from /proc at each
        // scrape.
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("fresh registry");
        Metrics {
            registry,
            http_requests,
            append_seconds,
            events_appended,
            calendar_missing_year,
            projection_lag,
            projection_leader,
            projection_events,
            projection_batches,
            replays,
            open_tickets,
            overdue_tickets,
            verify_last_run,
            verify_last_ok,
            verify_problems,
            limited,
            connections_open,
            connections_closed,
            sla_rounds,
            sse_subscribers,
            db_connections,
            db_max_connections,
            ticket_gauges_read: Default::default(),
        }
    }

    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
