//! Business time. The service reads the time through a [`Clock`] so that tests (and
//! the SLA watcher's tests) can put it at a chosen instant and move it forward.
//! `recorded_at` is always the store's own wall clock; this clock gives `occurred_at`
//! and the "now" that deadlines are computed from.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

#[derive(Clone, Default)]
pub struct Clock(Option<Arc<Mutex<DateTime<Utc>>>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that stands at `t` until moved.
    pub fn manual(t: DateTime<Utc>) -> Clock {
        Clock(Some(Arc::new(Mutex::new(t))))
    }

    pub fn now(&self) -> DateTime<Utc> {
        let t = match &self.0 {
            None => Utc::now(),
            Some(m) => *m.lock().unwrap_or_else(|p| p.into_inner()),
        };
        crate::store::truncate_micros(t)
    }

    /// Moves a manual clock to `t`; a system clock ignores it.
    pub fn set(&self, t: DateTime<Utc>) {
        if let Some(m) = &self.0 {
            *m.lock().unwrap_or_else(|p| p.into_inner()) = t;
        }
    }
}
