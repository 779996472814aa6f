//! How the append writers of both engines pace their batches (group commit), and
//! the metrics that show how full the batches are.
//!
//! A batch pays a fixed cost (a statement on PostgreSQL, a COMMIT and its fsync on
//! both) that its requests share, so the fuller the batch the less each command
//! costs. A writer that sends whatever is waiting the moment it is free fills its
//! batches only when the load keeps it busy: at 16 clients PostgreSQL's four writers
//! carried 2.5–3.1 commands a statement (BENCHMARKS.md, "Where one command's cost
//! goes"), and PostgreSQL's CPU per command was twice what it is at 64.
//!
//! The [`Pacer`] keeps what the writer has measured: how long a batch takes to
//! write (commit included) and how many requests batches have carried lately. From
//! these it says how long a small batch may wait for more before it goes
//! ([`Pacer::linger`]): a fraction (`YIWANG_APPEND_LINGER`, default
//! [`PG_LINGER`] on PostgreSQL, [`SQLITE_LINGER`] on SQLite) of the time a batch
//! takes to write, never more than [`MAX_LINGER`]. How each engine uses it is in
//! its writer.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec};

/// Requests per batch (one statement on PostgreSQL, one COMMIT on SQLite).
pub static BATCH_REQUESTS: LazyLock<HistogramVec> = LazyLock::new(|| {
    HistogramVec::new(
        HistogramOpts::new(
            "yiwang_append_batch_requests",
            "Appends written together by one batch (PostgreSQL: one statement; SQLite: one COMMIT)",
        )
        .buckets(vec![
            1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0, 96.0, 128.0, 256.0,
        ]),
        &["engine"],
    )
    .expect("static metric definition is valid")
});

/// How long a batch takes to write, commit included (what the pacer measures).
pub static BATCH_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    HistogramVec::new(
        HistogramOpts::new(
            "yiwang_append_batch_duration_seconds",
            "Time to write one batch of appends, its commit included",
        )
        .buckets(vec![
            0.0002, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1,
            0.25, 1.0,
        ]),
        &["engine"],
    )
    .expect("static metric definition is valid")
});

/// The fraction of a batch's write time a batch may wait for more on PostgreSQL
/// while another statement is in flight, unless `YIWANG_APPEND_LINGER` says
/// otherwise. Measured (BENCHMARKS.md, issue 24 point 3): 2.7 commands a
/// statement at 16 clients without it, 6.4–6.8 with it.
pub const PG_LINGER: f64 = 0.5;

/// The same on SQLite: none. Its one writer is the bottleneck (busy 0.6 ms a
/// command, most of the time at 16 clients), so a batch that waits idles the
/// only writer: waiting half a batch's write time grew the batches from 7.9 to
/// 11.5 commands at 16 clients, added about a millisecond to the median command
/// and no throughput beyond the noise (BENCHMARKS.md, issue 24 point 3).
pub const SQLITE_LINGER: f64 = 0.0;

/// The longest a batch ever waits for more requests.
pub const MAX_LINGER: Duration = Duration::from_millis(5);

/// Reads `YIWANG_APPEND_LINGER`: a fraction from 0 (never wait) to 4; the
/// engine's `default` when it is unset or unreadable.
pub fn linger_from_env(default: f64) -> f64 {
    std::env::var("YIWANG_APPEND_LINGER")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|f| f.is_finite())
        .map_or(default, |f| f.clamp(0.0, 4.0))
}

/// What a writer has measured of its own batches.
#[derive(Clone, Debug)]
pub struct Pacer {
    fraction: f64,
    /// Moving average of the time to write a batch, in seconds.
    write_secs: f64,
    /// Moving average of the requests per batch.
    size: f64,
}

/// Weight of the newest observation in the moving averages.
const ALPHA: f64 = 0.2;

impl Pacer {
    pub fn new(fraction: f64) -> Pacer {
        Pacer {
            fraction,
            write_secs: 0.0,
            size: 1.0,
        }
    }

    /// Records a batch of `requests` that took `took` to write.
    pub fn observe(&mut self, requests: usize, took: Duration) {
        let secs = took.as_secs_f64();
        self.write_secs = if self.write_secs == 0.0 {
            secs
        } else {
            self.write_secs + ALPHA * (secs - self.write_secs)
        };
        self.size += ALPHA * (requests as f64 - self.size);
    }

    /// How long a forming batch may wait for more requests: a fraction of the time
    /// a batch takes to write, capped.
    pub fn linger(&self) -> Duration {
        Duration::from_secs_f64(self.fraction * self.write_secs).min(MAX_LINGER)
    }

    /// The requests batches have carried lately: a batch smaller than this is
    /// worth waiting on while more are on their way.
    pub fn usual_size(&self) -> usize {
        self.size.round().max(1.0) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linger_follows_the_write_time_and_is_capped() {
        let mut p = Pacer::new(0.5);
        assert_eq!(p.linger(), Duration::ZERO, "nothing measured: no waiting");
        p.observe(4, Duration::from_millis(2));
        assert_eq!(p.linger(), Duration::from_millis(1));
        for _ in 0..50 {
            p.observe(8, Duration::from_millis(100));
        }
        assert_eq!(p.linger(), MAX_LINGER);
        assert_eq!(p.usual_size(), 8);
        let mut never = Pacer::new(0.0);
        never.observe(4, Duration::from_millis(2));
        assert_eq!(never.linger(), Duration::ZERO);
    }
}
