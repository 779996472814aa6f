//! Business time. The service reads the time through a [`Clock`] so that tests (and
//! the SLA watcher's tests) can put it at a chosen instant and move it forward.
//! `recorded_at` is always the store's own wall clock; this clock gives `occurred_at`
//! and the "now" that deadlines are computed from.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};

#[derive(Clone)]
pub struct Clock(Source);

#[derive(Clone)]
enum Source {
    /// The system clock plus a fixed offset (zero for the real time).
    System(TimeDelta),
    /// A time that stands still until moved.
    Manual(Arc<Mutex<DateTime<Utc>>>),
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::system()
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(Source::System(TimeDelta::zero()))
    }

    /// The system clock shifted by `secs` seconds (negative: into the past). A test
    /// and drill setting (`YIWANG_CLOCK_OFFSET_SECS`): business time runs at the
    /// normal pace from a chosen point, so deadlines can be reached without waiting
    /// days. An offset beyond what a timestamp can hold is clamped to the largest
    /// one chrono can represent (about 292 million years).
    pub fn offset(secs: i64) -> Clock {
        let delta = TimeDelta::try_seconds(secs).unwrap_or(if secs < 0 {
            TimeDelta::MIN
        } else {
            TimeDelta::MAX
        });
        Clock(Source::System(delta))
    }

    /// A clock that stands at `t` until moved.
    pub fn manual(t: DateTime<Utc>) -> Clock {
        Clock(Source::Manual(Arc::new(Mutex::new(t))))
    }

    pub fn now(&self) -> DateTime<Utc> {
        let t = match &self.0 {
            Source::System(d) => {
                let now = Utc::now();
                // Out of chrono's range only for absurd offsets: saturate there.
                now.checked_add_signed(*d)
                    .unwrap_or(if *d < TimeDelta::zero() {
                        DateTime::<Utc>::MIN_UTC
                    } else {
                        DateTime::<Utc>::MAX_UTC
                    })
            }
            Source::Manual(m) => *m.lock().unwrap_or_else(|p| p.into_inner()),
        };
        crate::store::truncate_micros(t)
    }

    /// Moves a manual clock to `t`; a system clock ignores it.
    pub fn set(&self, t: DateTime<Utc>) {
        if let Source::Manual(m) = &self.0 {
            *m.lock().unwrap_or_else(|p| p.into_inner()) = t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_clock_runs_shifted_and_ignores_set() {
        let c = Clock::offset(86_400);
        let ahead = c.now() - Utc::now();
        assert!(
            ahead > TimeDelta::seconds(86_390) && ahead <= TimeDelta::seconds(86_400),
            "{ahead}"
        );
        c.set(DateTime::<Utc>::MIN_UTC);
        assert!(c.now() > Utc::now());
        let behind = Utc::now() - Clock::offset(-60).now();
        assert!(behind >= TimeDelta::seconds(59), "{behind}");
        // Absurd offsets saturate instead of panicking.
        let _ = Clock::offset(i64::MAX).now();
        let _ = Clock::offset(i64::MIN).now();
    }
}
