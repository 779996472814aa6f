//! Latency histograms, the measurement window, and the printed / JSON report.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Highest latency the histograms track (60 s, in microseconds); slower samples saturate.
const MAX_MICROS: u64 = 60_000_000;

/// A latency histogram in microseconds.
pub fn new_histogram() -> Histogram<u64> {
    // Bounds 1..60e6 with 3 significant figures are valid constants (low >= 1,
    // high >= 2 * low, sigfig <= 5), so construction cannot fail.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant histogram bounds are valid")
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    h.saturating_record(micros.clamp(1, MAX_MICROS));
}

/// Merge `from` into `into`. Both come from [`new_histogram`], so the bounds match.
pub fn merge(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    // `add` only fails when `from` holds values beyond `into`'s bounds; every
    // histogram here has the same bounds and records clamped values.
    into.add(from).expect("histograms share bounds");
}

/// The period whose completions count: warm-up first, then `duration` measured.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    pub fn after_warmup(warmup: Duration, duration: Duration) -> Self {
        let start = Instant::now() + warmup;
        Window {
            start,
            end: start + duration,
        }
    }

    /// Whether an operation that completed at `t` is counted.
    pub fn counts(&self, t: Instant) -> bool {
        t >= self.start && t <= self.end
    }

    /// Whether a client may start another operation at `t`.
    pub fn open(&self, t: Instant) -> bool {
        t < self.end
    }

    pub fn seconds(&self) -> f64 {
        (self.end - self.start).as_secs_f64()
    }
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |v: u64| v as f64 / 1000.0;
        Latency {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "p50_ms": round3(self.p50_ms),
            "p99_ms": round3(self.p99_ms),
            "p999_ms": round3(self.p999_ms),
            "max_ms": round3(self.max_ms),
        })
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// Print rows as a left-aligned header plus right-aligned columns.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let w = widths.get(i).copied().unwrap_or(0);
                if i == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        parts.join("  ")
    };
    println!("{}", line(header.iter().map(|s| s.to_string()).collect()));
    for row in rows {
        println!("{}", line(row.clone()));
    }
}

pub fn f1(x: f64) -> String {
    format!("{x:.1}")
}

pub fn f2(x: f64) -> String {
    format!("{x:.2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_in_ms() {
        let mut h = new_histogram();
        for i in 1..=1000u64 {
            record(&mut h, Duration::from_micros(i * 1000));
        }
        let l = Latency::of(&h);
        assert!((l.p50_ms - 500.0).abs() < 1.0, "{l:?}");
        assert!((l.p99_ms - 990.0).abs() < 2.0, "{l:?}");
        assert!((l.max_ms - 1000.0).abs() < 2.0, "{l:?}");
    }

    #[test]
    fn empty_histogram_is_zero() {
        let l = Latency::of(&new_histogram());
        assert_eq!(l.p99_ms, 0.0);
    }

    #[test]
    fn window_counts_only_after_warmup() {
        let w = Window::after_warmup(Duration::from_secs(10), Duration::from_secs(5));
        assert!(!w.counts(Instant::now()));
        assert!(w.counts(w.start + Duration::from_secs(1)));
        assert!(!w.counts(w.end + Duration::from_millis(1)));
        assert!((w.seconds() - 5.0).abs() < 1e-9);
    }
}
