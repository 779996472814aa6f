//! Request limits: rate limits per token and per client address (the `governor`
//! crate's keyed GCRA limiters), a bound on each request's time, and a cap on live
//! SSE subscribers per instance and per token.
//!
//! A request that carries `Authorization: Bearer …` counts against its token (keyed
//! by a hash of it: the token itself is neither kept nor logged). A request without
//! one counts against the client's address, and so does every bearer request that
//! is answered 401 (an unknown or revoked token): sending made-up tokens is limited
//! like anonymous traffic. `/healthz`, `/readyz` and `/metrics` are not limited.
//! Over a limit the answer is a 429 problem document with `Retry-After`, and the
//! request goes no further: a refused command appends nothing.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

use crate::app::SharedApp;
use crate::error::AppError;

/// Requests per second one token may send (0: no limit). High enough that the load
/// harness, whose clients share one token per role, never reaches it; lower it for
/// a service used by people only (see README, Limits).
pub const DEFAULT_PER_TOKEN: u32 = 5000;
/// Requests one token may send at once before the rate applies.
pub const DEFAULT_PER_TOKEN_BURST: u32 = 10_000;
/// Requests per second one client address may send without a valid token.
pub const DEFAULT_PER_IP: u32 = 500;
pub const DEFAULT_PER_IP_BURST: u32 = 2000;
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_MAX_SSE_SUBSCRIBERS: usize = 1000;
pub const DEFAULT_MAX_SSE_PER_TOKEN: usize = 10;

/// The live event stream: neither bounded in time nor (being one long request)
/// worth rate limiting beyond its subscriber cap.
pub const SSE_PATH: &str = "/api/v1/events/stream";
/// Probes and scrapes are never limited.
const EXEMPT: &[&str] = &["/healthz", "/readyz", "/metrics"];
/// Photos come from phones on slow networks: their upload gets this many times the
/// request timeout.
const UPLOAD_PATH: &str = "/api/v1/attachments";
const UPLOAD_TIMEOUT_FACTOR: u32 = 10;
/// When a subscriber slot frees up is unknown; this is the hint a refusal gives.
const SSE_RETRY_AFTER_SECS: u64 = 5;
/// Forget idle limiter keys once a limiter holds more than this many.
const HOUSEKEEPING_KEYS: usize = 4096;

#[derive(Clone, Debug)]
pub struct Settings {
    /// Requests per second per token; 0: no limit.
    pub per_token: u32,
    pub per_token_burst: u32,
    /// Requests per second per client address without a valid token; 0: no limit.
    pub per_ip: u32,
    pub per_ip_burst: u32,
    /// The longest a request (other than the SSE stream) may take.
    pub request_timeout: Duration,
    /// Live SSE subscribers per instance; 0: no cap.
    pub max_sse_subscribers: usize,
    /// Live SSE subscribers per token; 0: no cap.
    pub max_sse_per_token: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            per_token: DEFAULT_PER_TOKEN,
            per_token_burst: DEFAULT_PER_TOKEN_BURST,
            per_ip: DEFAULT_PER_IP,
            per_ip_burst: DEFAULT_PER_IP_BURST,
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS),
            max_sse_subscribers: DEFAULT_MAX_SSE_SUBSCRIBERS,
            max_sse_per_token: DEFAULT_MAX_SSE_PER_TOKEN,
        }
    }
}

/// One keyed rate limiter with the numbers it reports.
struct Rate<K: std::hash::Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    per_second: u32,
    burst: u32,
    checks: AtomicU64,
}

impl<K: std::hash::Hash + Eq + Clone> Rate<K> {
    /// None when `per_second` is 0 (no limit). A burst below the rate is raised to it.
    fn new(per_second: u32, burst: u32) -> Option<Rate<K>> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
        Some(Rate {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            per_second,
            burst: burst.get(),
            checks: AtomicU64::new(0),
        })
    }

    /// Ok, or how long until the key may send again.
    fn check(&self, key: &K) -> Result<(), Duration> {
        let outcome = self.limiter.check_key(key);
        // Keys are cheap but unbounded (every made-up token is one): now and then
        // drop those whose bucket is full again, i.e. that are indistinguishable
        // from a key never seen.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 1024 == 1023
            && self.limiter.len() > HOUSEKEEPING_KEYS
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        outcome.map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }
}

/// The limits of one router (one `serve` process).
pub struct Limits {
    pub settings: Settings,
    tokens: Option<Rate<[u8; 16]>>,
    ips: Option<Rate<IpAddr>>,
    /// Addresses whose allowance ran out with failed authentications, and until when
    /// they are refused even with a bearer token.
    penalised: Mutex<HashMap<IpAddr, Instant>>,
    sse: Mutex<SseCount>,
}

#[derive(Default)]
struct SseCount {
    total: usize,
    per_token: HashMap<String, usize>,
}

impl Limits {
    pub fn new(settings: Settings) -> Limits {
        Limits {
            tokens: Rate::new(settings.per_token, settings.per_token_burst),
            ips: Rate::new(settings.per_ip, settings.per_ip_burst),
            settings,
            penalised: Default::default(),
            sse: Default::default(),
        }
    }

    /// A slot for one live SSE subscriber of token `token_id`, released when the
    /// returned guard is dropped (with the stream, when the client goes away).
    pub fn sse_slot(
        self: &Arc<Self>,
        token_id: &str,
        metrics: &crate::metrics::Metrics,
    ) -> Result<SseSlot, AppError> {
        let mut c = self.sse.lock().unwrap_or_else(|p| p.into_inner());
        let max = self.settings.max_sse_subscribers;
        if max > 0 && c.total >= max {
            metrics.limited.with_label_values(&["sse_instance"]).inc();
            return Err(AppError::RateLimited {
                message: format!(
                    "this instance already serves {max} live event streams; retry later, or page through GET /api/v1/events meanwhile"
                ),
                retry_after_secs: SSE_RETRY_AFTER_SECS,
            });
        }
        let per_token = self.settings.max_sse_per_token;
        let mine = c.per_token.get(token_id).copied().unwrap_or(0);
        if per_token > 0 && mine >= per_token {
            metrics.limited.with_label_values(&["sse_token"]).inc();
            return Err(AppError::RateLimited {
                message: format!(
                    "this token already has {mine} live event streams open (at most {per_token}); close one in another tab or device first"
                ),
                retry_after_secs: SSE_RETRY_AFTER_SECS,
            });
        }
        c.total += 1;
        *c.per_token.entry(token_id.to_string()).or_default() += 1;
        Ok(SseSlot {
            limits: self.clone(),
            token_id: token_id.to_string(),
        })
    }

    /// Live SSE subscribers of this instance.
    pub fn sse_subscribers(&self) -> usize {
        self.sse.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    fn penalty(&self, ip: IpAddr) -> Option<Duration> {
        let mut p = self.penalised.lock().unwrap_or_else(|p| p.into_inner());
        let until = *p.get(&ip)?;
        match until.checked_duration_since(Instant::now()) {
            Some(wait) if !wait.is_zero() => Some(wait),
            _ => {
                p.remove(&ip);
                None
            }
        }
    }

    /// A bearer request from `ip` was answered 401: it counts as anonymous traffic.
    fn charge_failed_auth(&self, ip: IpAddr) {
        let Some(ips) = &self.ips else { return };
        if let Err(wait) = ips.check(&ip) {
            let now = Instant::now();
            let mut p = self.penalised.lock().unwrap_or_else(|p| p.into_inner());
            if p.len() > HOUSEKEEPING_KEYS {
                p.retain(|_, until| *until > now);
            }
            p.insert(ip, now + wait);
        }
    }
}

/// A live SSE subscriber's place; dropping it frees the place.
pub struct SseSlot {
    limits: Arc<Limits>,
    token_id: String,
}

impl Drop for SseSlot {
    fn drop(&mut self) {
        let mut c = self.limits.sse.lock().unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_token.get_mut(&self.token_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_token.remove(&self.token_id);
            }
        }
    }
}

/// What the limit middlewares need.
#[derive(Clone)]
pub struct LimitState {
    pub app: SharedApp,
    pub limits: Arc<Limits>,
}

/// The client's address; a router served without `ConnectInfo` (an embedding that
/// neither uses `http::server::serve` nor calls `into_make_service_with_connect_info`)
/// counts all its anonymous clients as one.
fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// A 128-bit digest of the presented bearer token: the key of its rate limit.
fn bearer_key(req: &Request) -> Option<[u8; 16]> {
    // A session cookie counts as the token it stands for.
    let token = super::extract::bearer_token(req.headers())
        .or_else(|| super::session::cookie(req.headers(), crate::auth::session::SESSION_COOKIE))?;
    let digest = Sha256::digest(token.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    Some(key)
}

fn whole_seconds(wait: Duration) -> u64 {
    wait.as_millis().div_ceil(1000).max(1) as u64
}

fn refuse(app: &SharedApp, limit: &str, message: String, wait: Duration) -> Response {
    app.metrics.limited.with_label_values(&[limit]).inc();
    AppError::RateLimited {
        message,
        retry_after_secs: whole_seconds(wait),
    }
    .into_response()
}

/// The per-token and per-address rate limits (see the module's documentation).
pub async fn rate_limit(State(s): State<LimitState>, req: Request, next: Next) -> Response {
    if EXEMPT.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let ip = client_ip(&req);
    match bearer_key(&req) {
        Some(key) => {
            if let Some(wait) = s.limits.penalty(ip) {
                return refuse(
                    &s.app,
                    "per_ip",
                    format!(
                        "too many requests with unknown or revoked tokens came from this address; wait {} s (Retry-After) and use a valid token. This request was not carried out.",
                        whole_seconds(wait)
                    ),
                    wait,
                );
            }
            if let Some(tokens) = &s.limits.tokens
                && let Err(wait) = tokens.check(&key)
            {
                return refuse(
                    &s.app,
                    "per_token",
                    format!(
                        "this token sent requests faster than its limit of {} a second (bursts of {}); wait {} s (Retry-After) and slow down. This request was not carried out: nothing was recorded.",
                        tokens.per_second,
                        tokens.burst,
                        whole_seconds(wait)
                    ),
                    wait,
                );
            }
            let resp = next.run(req).await;
            if resp.status() == axum::http::StatusCode::UNAUTHORIZED {
                s.limits.charge_failed_auth(ip);
            }
            resp
        }
        None => {
            if let Some(ips) = &s.limits.ips
                && let Err(wait) = ips.check(&ip)
            {
                return refuse(
                    &s.app,
                    "per_ip",
                    format!(
                        "this address sent requests without a token faster than its limit of {} a second (bursts of {}); wait {} s (Retry-After) and slow down. This request was not carried out.",
                        ips.per_second,
                        ips.burst,
                        whole_seconds(wait)
                    ),
                    wait,
                );
            }
            next.run(req).await
        }
    }
}

/// Bounds the time of every request but the SSE stream; past it the answer is a
/// 503 problem document.
pub async fn bound_time(State(s): State<LimitState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == SSE_PATH {
        return next.run(req).await;
    }
    let mut limit = s.limits.settings.request_timeout;
    // Open311's POST may carry its photo (a multipart `media` part).
    let upload = path == UPLOAD_PATH || path.starts_with("/open311/v2/requests.");
    if upload && req.method() == Method::POST {
        limit = limit.saturating_mul(UPLOAD_TIMEOUT_FACTOR);
    }
    let method = req.method().clone();
    let path = path.to_string();
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            s.app.metrics.limited.with_label_values(&["timeout"]).inc();
            tracing::warn!(%method, %path, limit_secs = limit.as_secs(), "request timed out");
            let secs = limit.as_secs();
            let detail = if method == Method::POST {
                format!(
                    "the request did not finish within {secs} s and was abandoned (the service or its database is overloaded or unreachable). The command may or may not have been recorded: retry it with the same Idempotency-Key, which returns the first answer if it was."
                )
            } else {
                format!(
                    "the request did not finish within {secs} s and was abandoned (the service or its database is overloaded or unreachable); retry in a moment, or ask for less (a smaller page or period)."
                )
            };
            AppError::Unavailable(detail).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_whole_seconds_at_least_one() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1000)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1001)), 2);
    }

    #[test]
    fn zero_means_no_limit_and_burst_is_at_least_the_rate() {
        assert!(Rate::<u8>::new(0, 100).is_none());
        let r = Rate::<u8>::new(5, 1).expect("a limit");
        assert_eq!(r.burst, 5);
        for _ in 0..5 {
            assert!(r.check(&1).is_ok());
        }
        let wait = r.check(&1).expect_err("over the burst");
        assert!(wait <= Duration::from_millis(200), "{wait:?}");
        assert!(r.check(&2).is_ok(), "another key has its own allowance");
    }
}
