//! A township's year (报送 and its reopening) and departments' grades (等次): streams
//! named by what they are about (`ledger::submission_stream`, `grade_stream`), so two
//! appraisers writing the same year meet on the stream's expected version.

use super::{
    GradeBody, GradeJson, ReopenBody, SubmissionBody, SubmissionJson, check_year, required_text,
    sorted_text, township,
};
use crate::app::commands::CommandMeta;
use crate::app::{App, Reply};
use crate::appraisal::ledger::{
    AppraisalEvent, GradeRecorded, Submission, YearReopened, YearSubmitted, coefficient,
    grade_stream, submission_stream, yellow_card,
};
use crate::auth::Actor;
use crate::auth::appraisal as scope;
use crate::error::AppError;
use crate::org::UnitKind;

impl App {
    /// `POST /api/v1/appraisal/submissions`: the township closes its year.
    pub async fn submit_year(
        &self,
        actor: &Actor,
        b: SubmissionBody,
        meta: CommandMeta,
    ) -> Result<Reply, AppError> {
        self.appraisal_command(actor, &meta, self.submit_inner(actor, b, &meta))
            .await
    }

    async fn submit_inner(
        &self,
        actor: &Actor,
        b: SubmissionBody,
        meta: &CommandMeta,
    ) -> Result<Reply, AppError> {
        let org = self.org.get();
        let reach = scope::reach(&org, actor)?;
        let name = township(&org, "township", &b.township)?.to_string();
        check_year(b.year)?;
        if !reach.covers(&b.township) {
            return Err(AppError::Forbidden(format!(
                "a township appraiser submits its own township's year, not {}'s",
                b.township
            )));
        }
        let ledger = self.ledger().await?;
        let key = (b.township.clone(), b.year);
        let before = ledger.submissions.get(&key).cloned().unwrap_or_default();
        if before.submitted {
            return Err(AppError::Conflict(format!(
                "{} has already submitted its appraisal of {} (已报送, by {})",
                b.township, b.year, before.last_actor
            )));
        }
        let event = AppraisalEvent::YearSubmitted(YearSubmitted {
            township: b.township.clone(),
            year: b.year,
        });
        let reason = before.reopened_reason.clone();
        let year = (b.township.as_str(), name.as_str(), b.year);
        self.append_year(actor, meta, year, &before, (true, reason), event, 201)
            .await
    }

    /// Appends a submission or reopening of `(township, its name, year)` after
    /// `before`, leaving it `submitted` with `reason` (the last reopening's), and
    /// answers `status` with the year as it then stands.
    #[allow(clippy::too_many_arguments)]
    async fn append_year(
        &self,
        actor: &Actor,
        meta: &CommandMeta,
        (township, name, year): (&str, &str, i32),
        before: &Submission,
        (submitted, reopened_reason): (bool, Option<String>),
        event: AppraisalEvent,
        status: u16,
    ) -> Result<Reply, AppError> {
        let now = self.now();
        let after = Submission {
            submitted,
            version: before.version + 1,
            last_actor: actor.user.clone(),
            last_at: Some(crate::store::truncate_micros(now)),
            reopened_reason,
        };
        let answer = sorted_text(&SubmissionJson::of(township, name, year, &after));
        self.append_appraisal(
            actor,
            meta,
            submission_stream(township, year),
            before.version,
            (event.event_type(), event.data()),
            (status, answer),
            now,
        )
        .await
    }

    /// `POST /api/v1/appraisal/submissions/reopen`: a district appraiser opens a
    /// closed year again.
    pub async fn reopen_year(
        &self,
        actor: &Actor,
        b: ReopenBody,
        meta: CommandMeta,
    ) -> Result<Reply, AppError> {
        self.appraisal_command(actor, &meta, self.reopen_inner(actor, b, &meta))
            .await
    }

    async fn reopen_inner(
        &self,
        actor: &Actor,
        b: ReopenBody,
        meta: &CommandMeta,
    ) -> Result<Reply, AppError> {
        required_text("reason", &b.reason)?;
        let org = self.org.get();
        scope::district(&org, actor, "reopen a submitted year")?;
        let name = township(&org, "township", &b.township)?.to_string();
        check_year(b.year)?;
        let ledger = self.ledger().await?;
        let before = ledger
            .submissions
            .get(&(b.township.clone(), b.year))
            .cloned()
            .unwrap_or_default();
        if !before.submitted {
            return Err(AppError::Conflict(format!(
                "{} has not submitted its appraisal of {}: there is nothing to reopen",
                b.township, b.year
            )));
        }
        let event = AppraisalEvent::YearReopened(YearReopened {
            township: b.township.clone(),
            year: b.year,
            reason: b.reason.clone(),
        });
        let reason = Some(b.reason.clone());
        let year = (b.township.as_str(), name.as_str(), b.year);
        self.append_year(actor, meta, year, &before, (false, reason), event, 200)
            .await
    }

    /// The townships' years a reader may see (of `year` when given): each township
    /// within the reader's unit, submitted or not.
    pub async fn list_submissions(
        &self,
        actor: &Actor,
        year: Option<i32>,
    ) -> Result<Vec<SubmissionJson>, AppError> {
        scope::reader(actor)?;
        let org = self.org.get();
        let ledger = self.ledger().await?;
        let mut out = Vec::new();
        for ((t, y), s) in &ledger.submissions {
            if year.is_some_and(|want| want != *y) || !org.is_within(t, &actor.unit) {
                continue;
            }
            let name = org.unit(t).map(|u| u.name.as_str()).unwrap_or_default();
            out.push(SubmissionJson::of(t, name, *y, s));
        }
        Ok(out)
    }

    /// `POST /api/v1/appraisal/grades`: a district appraiser records a department's
    /// grade for a year (a later one for the same year replaces it).
    pub async fn record_grade(
        &self,
        actor: &Actor,
        b: GradeBody,
        meta: CommandMeta,
    ) -> Result<Reply, AppError> {
        self.appraisal_command(actor, &meta, self.grade_inner(actor, b, &meta))
            .await
    }

    async fn grade_inner(
        &self,
        actor: &Actor,
        b: GradeBody,
        meta: &CommandMeta,
    ) -> Result<Reply, AppError> {
        required_text("note", &b.note)?;
        let org = self.org.get();
        scope::district(&org, actor, "record grades")?;
        match org.unit(&b.unit).map(|u| u.kind) {
            Some(UnitKind::Department) => {}
            Some(k) => {
                return Err(AppError::invalid(
                    "unit",
                    format!(
                        "{} is a {}: grades (一至四等) are given to departments",
                        b.unit,
                        k.as_str()
                    ),
                ));
            }
            None => {
                return Err(AppError::invalid(
                    "unit",
                    format!("no unit {:?} in the organisation", b.unit),
                ));
            }
        }
        check_year(b.year)?;
        let grade = u8::try_from(b.grade)
            .ok()
            .filter(|g| (1..=4).contains(g))
            .ok_or_else(|| {
                AppError::invalid("grade", "must be 1 (一等), 2 (二等), 3 (三等) or 4 (四等)")
            })?;
        let ledger = self.ledger().await?;
        let version = ledger
            .grades
            .get(&(b.unit.clone(), b.year))
            .map_or(0, |g| g.version);
        let now = self.now();
        let shown = GradeJson {
            actor: actor.user.clone(),
            at: crate::store::truncate_micros(now),
            coefficient: coefficient(grade),
            grade,
            note: b.note.clone(),
            unit: b.unit.clone(),
            version: version + 1,
            year: b.year,
            yellow_card: yellow_card(grade),
        };
        let event = AppraisalEvent::GradeRecorded(GradeRecorded {
            unit: b.unit.clone(),
            year: b.year,
            grade,
            note: b.note,
        });
        self.append_appraisal(
            actor,
            meta,
            grade_stream(&b.unit, b.year),
            version,
            (event.event_type(), event.data()),
            (201, sorted_text(&shown)),
            now,
        )
        .await
    }
}
