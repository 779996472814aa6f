//! The appraisal's commands (考核录入): entries and their withdrawals, a township's
//! closing of its year and its reopening, departments' grades and frozen bulletins.
//! Each appends an event of `appraisal::ledger` through the store, with the
//! Idempotency-Key's record in the same transaction, like a ticket's command: the
//! same key with the same body answers the first answer again (a refusal met on the
//! retry included), the same key with another body is a 422.
//!
//! Nothing is appended on a refusal: every check (who, which unit, which item, how
//! many points, the year's state) is made on the ledger folded from the log before
//! the append, and the append's expected stream version catches a concurrent change
//! of the same year or grade (409, retry).
//!
//! Around it: `bodies` (requests and answers), `year` (submissions and grades),
//! `bulletins` (the scores computed for a period, the ranking and the bulletins),
//! `items` (an entry against its unit's sheet).

mod bodies;
mod bulletins;
mod items;
mod year;

pub use bodies::*;
pub use bulletins::{Drift, RankRow, Ranking, rank_kind};

use chrono::Datelike;
use uuid::Uuid;

use super::text::check_text;
use super::{App, Reply};
use crate::app::commands::CommandMeta;
use crate::appraisal::ledger::{
    AppraisalEvent, EntryRecorded, EntryWithdrawn, Ledger, one_per_year_stream,
};
use crate::auth::Actor;
use crate::auth::appraisal::{self as scope, Reach};
use crate::error::AppError;
use crate::org::{Org, UnitKind};
use crate::projections::periods::{Granularity, Period};
use crate::store::{AppendRequest, NewEvent, StoreError};

/// A note, reason or other text of an appraisal command.
pub const MAX_TEXT: usize = 10_000;
/// A unit, township or item code.
const MAX_CODE: usize = 100;
const MAX_TICKETS: usize = 50;
const MAX_PHOTOS: usize = 20;

/// A required text: not blank, at most [`MAX_TEXT`] characters, no refused character.
pub(crate) fn required_text(field: &str, s: &str) -> Result<(), AppError> {
    check_text(field, s, MAX_TEXT)?;
    if s.trim().is_empty() {
        return Err(AppError::invalid(field, "is required (say why)"));
    }
    Ok(())
}

/// A period of an entry or a bulletin: a month, a quarter or a year.
pub fn parse_period(field: &str, s: &str) -> Result<Period, AppError> {
    Period::parse(s)
        .filter(|p| p.granularity != Granularity::Day)
        .ok_or_else(|| {
            AppError::invalid(
                field,
                format!("{s:?} is not a period: use a month (2026-03), a quarter (2026-Q1) or a year (2026)"),
            )
        })
}

/// A year of a submission or a grade.
pub(crate) fn check_year(year: i32) -> Result<(), AppError> {
    if (2000..=2100).contains(&year) {
        Ok(())
    } else {
        Err(AppError::invalid(
            "year",
            "must be a year from 2000 to 2100",
        ))
    }
}

/// A known township (422 otherwise).
pub(crate) fn township<'o>(org: &'o Org, field: &str, code: &str) -> Result<&'o str, AppError> {
    match org.unit(code) {
        Some(u) if u.kind == UnitKind::Township => Ok(u.name.as_str()),
        _ => Err(AppError::invalid(
            field,
            format!("{code:?} is not a township of the organisation"),
        )),
    }
}

impl App {
    /// The ledger as the log holds it now.
    pub async fn ledger(&self) -> Result<Ledger, AppError> {
        Ok(crate::repo::appraisal::ledger(&self.store.pool(), None).await?)
    }

    /// Runs an appraisal command; a refusal may be the retry of one that succeeded,
    /// whose first answer is then the answer.
    async fn appraisal_command<F>(
        &self,
        actor: &Actor,
        meta: &CommandMeta,
        run: F,
    ) -> Result<Reply, AppError>
    where
        F: std::future::Future<Output = Result<Reply, AppError>>,
    {
        match run.await {
            Ok(r) => Ok(r),
            Err(e) => self.replay_or(actor, meta, e).await,
        }
    }

    /// Appends one appraisal event with the idempotency record of its answer.
    #[allow(clippy::too_many_arguments)]
    async fn append_appraisal(
        &self,
        actor: &Actor,
        meta: &CommandMeta,
        stream: Uuid,
        expected_version: i64,
        (event_type, data): (&str, serde_json::Value),
        (status, body): (u16, String),
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Reply, AppError> {
        if self.integrity.is_tampered(stream) {
            return Err(StoreError::Tampered(stream).into());
        }
        let req = AppendRequest {
            stream_id: stream,
            expected_version,
            prev_hash: None,
            events: vec![NewEvent {
                event_type: event_type.to_string(),
                schema_version: 1,
                data,
                occurred_at: now,
            }],
            metadata: meta.metadata(actor),
            // The appraisal's answers are no ticket and its streams fold into the
            // whole ledger, not into the answer: the record keeps the body itself
            // (unlike a ticket command's, rendered again from its stream).
            idempotency: Some(meta.idempotency_record(
                actor,
                status,
                Some(body.clone()),
                (stream, expected_version + 1),
            )),
            views: Vec::new(),
        };
        let started = std::time::Instant::now();
        let result = self.store.append(req).await;
        self.metrics
            .append_seconds
            .with_label_values(&[self.store.engine()])
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(a) => {
                self.metrics
                    .events_appended
                    .with_label_values(&[event_type])
                    .inc();
                Ok(Reply {
                    status,
                    body,
                    version: a.version,
                    replayed: false,
                })
            }
            Err(StoreError::DuplicateKey) => self.replay(actor, meta).await?.ok_or_else(|| {
                AppError::Conflict("a request with this Idempotency-Key is in flight; retry".into())
            }),
            Err(StoreError::Conflict { .. }) => Err(AppError::Conflict(
                "the appraisal record changed while this command ran (another appraiser \
                 recorded the same year, grade or evaluation at once); reload and retry"
                    .into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// `POST /api/v1/appraisal/entries`.
    pub async fn record_entry(
        &self,
        actor: &Actor,
        input: EntryBody,
        meta: CommandMeta,
    ) -> Result<Reply, AppError> {
        self.appraisal_command(actor, &meta, self.record_entry_inner(actor, input, &meta))
            .await
    }

    async fn record_entry_inner(
        &self,
        actor: &Actor,
        b: EntryBody,
        meta: &CommandMeta,
    ) -> Result<Reply, AppError> {
        // The text first, then who, which unit, which item; the log's state last.
        check_text("unit", &b.unit, MAX_CODE)?;
        check_text("item", &b.item, MAX_CODE)?;
        required_text("note", &b.note)?;
        if let Some(w) = &b.grade_word {
            check_text("grade_word", w, 20)?;
        }
        if b.tickets.len() > MAX_TICKETS {
            return Err(AppError::invalid(
                "tickets",
                format!("at most {MAX_TICKETS} tickets"),
            ));
        }
        if b.photos.len() > MAX_PHOTOS {
            return Err(AppError::invalid(
                "photos",
                format!("at most {MAX_PHOTOS} photos"),
            ));
        }
        let org = self.org.get();
        let reach = scope::reach(&org, actor)?;
        let unit = org.unit(&b.unit).ok_or_else(|| {
            AppError::invalid(
                "unit",
                format!(
                    "no unit {:?} in the organisation; GET /api/v1/units lists them",
                    b.unit
                ),
            )
        })?;
        let township = entry_township(&org, &reach, &b.unit, unit.kind, b.township.as_deref())?;
        let period = parse_period("period", &b.period)?;
        let checked = items::check(&org, &b, &period)?;
        let year = period.first_day.year();
        let mut tickets_checked = Vec::with_capacity(b.tickets.len());
        for (i, id) in b.tickets.iter().enumerate() {
            let visible = self
                .load(*id)
                .await?
                .is_some_and(|t| crate::auth::policy::can_see(&org, actor, &t));
            if !visible {
                return Err(AppError::invalid(
                    format!("tickets[{i}]"),
                    format!("no ticket {id} that this token may read"),
                ));
            }
            tickets_checked.push(*id);
        }
        self.check_photos(actor, "photos", &b.photos).await?;
        let ledger = self.ledger().await?;
        if ledger.is_submitted(&township, year) {
            return Err(AppError::Conflict(format!(
                "{township} has submitted its appraisal of {year} (已报送): entries for that year \
                 are closed until a district appraiser reopens it"
            )));
        }
        let mut id = Uuid::now_v7();
        if let Some(item) = &checked.one_per_year {
            let same = |e: &&crate::appraisal::ledger::Entry| {
                e.body.unit == b.unit
                    && e.body.township == township
                    && &e.body.item == item
                    && Period::parse(&e.body.period).is_some_and(|p| p.first_day.year() == year)
            };
            id = one_per_year_stream(
                &b.unit,
                &township,
                item,
                year,
                ledger.entries.iter().filter(same).count(),
            );
            if let Some(e) = ledger.active().find(same) {
                return Err(AppError::Conflict(format!(
                    "{township} has already given {} its {item} for {year} (entry {}): withdraw it \
                     first to give another",
                    b.unit, e.id
                )));
            }
        }
        let body = EntryRecorded {
            unit: b.unit.clone(),
            period: period.label.clone(),
            item: b.item.clone(),
            count: checked.count,
            points: checked.points,
            note: b.note.clone(),
            township: township.clone(),
            grade_word: b.grade_word.clone().filter(|w| !w.trim().is_empty()),
            tickets: tickets_checked,
            photos: b.photos.clone(),
        };
        let event = AppraisalEvent::EntryRecorded(body.clone());
        let now = self.now();
        let shown = crate::appraisal::ledger::Entry {
            id,
            position: 0,
            actor: actor.user.clone(),
            recorded_at: crate::store::truncate_micros(now),
            body,
            withdrawn: None,
        };
        self.append_appraisal(
            actor,
            meta,
            id,
            0,
            (event.event_type(), event.data()),
            (201, sorted_text(&EntryJson::of(&shown))),
            now,
        )
        .await
    }

    /// `POST /api/v1/appraisal/entries/{id}/withdraw`.
    pub async fn withdraw_entry(
        &self,
        actor: &Actor,
        id: Uuid,
        input: WithdrawBody,
        meta: CommandMeta,
    ) -> Result<Reply, AppError> {
        self.appraisal_command(actor, &meta, self.withdraw_inner(actor, id, input, &meta))
            .await
    }

    async fn withdraw_inner(
        &self,
        actor: &Actor,
        id: Uuid,
        b: WithdrawBody,
        meta: &CommandMeta,
    ) -> Result<Reply, AppError> {
        required_text("reason", &b.reason)?;
        let org = self.org.get();
        let reach = scope::reach(&org, actor)?;
        let ledger = self.ledger().await?;
        let entry = ledger
            .entry(id)
            .filter(|e| scope::sees(&org, actor, &e.body.unit, Some(&e.body.township)))
            .ok_or_else(|| AppError::NotFound(format!("no appraisal entry {id}")))?;
        if !reach.covers(&entry.body.township) {
            return Err(AppError::Forbidden(format!(
                "entry {id} belongs to the appraisal of {}; only its appraisers or the district's may withdraw it",
                entry.body.township
            )));
        }
        if let Some(w) = &entry.withdrawn {
            return Err(AppError::Conflict(format!(
                "entry {id} was withdrawn already by {} ({})",
                w.actor, w.reason
            )));
        }
        let year = Period::parse(&entry.body.period).map_or(0, |p| p.first_day.year());
        if ledger.is_submitted(&entry.body.township, year) {
            return Err(AppError::Conflict(format!(
                "{} has submitted its appraisal of {year} (已报送): its entries cannot be \
                 withdrawn until a district appraiser reopens it",
                entry.body.township
            )));
        }
        let now = self.now();
        let mut shown = entry.clone();
        shown.withdrawn = Some(crate::appraisal::ledger::Withdrawal {
            reason: b.reason.clone(),
            actor: actor.user.clone(),
            at: crate::store::truncate_micros(now),
            position: 0,
        });
        let event = AppraisalEvent::EntryWithdrawn(EntryWithdrawn { reason: b.reason });
        self.append_appraisal(
            actor,
            meta,
            id,
            1,
            (event.event_type(), event.data()),
            (200, sorted_text(&EntryJson::of(&shown))),
            now,
        )
        .await
    }

    /// The entries a reader may see, filtered: `unit`, `township`, and `period` (the
    /// entries whose period lies within it: `2026` lists the year's months and
    /// quarters too).
    pub async fn list_entries(
        &self,
        actor: &Actor,
        unit: Option<&str>,
        period: Option<&Period>,
        township: Option<&str>,
    ) -> Result<Vec<EntryJson>, AppError> {
        scope::reader(actor)?;
        let org = self.org.get();
        let ledger = self.ledger().await?;
        Ok(ledger
            .entries
            .iter()
            .filter(|e| unit.is_none_or(|u| e.body.unit == u))
            .filter(|e| township.is_none_or(|t| e.body.township == t))
            .filter(|e| {
                period.is_none_or(|p| {
                    Period::parse(&e.body.period)
                        .is_some_and(|q| q.first_day >= p.first_day && q.end_day <= p.end_day)
                })
            })
            .filter(|e| scope::sees(&org, actor, &e.body.unit, Some(&e.body.township)))
            .map(EntryJson::of)
            .collect())
    }
}

/// The township whose appraisal an entry for `unit` belongs to, checked against the
/// appraiser's reach: an agency's own township; for a department, the township
/// whose evaluation it is (a township appraiser's own; a district appraiser names
/// it).
fn entry_township(
    org: &Org,
    reach: &Reach,
    unit: &str,
    kind: UnitKind,
    named: Option<&str>,
) -> Result<String, AppError> {
    let named = named.map(str::trim).filter(|t| !t.is_empty());
    if let Some(t) = named {
        township(org, "township", t)?;
    }
    let outside = |t: &str| {
        AppError::Forbidden(format!(
            "{unit} is appraised by {t}; this token's appraisals are {}'s",
            match reach {
                Reach::District => "the district",
                Reach::Township(own) => own.as_str(),
            }
        ))
    };
    match kind {
        UnitKind::Department => match (reach, named) {
            (Reach::Township(own), None) => Ok(own.clone()),
            (Reach::Township(own), Some(t)) if t == own => Ok(own.clone()),
            (Reach::Township(own), Some(t)) => Err(AppError::Forbidden(format!(
                "a township appraiser gives {own}'s evaluation only, not {t}'s"
            ))),
            (Reach::District, Some(t)) => Ok(t.to_string()),
            (Reach::District, None) => Err(AppError::invalid(
                "township",
                format!(
                    "is required: name the township whose evaluation of the department {unit} this is"
                ),
            )),
        },
        UnitKind::Agency => {
            let own = org.township_of(unit).unwrap_or_default().to_string();
            if let Some(t) = named
                && t != own
            {
                return Err(AppError::invalid(
                    "township",
                    format!("{unit} is an agency of {own}, not of {t}"),
                ));
            }
            if !reach.covers(&own) {
                return Err(outside(&own));
            }
            Ok(own)
        }
        other => Err(AppError::invalid(
            "unit",
            format!(
                "{unit} is a {} and has no appraisal sheet (only departments and the judicial, \
                 enforcement and market agencies have one)",
                other.as_str()
            ),
        )),
    }
}
