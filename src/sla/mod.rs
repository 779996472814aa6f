//! Deadlines in working time: the business calendar and the SLA per category and
//! urgency. Deadlines are computed once, when the event that starts them is decided,
//! and frozen in that event.

pub mod calendar;
pub mod watcher;

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use calendar::Calendar;

use crate::domain::{Deadlines, Urgency};
use crate::org::Org;
use crate::org::model::HandleDue;

/// Settings that are not per category.
#[derive(Clone, Debug)]
pub struct SlaSettings {
    /// Working days to redo a ticket after a failed verification (限期重新办理).
    pub rework_days: u32,
    /// The fraction of a deadline's time after which the SLA watcher warns (0.8:
    /// at 80%). See [`crate::domain::sla_events`].
    pub warn_fraction: f64,
}

impl Default for SlaSettings {
    fn default() -> Self {
        SlaSettings {
            rework_days: 3,
            warn_fraction: 0.8,
        }
    }
}

#[derive(Clone)]
pub struct SlaPolicy {
    pub calendar: Calendar,
    pub settings: SlaSettings,
}

impl SlaPolicy {
    pub fn new(calendar: Calendar, settings: SlaSettings) -> SlaPolicy {
        SlaPolicy { calendar, settings }
    }

    /// Binds the policy to one organisation (whose catalogue holds the SLAs).
    pub fn with_org(&self, org: Arc<Org>) -> OrgDeadlines<'_> {
        OrgDeadlines { policy: self, org }
    }
}

/// The [`Deadlines`] the aggregate gets: calendar + the catalogue's SLA.
pub struct OrgDeadlines<'a> {
    policy: &'a SlaPolicy,
    org: Arc<Org>,
}

impl Deadlines for OrgDeadlines<'_> {
    fn sign_due(&self, from: DateTime<Utc>, category: &str, urgency: Urgency) -> DateTime<Utc> {
        let spec = self.org.sla_for(category, urgency.as_str());
        self.policy.calendar.add_working_days(from, spec.sign_days)
    }

    fn handle_due(&self, from: DateTime<Utc>, category: &str, urgency: Urgency) -> DateTime<Utc> {
        match self.org.sla_for(category, urgency.as_str()).handle {
            HandleDue::Days(d) => self.policy.calendar.add_working_days(from, d),
            HandleDue::Hours(h) => self.policy.calendar.add_hours(from, h),
        }
    }

    fn extend(&self, due: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        // The deadline is the end of a working day; N more working days from its
        // instant is the end of the N-th working day after it.
        self.policy
            .calendar
            .add_working_days(due - chrono::Duration::seconds(1), days)
    }

    fn rework_due(&self, from: DateTime<Utc>) -> DateTime<Utc> {
        self.policy
            .calendar
            .add_working_days(from, self.policy.settings.rework_days)
    }
}
