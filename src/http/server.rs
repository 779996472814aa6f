//! The HTTP/1.1 server loop: hyper directly, rather than `axum::serve`, so that each
//! connection is bounded in time and each client address in connections.
//!
//! - **Header timeout** ([`Settings::header_timeout`]): a request's head (request
//!   line and headers) must arrive whole within this time, counted from the
//!   connection's acceptance for its first request and from the first byte for each
//!   later one; otherwise the connection is closed (a "slowloris" client that sends a
//!   byte now and then holds a connection for this long, no longer).
//! - **Idle timeout** ([`Settings::idle_timeout`]): a kept-alive connection with no
//!   request in flight and no byte of a new one is closed after this long.
//! - **Connections per client address** ([`Settings::max_connections_per_ip`]): a
//!   connection beyond the cap is closed as soon as it is accepted, before anything
//!   is read from it.
//!
//! Neither timer runs while a request is in flight (from its head's arrival until
//! its response body is finished): a slow request is bounded by the request timeout
//! (`limits::bound_time`), and the live SSE stream by its token (`http::events`).
//!
//! Why not hyper's own `http1::Builder::header_read_timeout` (hyper 1.12): its timer
//! starts whenever the connection begins waiting for a request head, which includes
//! the wait on an idle kept-alive connection right after a response (hyper sets
//! `notify_read` when it goes idle so that the timer starts at once). It therefore
//! closes an idle connection after the *header* timeout, and one setting could not
//! be short for slow heads and longer for idle keep-alive. So both are measured
//! here, by a watchdog per connection that ticks a few times per timeout.
//!
//! **Shutdown** ([`Shutdown`], driven by `yiwang serve` on SIGTERM or SIGINT): first
//! a drain (`--shutdown-drain-secs`), in which `/readyz` answers 503 while
//! everything is still accepted and served, so load balancers take the instance out
//! before any connection is refused; then the listener closes, live SSE streams
//! send a `close` event and end, and each connection finishes its request in flight
//! and closes, for at most `--shutdown-grace-secs`; then the process exits.
//!
//! Closed connections are counted in `yiwang_http_connections_closed_total{reason}`
//! (`header_timeout`, `idle_timeout`, `per_address_cap`); open ones in
//! `yiwang_http_connections_open`.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::metrics::Metrics;

/// Seconds a client has to send a whole request head. Ten seconds is ample for a
/// phone on a poor network (a head is a few hundred bytes, sent in one packet or
/// two) and closes a slow-header connection quickly.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// Seconds an idle kept-alive connection stays open. Long enough that a browser
/// page or an API client polling every few tens of seconds reuses its connection
/// (browsers keep theirs for about 60 to 300 s), short enough that idle sockets do
/// not pile up.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// Open connections one client address may hold. Twice the load harness's largest
/// client count (`yiwang-load run --clients 1024`, one connection each, all from
/// 127.0.0.1); a reverse proxy in front of yiwang is one address too, so keep it
/// above the proxy's connection pool.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 2048;

/// Seconds between SIGTERM and the moment `serve` stops accepting connections: in
/// them `/readyz` answers 503 while every request is still served, so that a load
/// balancer probing it takes the instance out before a connection can be refused.
/// Five seconds covers a probe every 2 s failing twice (HAProxy's `fall 2`, a
/// Kubernetes readiness probe every 5 s with the endpoint removal that the pod's
/// deletion starts at once), with the next probe's own time.
pub const DEFAULT_SHUTDOWN_DRAIN_SECS: u64 = 5;
/// Seconds the requests in flight get to finish once `serve` stops accepting (live
/// SSE streams are ended at its start, with a `close` event). Ten seconds is
/// dozens of times the slowest p99 that BENCHMARKS.md measured (commands at
/// saturation about 0.1 s, the appraisal and the overdue list 0.16 s at most) and
/// keeps drain and grace (15 s) inside the stop timeouts that deploy/ sets (compose
/// 20 s, systemd 20 s, Kubernetes 30 s). A request still running after it is cut
/// off (a large photo upload on a slow link, whose own timeout is ten times the
/// request timeout).
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 10;

/// The steps of `serve`'s graceful shutdown, which `/readyz`, the SSE stream and
/// the connection loop follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Serving.
    Serving,
    /// Asked to stop (SIGTERM): `/readyz` answers 503, everything else is served
    /// as before, new connections included, while load balancers notice.
    Draining,
    /// No longer accepting: each connection finishes its request in flight and
    /// closes, and live SSE streams send a last `close` event and end.
    Closing,
}

/// The shared state of a graceful shutdown: `serve` moves it forward, the routes
/// read it (an axum `Extension`; a router without one never shuts down).
#[derive(Clone, Debug)]
pub struct Shutdown {
    phase: Arc<tokio::sync::watch::Sender<Phase>>,
    retry_after_secs: u64,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new(DEFAULT_SHUTDOWN_DRAIN_SECS + DEFAULT_SHUTDOWN_GRACE_SECS)
    }
}

impl Shutdown {
    /// `retry_after_secs`: what `/readyz` puts in `Retry-After` while stopping
    /// (the instance is gone by then; its replacement should be up).
    pub fn new(retry_after_secs: u64) -> Shutdown {
        Shutdown {
            phase: Arc::new(tokio::sync::watch::Sender::new(Phase::Serving)),
            retry_after_secs: retry_after_secs.max(1),
        }
    }

    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Draining or closing: `/readyz` says 503.
    pub fn is_stopping(&self) -> bool {
        self.phase() != Phase::Serving
    }

    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after_secs
    }

    /// SIGTERM: start draining (once; a later call changes nothing).
    pub fn drain(&self) {
        self.phase.send_if_modified(|p| {
            let first = *p == Phase::Serving;
            if first {
                *p = Phase::Draining;
            }
            first
        });
    }

    /// Stop accepting and end live streams.
    pub fn close(&self) {
        self.phase.send_replace(Phase::Closing);
    }

    /// Completes once [`Shutdown::close`] has been called.
    pub async fn closing(&self) {
        let mut rx = self.phase.subscribe();
        // The sender lives as long as `self`: waiting cannot fail.
        let _ = rx.wait_for(|p| *p == Phase::Closing).await;
    }
}

/// The connection limits of [`serve`].
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// The longest a request head may take to arrive.
    pub header_timeout: Duration,
    /// The longest a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Open connections per client address; 0: no cap.
    pub max_connections_per_ip: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            header_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS),
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting,
/// asks every connection to finish its request in flight and close, and returns
/// once all are closed (a live SSE stream never finishes by itself: the caller
/// bounds that wait). Each request carries `ConnectInfo<SocketAddr>` (the
/// per-address rate limit reads it).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: Settings,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let per_ip = Arc::new(PerIp {
        max: settings.max_connections_per_ip,
        open: Mutex::new(HashMap::new()),
    });
    // Each connection holds a receiver of both: `stop` asks it to finish, and the
    // sender of `closed` sees every receiver gone once all connections are.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (closed_tx, closed_rx) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // A connection reset before it was accepted concerns that client
                // only; anything else (too many open files) is a reason to pause.
                if !is_connection_error(&e) {
                    tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                continue;
            }
        };
        let Some(slot) = per_ip.admit(peer.ip()) else {
            metrics
                .connections_closed
                .with_label_values(&["per_address_cap"])
                .inc();
            tracing::debug!(peer = %peer, max = settings.max_connections_per_ip, "connection over the per-address cap closed");
            drop(stream);
            continue;
        };
        let conn = Connection {
            peer,
            router: router.clone(),
            settings,
            metrics: metrics.clone(),
        };
        let stop = stop_rx.clone();
        let closed = closed_rx.clone();
        tokio::spawn(async move {
            conn.run(stream, stop).await;
            drop(slot);
            drop(closed);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(closed_rx);
    closed_tx.closed().await;
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Open connections by client address.
struct PerIp {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerIp {
    /// A place for one more connection from `ip`, or None over the cap.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if self.max > 0 && *n >= self.max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            per_ip: self.clone(),
            ip,
        })
    }
}

/// One open connection's place in [`PerIp`]; dropping it frees the place.
struct IpSlot {
    per_ip: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.per_ip.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// No partial request head: the connection is idle or busy.
const NO_HEAD: u64 = u64::MAX;

/// What a connection's watchdog looks at. Times are milliseconds since `epoch`.
struct Activity {
    epoch: Instant,
    /// Requests whose response body is not finished.
    busy: AtomicUsize,
    /// When the connection last had no request in flight.
    idle_since: AtomicU64,
    /// When the first byte of a request head not yet whole arrived, or [`NO_HEAD`].
    head_since: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            // A new connection owes its first request head from the start.
            head_since: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    /// Bytes came in: the start of a request head, unless one is in flight.
    fn read(&self) {
        if self.busy.load(Ordering::Acquire) == 0
            && self.head_since.load(Ordering::Acquire) == NO_HEAD
        {
            self.head_since.store(self.now(), Ordering::Release);
        }
    }

    /// A request head arrived whole: the request is in flight until the guard goes.
    fn request(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(NO_HEAD, Ordering::Release);
        Busy(self.clone())
    }

    /// Why the connection should be closed now, if it should.
    fn expired(&self, s: &Settings) -> Option<&'static str> {
        if self.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        let now = self.now();
        let head = self.head_since.load(Ordering::Acquire);
        if head != NO_HEAD {
            let waited = Duration::from_millis(now.saturating_sub(head));
            return (waited >= s.header_timeout).then_some("header_timeout");
        }
        let idle =
            Duration::from_millis(now.saturating_sub(self.idle_since.load(Ordering::Acquire)));
        (idle >= s.idle_timeout).then_some("idle_timeout")
    }
}

/// A request in flight; dropped when its response body is finished (or abandoned).
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since.store(a.now(), Ordering::Release);
        a.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that holds its request's [`Busy`] until its last frame.
struct Tracked {
    inner: Body,
    busy: Option<Busy>,
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.busy = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, telling the watchdog when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// One accepted connection.
struct Connection {
    peer: SocketAddr,
    router: Router,
    settings: Settings,
    metrics: Metrics,
}

impl Connection {
    async fn run(self, stream: TcpStream, mut stop: tokio::sync::watch::Receiver<bool>) {
        let Connection {
            peer,
            router,
            settings,
            metrics,
        } = self;
        metrics.connections_open.inc();
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            stream,
            activity: activity.clone(),
        });
        let on_request = activity.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let busy = on_request.request();
            req.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                let resp = router.oneshot(req).await;
                resp.map(|r| {
                    r.map(|inner| {
                        Body::new(Tracked {
                            inner,
                            busy: Some(busy),
                        })
                    })
                })
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        // Both timers are the watchdog's below (see the module's documentation).
        builder.keep_alive(true).header_read_timeout(None);
        let conn = builder.serve_connection(io, service);
        let mut conn = std::pin::pin!(conn);
        let mut tick = tokio::time::interval(tick_period(&settings));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = false;
        loop {
            tokio::select! {
                done = conn.as_mut() => {
                    if let Err(e) = done {
                        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                    }
                    break;
                }
                _ = stop.wait_for(|s| *s), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = tick.tick() => {
                    if let Some(reason) = activity.expired(&settings) {
                        metrics.connections_closed.with_label_values(&[reason]).inc();
                        tracing::debug!(peer = %peer, reason, "connection closed");
                        break;
                    }
                }
            }
        }
        metrics.connections_open.dec();
    }
}

/// How often a connection's watchdog looks: a tenth of the shorter timeout, between
/// 50 ms and 1 s, so a connection is closed at most that late.
fn tick_period(s: &Settings) -> Duration {
    (s.header_timeout.min(s.idle_timeout) / 10)
        .clamp(Duration::from_millis(50), Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            header_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(300),
            max_connections_per_ip: 2,
        }
    }

    #[test]
    fn a_head_is_timed_from_its_first_byte_and_an_idle_connection_from_its_last_response() {
        let s = settings();
        let a = Arc::new(Activity::new());
        assert_eq!(a.expired(&s), None);
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(
            a.expired(&s),
            Some("header_timeout"),
            "the first head is owed from the start"
        );
        let busy = a.request();
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(
            a.expired(&s),
            None,
            "no timer runs while a request is in flight"
        );
        drop(busy);
        assert_eq!(a.expired(&s), None);
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(
            a.expired(&s),
            None,
            "idle, not a head: the idle timeout applies"
        );
        a.read();
        assert_eq!(a.expired(&s), None);
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(a.expired(&s), Some("header_timeout"));
    }

    #[test]
    fn addresses_are_capped_separately_and_a_closed_connection_frees_its_place() {
        let per_ip = Arc::new(PerIp {
            max: 2,
            open: Mutex::new(HashMap::new()),
        });
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let one = per_ip.admit(a).expect("first");
        let _two = per_ip.admit(a).expect("second");
        assert!(per_ip.admit(a).is_none(), "third over the cap");
        assert!(per_ip.admit(b).is_some(), "another address");
        drop(one);
        assert!(per_ip.admit(a).is_some(), "a place was freed");
    }
}
