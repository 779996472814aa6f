//! Tests of the pure ticket aggregate (DESIGN §2), written as given / when / then:
//!
//! ```text
//! given(history).when(command).then_events(expected)
//! given(history).when(command).then_refused(NotAllowed)
//! ```
//!
//! `given` folds a history with [`Ticket::apply`] at fixed times, `when` runs
//! [`decide`] at the fixed time [`now`] with [`TestDeadlines`], whose arithmetic is
//! in plain calendar days so every expected deadline can be read off the test:
//! sign = from + 1 day, handle = from + 5 days, extend = due + n days,
//! rework = from + 3 days.
//!
//! Sections: the harness and the fixtures; one test per transition; the refusal
//! table over every state × every command; the named refusals; property tests over
//! random command sequences; regressions for bugs these tests found.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;

// ---------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------

/// Deadline arithmetic in plain days, so that expected deadlines are obvious.
struct TestDeadlines;

impl Deadlines for TestDeadlines {
    fn sign_due(&self, from: DateTime<Utc>, _category: &str, _urgency: Urgency) -> DateTime<Utc> {
        from + Duration::days(1)
    }
    fn handle_due(&self, from: DateTime<Utc>, _category: &str, _urgency: Urgency) -> DateTime<Utc> {
        from + Duration::days(5)
    }
    fn extend(&self, due: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        due + Duration::days(i64::from(days))
    }
    fn rework_due(&self, from: DateTime<Utc>) -> DateTime<Utc> {
        from + Duration::days(3)
    }
}

static DEADLINES: TestDeadlines = TestDeadlines;

/// The ticket every test is about, and another one it may duplicate.
const ID: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
const OTHER: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);

const NUMBER: &str = "20240304-000001";
const DISTRICT: &str = "district-centre";
const TOWNSHIP: &str = "town-centre";
const DEPT: &str = "dept-city-management";
const AGENCY: &str = "agency-law-enforcement";
const GRID: &str = "grid-0101";

/// When the history starts; the i-th given event happened i hours later.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 4, 8, 0, 0).unwrap()
}

/// When the command under test is decided (a week after the history began).
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 11, 8, 0, 0).unwrap()
}

fn hour(i: usize) -> DateTime<Utc> {
    t0() + Duration::hours(i as i64)
}

fn days(n: i64) -> Duration {
    Duration::days(n)
}

/// The deadlines that `assigned_to` writes into the history.
fn given_sign_due() -> DateTime<Utc> {
    t0() + days(1)
}
fn given_handle_due() -> DateTime<Utc> {
    t0() + days(5)
}

fn ctx_at(now: DateTime<Utc>) -> Ctx<'static> {
    Ctx {
        now,
        deadlines: &DEADLINES,
    }
}

/// Folds a history at fixed times (event i at `hour(i)`).
fn fold(events: &[TicketEvent]) -> Option<Ticket> {
    events
        .iter()
        .enumerate()
        .fold(None, |t, (i, e)| Some(Ticket::apply(t, ID, e, hour(i))))
}

struct Given {
    history: Vec<TicketEvent>,
    ticket: Option<Ticket>,
}

fn given(history: Vec<TicketEvent>) -> Given {
    let ticket = fold(&history);
    Given { history, ticket }
}

fn given_no_ticket() -> Given {
    given(vec![])
}

impl Given {
    fn when(self, cmd: Command) -> When {
        let shown = format!("{cmd:?}");
        let result = decide(self.ticket.as_ref(), cmd, &ctx_at(now()));
        When {
            given: self,
            cmd: shown,
            result,
        }
    }

    /// The state the history folds to (for tests that look at it directly).
    fn ticket(&self) -> &Ticket {
        self.ticket.as_ref().expect("a non-empty history")
    }
}

struct When {
    given: Given,
    cmd: String,
    result: Result<Vec<TicketEvent>, DomainError>,
}

/// What a refusal must look like.
#[derive(Debug, Clone, Copy)]
enum Refused {
    /// `DomainError::Invalid` naming this field.
    Invalid(&'static str),
    /// `DomainError::NotAllowed`, any message.
    NotAllowed,
    /// `DomainError::NotAllowed` whose message contains this text.
    NotAllowedSaying(&'static str),
    NotFound,
    AlreadyExists,
}
use Refused::*;

impl Refused {
    fn matches(self, e: &DomainError) -> bool {
        match (self, e) {
            (Invalid(f), DomainError::Invalid { field, .. }) => f == *field,
            (NotAllowed, DomainError::NotAllowed(_)) => true,
            (NotAllowedSaying(s), DomainError::NotAllowed(m)) => m.contains(s),
            (NotFound, DomainError::NotFound) => true,
            (AlreadyExists, DomainError::AlreadyExists) => true,
            _ => false,
        }
    }
}

impl When {
    /// Asserts exactly these events, applies them after the history (at now()) and
    /// returns the resulting ticket for further checks.
    #[track_caller]
    fn then_events(self, expected: Vec<TicketEvent>) -> Ticket {
        let events = match self.result {
            Ok(ev) => ev,
            Err(e) => panic!("{} was refused: {e:?}", self.cmd),
        };
        assert_eq!(events, expected, "events of {}", self.cmd);
        let mut t = self.given.ticket;
        for e in &events {
            t = Some(Ticket::apply(t, ID, e, now()));
        }
        let t = t.expect("at least one event");
        assert_eq!(
            t.version as usize,
            self.given.history.len() + events.len(),
            "version counts the events"
        );
        t
    }

    #[track_caller]
    fn then_refused(self, expected: Refused) {
        match self.result {
            Ok(ev) => panic!(
                "{} should be refused ({expected:?}) but gave {ev:?}",
                self.cmd
            ),
            Err(e) => assert!(
                expected.matches(&e),
                "{} refused with {e:?}, expected {expected:?}",
                self.cmd
            ),
        }
    }
}

// ---------------------------------------------------------------------------------
// Fixtures: commands
// ---------------------------------------------------------------------------------

fn hotline_complaint() -> AcceptTicket {
    AcceptTicket {
        id: ID,
        number: NUMBER.into(),
        source: Source::Hotline,
        category: "exposed_garbage".into(),
        urgency: Urgency::Normal,
        title: "垃圾暴露".into(),
        description: "小区门口垃圾堆放三天无人清理".into(),
        location: Location {
            address: Some("海埠路 1 号".into()),
            lat: Some(37.4512),
            lon: Some(122.1123),
            grid: Some(GRID.into()),
        },
        reporter_ref: Some(Uuid::from_u128(77)),
        related_to: None,
        suggested_unit: Some(DEPT.into()),
        centre: DISTRICT.into(),
        self_handled: None,
        photos: vec![],
    }
}

fn grid_report() -> AcceptTicket {
    AcceptTicket {
        source: Source::Grid,
        centre: TOWNSHIP.into(),
        reporter_ref: None,
        ..hotline_complaint()
    }
}

fn fixed_on_the_spot(result: &str) -> AcceptTicket {
    AcceptTicket {
        self_handled: Some(result.into()),
        ..grid_report()
    }
}

fn accept(a: AcceptTicket) -> Command {
    Command::Accept(Box::new(a))
}

/// A dispatch from the district centre to a unit that does the work.
fn assign(unit: &str) -> Command {
    Command::Assign {
        from_unit: DISTRICT.into(),
        unit: unit.into(),
        co_units: vec![],
        note: None,
        to_centre: false,
    }
}

fn assign_with_co_units(unit: &str, co: &[&str]) -> Command {
    Command::Assign {
        from_unit: DISTRICT.into(),
        unit: unit.into(),
        co_units: co.iter().map(|s| s.to_string()).collect(),
        note: Some("请协同处置".into()),
        to_centre: false,
    }
}

/// The first hop: the district centre passes the ticket to the township centre.
fn assign_to_township() -> Command {
    Command::Assign {
        from_unit: DISTRICT.into(),
        unit: TOWNSHIP.into(),
        co_units: vec![],
        note: None,
        to_centre: true,
    }
}

/// The second hop (转派): the township centre dispatches on to its agency.
fn township_dispatches_to(unit: &str) -> Command {
    Command::Assign {
        from_unit: TOWNSHIP.into(),
        unit: unit.into(),
        co_units: vec![],
        note: None,
        to_centre: false,
    }
}

fn sign(handler: &str) -> Command {
    Command::Sign {
        unit: DEPT.into(),
        handler: handler.into(),
    }
}

fn return_it(reason: &str) -> Command {
    Command::Return {
        unit: DEPT.into(),
        reason: reason.into(),
    }
}

fn request_extension(days: u32) -> Command {
    Command::RequestExtension {
        days,
        reason: "需要协调多个部门".into(),
    }
}

fn approve_extension() -> Command {
    Command::DecideExtension {
        approved: true,
        days: None,
    }
}

fn approve_extension_for(days: u32) -> Command {
    Command::DecideExtension {
        approved: true,
        days: Some(days),
    }
}

fn reject_extension() -> Command {
    Command::DecideExtension {
        approved: false,
        days: None,
    }
}

fn supervise(note: &str) -> Command {
    Command::Supervise { note: note.into() }
}

fn handle(result: &str) -> Command {
    Command::Handle {
        result: result.into(),
        photos: vec!["photo-1.jpg".into()],
    }
}

fn verify_passed() -> Command {
    Command::Verify {
        passed: true,
        note: "现场核查已清理".into(),
    }
}

fn verify_failed(note: &str) -> Command {
    Command::Verify {
        passed: false,
        note: note.into(),
    }
}

fn feedback(s: Satisfaction) -> Command {
    Command::Feedback { satisfaction: s }
}

fn comment(text: &str) -> Command {
    Command::Comment { text: text.into() }
}

fn close(code: CloseCode) -> Command {
    Command::Close {
        code,
        duplicate_of: None,
    }
}

fn close_as_duplicate_of(id: Uuid) -> Command {
    Command::Close {
        code: CloseCode::Duplicate,
        duplicate_of: Some(id),
    }
}

// ---------------------------------------------------------------------------------
// Fixtures: events and histories
// ---------------------------------------------------------------------------------

fn accepted_from(a: &AcceptTicket) -> TicketEvent {
    TicketEvent::TicketAccepted(Accepted {
        number: a.number.clone(),
        source: a.source,
        category: a.category.clone(),
        urgency: a.urgency,
        title: a.title.clone(),
        description: a.description.clone(),
        location: a.location.clone(),
        reporter_ref: a.reporter_ref,
        related_to: a.related_to,
        suggested_unit: a.suggested_unit.clone(),
        centre: a.centre.clone(),
        photos: a.photos.clone(),
    })
}

fn accepted() -> TicketEvent {
    accepted_from(&hotline_complaint())
}

fn assigned_event(from: &str, unit: &str, to_centre: bool) -> TicketEvent {
    TicketEvent::TicketAssigned(Assigned {
        from_unit: from.into(),
        unit: unit.into(),
        co_units: vec![],
        note: None,
        to_centre,
        sign_due_at: (!to_centre).then(given_sign_due),
        handle_due_at: (!to_centre).then(given_handle_due),
    })
}

fn assigned_to(unit: &str) -> TicketEvent {
    assigned_event(DISTRICT, unit, false)
}

fn assigned_to_township() -> TicketEvent {
    assigned_event(DISTRICT, TOWNSHIP, true)
}

fn signed_by(handler: &str) -> TicketEvent {
    TicketEvent::TicketSigned(Signed {
        unit: DEPT.into(),
        handler: handler.into(),
    })
}

fn returned(reason: &str, to: &str) -> TicketEvent {
    TicketEvent::TicketReturned(Returned {
        unit: DEPT.into(),
        reason: reason.into(),
        to_unit: to.into(),
    })
}

fn extension_requested(days: u32) -> TicketEvent {
    TicketEvent::ExtensionRequested(ExtensionRequested {
        days,
        reason: "需要协调多个部门".into(),
    })
}

fn supervised(count: u32) -> TicketEvent {
    TicketEvent::TicketSupervised(Supervised {
        note: "请尽快处理".into(),
        count,
    })
}

fn handled_event(result: &str) -> TicketEvent {
    TicketEvent::TicketHandled(Handled {
        result: result.into(),
        photos: vec!["photo-1.jpg".into()],
        self_handled: false,
        legacy_photo_names: vec![],
    })
}

fn verification_passed() -> TicketEvent {
    TicketEvent::VerificationPassed(VerificationPassed {
        note: "现场核查已清理".into(),
    })
}

fn verification_failed(due: DateTime<Utc>) -> TicketEvent {
    TicketEvent::VerificationFailed(VerificationFailed {
        note: "仍有垃圾".into(),
        handle_due_at: due,
    })
}

fn feedback_recorded(s: Satisfaction) -> TicketEvent {
    TicketEvent::CitizenFeedbackRecorded(FeedbackRecorded { satisfaction: s })
}

fn closed(code: CloseCode, duplicate_of: Option<Uuid>) -> TicketEvent {
    TicketEvent::TicketClosed(Closed { code, duplicate_of })
}

/// Histories, each a step further along the lifecycle.
fn an_accepted_ticket() -> Vec<TicketEvent> {
    vec![accepted()]
}
fn a_returned_ticket() -> Vec<TicketEvent> {
    vec![
        accepted(),
        assigned_to(DEPT),
        returned("不属于本单位职责", DISTRICT),
    ]
}
fn a_ticket_at_the_township_centre() -> Vec<TicketEvent> {
    vec![accepted(), assigned_to_township()]
}
fn a_dispatched_ticket() -> Vec<TicketEvent> {
    vec![accepted(), assigned_to(DEPT)]
}
fn a_signed_ticket() -> Vec<TicketEvent> {
    vec![accepted(), assigned_to(DEPT), signed_by("张三")]
}
fn a_ticket_with_an_extension_pending() -> Vec<TicketEvent> {
    let mut h = a_signed_ticket();
    h.push(extension_requested(3));
    h
}
fn a_handled_ticket() -> Vec<TicketEvent> {
    let mut h = a_signed_ticket();
    h.push(handled_event("已清理"));
    h
}
fn a_verified_ticket() -> Vec<TicketEvent> {
    let mut h = a_handled_ticket();
    h.push(verification_passed());
    h
}
fn a_ticket_sent_back_for_rework() -> Vec<TicketEvent> {
    let mut h = a_handled_ticket();
    h.push(verification_failed(t0() + days(9)));
    h
}
fn a_closed_ticket() -> Vec<TicketEvent> {
    let mut h = a_verified_ticket();
    h.push(closed(CloseCode::Resolved, None));
    h
}
fn a_ticket_closed_as_duplicate() -> Vec<TicketEvent> {
    vec![accepted(), closed(CloseCode::Duplicate, Some(OTHER))]
}

// ---------------------------------------------------------------------------------
// Transitions (DESIGN §2), one by one
// ---------------------------------------------------------------------------------

#[test]
fn a_hotline_complaint_is_accepted() {
    let t = given_no_ticket()
        .when(accept(hotline_complaint()))
        .then_events(vec![accepted()]);
    assert_eq!(t.state, State::Accepted);
    assert_eq!(t.centre, DISTRICT);
    assert_eq!(t.unit, None);
    assert_eq!(t.number, NUMBER);
    assert_eq!(t.created_at, now());
}

#[test]
fn a_grid_report_fixed_on_the_spot_is_accepted_and_handled_at_once() {
    let t = given_no_ticket()
        .when(accept(fixed_on_the_spot("已当场清理")))
        .then_events(vec![
            accepted_from(&grid_report()),
            TicketEvent::TicketHandled(Handled {
                result: "已当场清理".into(),
                photos: vec![],
                self_handled: true,
                legacy_photo_names: vec![],
            }),
        ]);
    assert_eq!(t.state, State::Handled, "still needs verification");
    assert!(t.self_handled);
    assert_eq!(
        t.unit.as_deref(),
        Some(GRID),
        "the reporter's own grid did the work"
    );
    assert_eq!(t.handled_at, Some(now()));
    assert_eq!(t.result.as_deref(), Some("已当场清理"));
}

#[test]
fn a_hotline_complaint_cannot_be_fixed_on_the_spot() {
    given_no_ticket()
        .when(accept(AcceptTicket {
            self_handled: Some("已处理".into()),
            ..hotline_complaint()
        }))
        .then_refused(Invalid("self_handled"));
}

#[test]
fn a_repeat_complaint_links_to_the_earlier_ticket() {
    let a = AcceptTicket {
        related_to: Some(OTHER),
        ..hotline_complaint()
    };
    let t = given_no_ticket()
        .when(accept(a.clone()))
        .then_events(vec![accepted_from(&a)]);
    assert_eq!(t.related_to, Some(OTHER));
}

#[test]
fn dispatch_from_accepted_starts_the_deadlines_now() {
    let t = given(an_accepted_ticket())
        .when(assign(DEPT))
        .then_events(vec![TicketEvent::TicketAssigned(Assigned {
            from_unit: DISTRICT.into(),
            unit: DEPT.into(),
            co_units: vec![],
            note: None,
            to_centre: false,
            sign_due_at: Some(now() + days(1)),
            handle_due_at: Some(now() + days(5)),
        })]);
    assert_eq!(t.state, State::Assigned);
    assert_eq!(t.unit.as_deref(), Some(DEPT));
    assert!(!t.at_centre);
    assert_eq!(t.assigned_at, Some(now()));
    assert_eq!(t.sign_due_at, Some(now() + days(1)));
    assert_eq!(t.handle_due_at, Some(now() + days(5)));
}

#[test]
fn dispatch_names_co_units_without_duplicates() {
    let t = given(an_accepted_ticket())
        .when(assign_with_co_units(DEPT, &[AGENCY, AGENCY]))
        .then_events(vec![TicketEvent::TicketAssigned(Assigned {
            from_unit: DISTRICT.into(),
            unit: DEPT.into(),
            co_units: vec![AGENCY.into()],
            note: Some("请协同处置".into()),
            to_centre: false,
            sign_due_at: Some(now() + days(1)),
            handle_due_at: Some(now() + days(5)),
        })]);
    assert_eq!(t.co_units, vec![AGENCY.to_string()]);
}

#[test]
fn dispatch_to_a_centre_runs_no_deadline() {
    let t = given(an_accepted_ticket())
        .when(assign_to_township())
        .then_events(vec![TicketEvent::TicketAssigned(Assigned {
            from_unit: DISTRICT.into(),
            unit: TOWNSHIP.into(),
            co_units: vec![],
            note: None,
            to_centre: true,
            sign_due_at: None,
            handle_due_at: None,
        })]);
    assert_eq!(t.state, State::Assigned);
    assert!(t.at_centre);
    assert_eq!(t.sign_due_at, None);
    assert_eq!(t.handle_due_at, None);
}

#[test]
fn the_township_centre_dispatches_on_and_the_deadlines_run_from_that_hop() {
    let t = given(a_ticket_at_the_township_centre())
        .when(township_dispatches_to(AGENCY))
        .then_events(vec![TicketEvent::TicketAssigned(Assigned {
            from_unit: TOWNSHIP.into(),
            unit: AGENCY.into(),
            co_units: vec![],
            note: None,
            to_centre: false,
            sign_due_at: Some(now() + days(1)),
            handle_due_at: Some(now() + days(5)),
        })]);
    assert_eq!(t.unit.as_deref(), Some(AGENCY));
    assert_eq!(t.centre, TOWNSHIP, "the township dispatched this hop");
    assert!(!t.at_centre);
}

#[test]
fn a_township_may_pass_a_ticket_up_to_the_district() {
    let t = given(a_ticket_at_the_township_centre())
        .when(Command::Assign {
            from_unit: TOWNSHIP.into(),
            unit: DISTRICT.into(),
            co_units: vec![],
            note: Some("吹哨报到".into()),
            to_centre: true,
        })
        .then_events(vec![TicketEvent::TicketAssigned(Assigned {
            from_unit: TOWNSHIP.into(),
            unit: DISTRICT.into(),
            co_units: vec![],
            note: Some("吹哨报到".into()),
            to_centre: true,
            sign_due_at: None,
            handle_due_at: None,
        })]);
    assert!(t.at_centre);
    assert_eq!(t.unit.as_deref(), Some(DISTRICT));
}

#[test]
fn the_unit_signs_for_a_dispatched_ticket_naming_its_handler() {
    let t = given(a_dispatched_ticket())
        .when(sign("张三"))
        .then_events(vec![signed_by("张三")]);
    assert_eq!(t.state, State::Assigned);
    assert_eq!(t.handler.as_deref(), Some("张三"));
    assert_eq!(t.signed_at, Some(now()));
}

#[test]
fn a_returned_ticket_goes_back_to_the_dispatching_centre() {
    let t = given(a_signed_ticket())
        .when(return_it("不属于本单位职责"))
        .then_events(vec![returned("不属于本单位职责", DISTRICT)]);
    assert_eq!(t.state, State::Accepted);
    assert_eq!(t.centre, DISTRICT);
    assert_eq!(t.returns, 1);
    assert_eq!(t.unit, None);
    assert!(t.co_units.is_empty());
    assert_eq!(t.handler, None);
    assert_eq!(t.signed_at, None);
    assert_eq!(t.sign_due_at, None);
    assert_eq!(t.handle_due_at, None);
}

#[test]
fn a_returned_ticket_is_never_suggested_back_to_the_unit_that_returned_it() {
    // Given a complaint the catalogue routes to DEPT, dispatched there and signed,
    assert_eq!(
        fold(&[accepted()]).expect("accepted").suggestion(),
        Some(DEPT)
    );
    // when DEPT sends it back,
    let t = given(a_signed_ticket())
        .when(return_it("不属于本单位职责"))
        .then_events(vec![returned("不属于本单位职责", DISTRICT)]);
    // then the dispatcher is no longer steered to DEPT, and sees why it came back.
    assert_eq!(t.suggestion(), None);
    assert_eq!(
        t.suggested_unit.as_deref(),
        Some(DEPT),
        "the event is kept as it was"
    );
    assert_eq!(t.returned_by, vec![DEPT.to_string()]);
    assert_eq!(t.return_reason.as_deref(), Some("不属于本单位职责"));
}

#[test]
fn a_return_by_another_unit_keeps_the_suggestion_and_a_new_dispatch_clears_the_reason() {
    let mut h = vec![accepted(), assigned_to(AGENCY)];
    h.push(TicketEvent::TicketReturned(Returned {
        unit: AGENCY.into(),
        reason: "非本所职责".into(),
        to_unit: DISTRICT.into(),
    }));
    let t = fold(&h).expect("a ticket");
    assert_eq!(t.suggestion(), Some(DEPT), "AGENCY returned it, not DEPT");
    assert_eq!(t.returned_by, vec![AGENCY.to_string()]);
    h.push(assigned_to(DEPT));
    let t = fold(&h).expect("a ticket");
    assert_eq!(t.return_reason, None);
    assert_eq!(t.returned_by, vec![AGENCY.to_string()], "kept for good");
}

#[test]
fn a_ticket_returned_after_the_second_hop_goes_back_to_the_township() {
    let mut h = a_ticket_at_the_township_centre();
    h.push(assigned_event(TOWNSHIP, AGENCY, false));
    let t = given(h)
        .when(return_it("非本所职责"))
        .then_events(vec![returned("非本所职责", TOWNSHIP)]);
    assert_eq!(t.centre, TOWNSHIP);
    assert_eq!(t.state, State::Accepted);
}

#[test]
fn returns_are_counted() {
    let mut h = a_returned_ticket();
    h.push(assigned_to(AGENCY));
    let t = given(h)
        .when(return_it("仍不属于"))
        .then_events(vec![returned("仍不属于", DISTRICT)]);
    assert_eq!(t.returns, 2);
}

#[test]
fn a_returned_ticket_can_be_dispatched_again() {
    let t = given(a_returned_ticket())
        .when(assign(AGENCY))
        .then_events(vec![TicketEvent::TicketAssigned(Assigned {
            from_unit: DISTRICT.into(),
            unit: AGENCY.into(),
            co_units: vec![],
            note: None,
            to_centre: false,
            sign_due_at: Some(now() + days(1)),
            handle_due_at: Some(now() + days(5)),
        })]);
    assert_eq!(t.returns, 1, "the earlier return still counts");
}

#[test]
fn the_unit_requests_an_extension() {
    let t = given(a_signed_ticket())
        .when(request_extension(3))
        .then_events(vec![extension_requested(3)]);
    assert_eq!(t.pending_extension_days, Some(3));
    assert_eq!(
        t.handle_due_at,
        Some(given_handle_due()),
        "unchanged until decided"
    );
}

#[test]
fn an_approved_extension_moves_the_handle_deadline_by_the_requested_days() {
    let t = given(a_ticket_with_an_extension_pending())
        .when(approve_extension())
        .then_events(vec![TicketEvent::ExtensionDecided(ExtensionDecided {
            approved: true,
            days: 3,
            handle_due_at: Some(given_handle_due() + days(3)),
        })]);
    assert_eq!(t.handle_due_at, Some(given_handle_due() + days(3)));
    assert_eq!(t.extensions, 1);
    assert_eq!(t.pending_extension_days, None);
}

#[test]
fn the_centre_may_approve_fewer_days_than_requested() {
    let t = given(a_ticket_with_an_extension_pending())
        .when(approve_extension_for(2))
        .then_events(vec![TicketEvent::ExtensionDecided(ExtensionDecided {
            approved: true,
            days: 2,
            handle_due_at: Some(given_handle_due() + days(2)),
        })]);
    assert_eq!(t.handle_due_at, Some(given_handle_due() + days(2)));
}

#[test]
fn a_rejected_extension_keeps_the_handle_deadline() {
    let t = given(a_ticket_with_an_extension_pending())
        .when(reject_extension())
        .then_events(vec![TicketEvent::ExtensionDecided(ExtensionDecided {
            approved: false,
            days: 0,
            handle_due_at: None,
        })]);
    assert_eq!(t.handle_due_at, Some(given_handle_due()));
    assert_eq!(t.extensions, 0);
    assert_eq!(t.pending_extension_days, None);
}

#[test]
fn after_a_decision_the_unit_may_ask_again() {
    let mut h = a_ticket_with_an_extension_pending();
    h.push(TicketEvent::ExtensionDecided(ExtensionDecided {
        approved: false,
        days: 0,
        handle_due_at: None,
    }));
    given(h)
        .when(request_extension(5))
        .then_events(vec![extension_requested(5)]);
}

#[test]
fn the_first_supervision_counts_one() {
    let t = given(a_dispatched_ticket())
        .when(supervise("请尽快处理"))
        .then_events(vec![supervised(1)]);
    assert_eq!(t.supervisions, 1);
}

#[test]
fn a_second_supervision_counts_two() {
    let mut h = a_dispatched_ticket();
    h.push(supervised(1));
    let t = given(h)
        .when(supervise("请尽快处理"))
        .then_events(vec![supervised(2)]);
    assert_eq!(t.supervisions, 2, "the second is 重复督办");
}

#[test]
fn a_centre_may_supervise_a_ticket_waiting_at_another_centre() {
    given(a_ticket_at_the_township_centre())
        .when(supervise("请尽快处理"))
        .then_events(vec![supervised(1)]);
}

#[test]
fn a_signed_ticket_is_handled() {
    let t = given(a_signed_ticket())
        .when(handle("已清理"))
        .then_events(vec![handled_event("已清理")]);
    assert_eq!(t.state, State::Handled);
    assert_eq!(t.handled_at, Some(now()));
    assert_eq!(t.result.as_deref(), Some("已清理"));
    assert!(!t.self_handled);
}

#[test]
fn an_unsigned_ticket_cannot_be_handled() {
    given(a_dispatched_ticket())
        .when(handle("已清理"))
        .then_refused(NotAllowedSaying("签收"));
}

#[test]
fn a_passed_verification_verifies_the_ticket() {
    let t = given(a_handled_ticket())
        .when(verify_passed())
        .then_events(vec![verification_passed()]);
    assert_eq!(t.state, State::Verified);
}

#[test]
fn a_failed_verification_sends_the_ticket_back_with_a_new_deadline() {
    let t = given(a_handled_ticket())
        .when(verify_failed("仍有垃圾"))
        .then_events(vec![verification_failed(now() + days(3))]);
    assert_eq!(t.state, State::Assigned);
    assert_eq!(t.handle_due_at, Some(now() + days(3)));
    assert_eq!(t.reworks, 1);
    assert_eq!(t.handled_at, None);
    assert_eq!(t.unit.as_deref(), Some(DEPT), "same unit does it again");
    assert!(t.signed_at.is_some(), "no need to sign again");
}

#[test]
fn a_reworked_ticket_is_handled_again_and_reworks_accumulate() {
    let mut h = a_ticket_sent_back_for_rework();
    h.push(handled_event("再次清理"));
    let t = given(h)
        .when(verify_failed("仍有垃圾"))
        .then_events(vec![verification_failed(now() + days(3))]);
    assert_eq!(t.reworks, 2);
}

#[test]
fn a_self_handled_report_that_fails_verification_goes_back_to_its_grid() {
    let h = vec![
        accepted_from(&grid_report()),
        TicketEvent::TicketHandled(Handled {
            result: "已当场清理".into(),
            photos: vec![],
            self_handled: true,
            legacy_photo_names: vec![],
        }),
    ];
    let t = given(h)
        .when(verify_failed("仍有垃圾"))
        .then_events(vec![verification_failed(now() + days(3))]);
    assert_eq!(t.state, State::Assigned);
    assert_eq!(t.unit.as_deref(), Some(GRID));
    assert!(
        t.signed_at.is_some(),
        "the grid signed for it by reporting it"
    );
}

#[test]
fn the_citizen_gives_feedback_on_a_handled_ticket() {
    let t = given(a_handled_ticket())
        .when(feedback(Satisfaction::Satisfied))
        .then_events(vec![feedback_recorded(Satisfaction::Satisfied)]);
    assert_eq!(t.satisfaction, Some(Satisfaction::Satisfied));
    assert_eq!(t.state, State::Handled, "feedback does not move the state");
}

#[test]
fn the_citizen_gives_feedback_on_a_verified_ticket() {
    let t = given(a_verified_ticket())
        .when(feedback(Satisfaction::Unsatisfied))
        .then_events(vec![feedback_recorded(Satisfaction::Unsatisfied)]);
    assert_eq!(t.satisfaction, Some(Satisfaction::Unsatisfied));
    assert_eq!(t.state, State::Verified);
}

#[test]
fn anyone_may_comment_while_the_ticket_is_open() {
    for h in [
        an_accepted_ticket(),
        a_ticket_at_the_township_centre(),
        a_signed_ticket(),
        a_handled_ticket(),
        a_verified_ticket(),
    ] {
        let before = given(h.clone()).ticket().state;
        let t =
            given(h)
                .when(comment("已电话联系"))
                .then_events(vec![TicketEvent::TicketCommented(Commented {
                    text: "已电话联系".into(),
                })]);
        assert_eq!(t.state, before, "a comment does not move the state");
    }
}

#[test]
fn a_verified_ticket_closes_as_resolved() {
    let t = given(a_verified_ticket())
        .when(close(CloseCode::Resolved))
        .then_events(vec![closed(CloseCode::Resolved, None)]);
    assert_eq!(t.state, State::Closed);
    assert_eq!(t.close_code, Some(CloseCode::Resolved));
    assert_eq!(t.closed_at, Some(now()));
}

#[test]
fn an_accepted_ticket_closes_as_a_duplicate_of_another() {
    let t = given(an_accepted_ticket())
        .when(close_as_duplicate_of(OTHER))
        .then_events(vec![closed(CloseCode::Duplicate, Some(OTHER))]);
    assert_eq!(t.state, State::Closed);
    assert_eq!(t.close_code, Some(CloseCode::Duplicate));
    assert_eq!(t.duplicate_of, Some(OTHER));
}

#[test]
fn an_accepted_ticket_closes_as_invalid() {
    let t = given(an_accepted_ticket())
        .when(close(CloseCode::Invalid))
        .then_events(vec![closed(CloseCode::Invalid, None)]);
    assert_eq!(t.close_code, Some(CloseCode::Invalid));
}

#[test]
fn an_accepted_ticket_closes_as_withdrawn() {
    let t = given(an_accepted_ticket())
        .when(close(CloseCode::Withdrawn))
        .then_events(vec![closed(CloseCode::Withdrawn, None)]);
    assert_eq!(t.close_code, Some(CloseCode::Withdrawn));
}

#[test]
fn a_returned_ticket_may_be_closed_as_invalid() {
    given(a_returned_ticket())
        .when(close(CloseCode::Invalid))
        .then_events(vec![closed(CloseCode::Invalid, None)]);
}

#[test]
fn the_full_lifecycle_folds_to_the_same_ticket_step_by_step_and_at_once() {
    let cmds = vec![
        accept(hotline_complaint()),
        assign_to_township(),
        township_dispatches_to(AGENCY),
        sign("李四"),
        request_extension(2),
        approve_extension(),
        supervise("请尽快处理"),
        supervise("再次督办"),
        handle("已处理"),
        verify_failed("不彻底"),
        handle("已彻底处理"),
        verify_passed(),
        feedback(Satisfaction::BasicallySatisfied),
        comment("归档"),
        close(CloseCode::Resolved),
    ];
    let mut t: Option<Ticket> = None;
    let mut log: Vec<(TicketEvent, DateTime<Utc>)> = vec![];
    for (i, cmd) in cmds.into_iter().enumerate() {
        let now = t0() + Duration::hours(i as i64);
        let shown = format!("{cmd:?}");
        let events = decide(t.as_ref(), cmd, &ctx_at(now))
            .unwrap_or_else(|e| panic!("step {i} {shown} refused: {e}"));
        for e in events {
            t = Some(Ticket::apply(t, ID, &e, now));
            log.push((e, now));
        }
    }
    let t = t.unwrap();
    assert_eq!(t.state, State::Closed);
    assert_eq!(t.version, 15);
    assert_eq!(t.supervisions, 2);
    assert_eq!(t.extensions, 1);
    assert_eq!(t.reworks, 1);
    assert_eq!(t.returns, 0);
    assert_eq!(t.satisfaction, Some(Satisfaction::BasicallySatisfied));
    // rework deadline: the failed verification was decided at step 9.
    assert_eq!(t.handle_due_at, Some(t0() + Duration::hours(9) + days(3)));
    let folded = Ticket::fold(ID, log.iter().map(|(e, at)| (e, *at)));
    assert_eq!(folded.as_ref(), Some(&t));
}

// ---------------------------------------------------------------------------------
// The refusal table: every situation × every command
// ---------------------------------------------------------------------------------

/// Named situations covering every state (and the sub-states of ASSIGNED).
fn situations() -> Vec<(&'static str, Vec<TicketEvent>)> {
    vec![
        ("no ticket", vec![]),
        ("accepted", an_accepted_ticket()),
        ("returned", a_returned_ticket()),
        ("at township centre", a_ticket_at_the_township_centre()),
        ("dispatched", a_dispatched_ticket()),
        ("signed", a_signed_ticket()),
        ("extension pending", a_ticket_with_an_extension_pending()),
        ("handled", a_handled_ticket()),
        ("verified", a_verified_ticket()),
        ("sent back for rework", a_ticket_sent_back_for_rework()),
        ("closed resolved", a_closed_ticket()),
        ("closed duplicate", a_ticket_closed_as_duplicate()),
    ]
}

/// One valid instance of every command (and of each meaningful variant).
fn all_commands() -> Vec<(&'static str, Command)> {
    vec![
        ("accept", accept(hotline_complaint())),
        ("assign", assign(AGENCY)),
        ("assign to township", assign_to_township()),
        ("sign", sign("张三")),
        ("return", return_it("不属于本单位")),
        ("request extension", request_extension(3)),
        ("approve extension", approve_extension()),
        ("reject extension", reject_extension()),
        ("supervise", supervise("请尽快处理")),
        ("handle", handle("已处理")),
        ("verify passed", verify_passed()),
        ("verify failed", verify_failed("不合格")),
        ("feedback", feedback(Satisfaction::Satisfied)),
        ("comment", comment("备注")),
        ("close resolved", close(CloseCode::Resolved)),
        ("close duplicate", close_as_duplicate_of(OTHER)),
        ("close invalid", close(CloseCode::Invalid)),
        ("close withdrawn", close(CloseCode::Withdrawn)),
    ]
}

/// Every (situation, command) pair that decide allows. Everything else is refused.
const ALLOWED: &[(&str, &str)] = &[
    ("no ticket", "accept"),
    // ACCEPTED: dispatch, comment, close without handling.
    ("accepted", "assign"),
    ("accepted", "assign to township"),
    ("accepted", "comment"),
    ("accepted", "close duplicate"),
    ("accepted", "close invalid"),
    ("accepted", "close withdrawn"),
    ("returned", "assign"),
    ("returned", "assign to township"),
    ("returned", "comment"),
    ("returned", "close duplicate"),
    ("returned", "close invalid"),
    ("returned", "close withdrawn"),
    // ASSIGNED to a centre: it dispatches on (to another unit), returns, is pressed.
    ("at township centre", "assign"),
    ("at township centre", "return"),
    ("at township centre", "supervise"),
    ("at township centre", "comment"),
    // ASSIGNED to a working unit, not yet signed.
    ("dispatched", "sign"),
    ("dispatched", "return"),
    ("dispatched", "request extension"),
    ("dispatched", "supervise"),
    ("dispatched", "comment"),
    // ASSIGNED and signed.
    ("signed", "return"),
    ("signed", "request extension"),
    ("signed", "supervise"),
    ("signed", "handle"),
    ("signed", "comment"),
    ("extension pending", "return"),
    ("extension pending", "approve extension"),
    ("extension pending", "reject extension"),
    ("extension pending", "supervise"),
    ("extension pending", "handle"),
    ("extension pending", "comment"),
    // HANDLED: verify, feedback, comment.
    ("handled", "verify passed"),
    ("handled", "verify failed"),
    ("handled", "feedback"),
    ("handled", "comment"),
    // VERIFIED: feedback, comment, close as resolved.
    ("verified", "feedback"),
    ("verified", "comment"),
    ("verified", "close resolved"),
    // ASSIGNED again after a failed verification (signed already).
    ("sent back for rework", "return"),
    ("sent back for rework", "request extension"),
    ("sent back for rework", "supervise"),
    ("sent back for rework", "handle"),
    ("sent back for rework", "comment"),
    // CLOSED: nothing.
];

#[test]
fn decide_allows_exactly_the_listed_state_command_pairs() {
    let expected: BTreeSet<(String, String)> = ALLOWED
        .iter()
        .map(|(s, c)| (s.to_string(), c.to_string()))
        .collect();
    let mut allowed = BTreeSet::new();
    for (situation, history) in situations() {
        let before = fold(&history);
        for (name, cmd) in all_commands() {
            match decide(before.as_ref(), cmd, &ctx_at(now())) {
                Ok(events) => {
                    assert!(
                        !events.is_empty(),
                        "{situation} × {name}: allowed but no events"
                    );
                    allowed.insert((situation.to_string(), name.to_string()));
                }
                Err(e) => {
                    // Refusals are of the kind the state explains.
                    let kind_ok = match (&before, &e) {
                        (None, DomainError::NotFound) => true,
                        (Some(_), DomainError::AlreadyExists) => name == "accept",
                        (Some(_), DomainError::NotAllowed(_) | DomainError::Invalid { .. }) => true,
                        _ => false,
                    };
                    assert!(kind_ok, "{situation} × {name}: unexpected refusal {e:?}");
                }
            }
        }
    }
    let unexpected_allowed: Vec<_> = allowed.difference(&expected).collect();
    let unexpected_refused: Vec<_> = expected.difference(&allowed).collect();
    assert!(
        unexpected_allowed.is_empty() && unexpected_refused.is_empty(),
        "allowed but not listed: {unexpected_allowed:#?}\nlisted but refused: {unexpected_refused:#?}"
    );
}

#[test]
fn every_situation_and_command_in_the_table_is_distinct_and_listed_pairs_exist() {
    let s: BTreeSet<_> = situations().iter().map(|(n, _)| *n).collect();
    let c: BTreeSet<_> = all_commands().iter().map(|(n, _)| *n).collect();
    assert_eq!(s.len(), situations().len());
    assert_eq!(c.len(), all_commands().len());
    for (sit, cmd) in ALLOWED {
        assert!(s.contains(sit), "unknown situation {sit}");
        assert!(c.contains(cmd), "unknown command {cmd}");
    }
    // The situations really are the states they are named after.
    let state_of = |h: Vec<TicketEvent>| fold(&h).unwrap().state;
    assert_eq!(state_of(an_accepted_ticket()), State::Accepted);
    assert_eq!(state_of(a_returned_ticket()), State::Accepted);
    assert_eq!(state_of(a_ticket_at_the_township_centre()), State::Assigned);
    assert_eq!(state_of(a_dispatched_ticket()), State::Assigned);
    assert_eq!(state_of(a_signed_ticket()), State::Assigned);
    assert_eq!(
        state_of(a_ticket_with_an_extension_pending()),
        State::Assigned
    );
    assert_eq!(state_of(a_handled_ticket()), State::Handled);
    assert_eq!(state_of(a_verified_ticket()), State::Verified);
    assert_eq!(state_of(a_ticket_sent_back_for_rework()), State::Assigned);
    assert_eq!(state_of(a_closed_ticket()), State::Closed);
    assert_eq!(state_of(a_ticket_closed_as_duplicate()), State::Closed);
}

// ---------------------------------------------------------------------------------
// Named refusals
// ---------------------------------------------------------------------------------

#[test]
fn a_command_for_a_ticket_that_does_not_exist_is_not_found() {
    given_no_ticket().when(assign(DEPT)).then_refused(NotFound);
    given_no_ticket().when(comment("x")).then_refused(NotFound);
}

#[test]
fn accepting_an_existing_ticket_again_is_refused() {
    given(an_accepted_ticket())
        .when(accept(hotline_complaint()))
        .then_refused(AlreadyExists);
}

#[test]
fn closed_is_terminal_for_every_command() {
    for history in [a_closed_ticket(), a_ticket_closed_as_duplicate()] {
        for (name, cmd) in all_commands() {
            let expected = if name == "accept" {
                AlreadyExists
            } else {
                NotAllowedSaying("closed")
            };
            given(history.clone()).when(cmd).then_refused(expected);
        }
    }
}

#[test]
fn empty_text_fields_are_invalid_and_name_the_field() {
    let blank = "  ";
    given_no_ticket()
        .when(accept(AcceptTicket {
            title: blank.into(),
            ..hotline_complaint()
        }))
        .then_refused(Invalid("title"));
    given_no_ticket()
        .when(accept(AcceptTicket {
            category: "".into(),
            ..hotline_complaint()
        }))
        .then_refused(Invalid("category"));
    given_no_ticket()
        .when(accept(fixed_on_the_spot(blank)))
        .then_refused(Invalid("self_handled.result"));
    given(an_accepted_ticket())
        .when(assign(""))
        .then_refused(Invalid("unit"));
    given(an_accepted_ticket())
        .when(assign_with_co_units(DEPT, &[""]))
        .then_refused(Invalid("co_units"));
    given(a_dispatched_ticket())
        .when(sign(blank))
        .then_refused(Invalid("handler"));
    given(a_dispatched_ticket())
        .when(return_it(""))
        .then_refused(Invalid("reason"));
    given(a_signed_ticket())
        .when(Command::RequestExtension {
            days: 3,
            reason: blank.into(),
        })
        .then_refused(Invalid("reason"));
    given(a_dispatched_ticket())
        .when(supervise(""))
        .then_refused(Invalid("note"));
    given(a_signed_ticket())
        .when(handle(blank))
        .then_refused(Invalid("result"));
    given(a_handled_ticket())
        .when(verify_failed(""))
        .then_refused(Invalid("note"));
    given(an_accepted_ticket())
        .when(comment(blank))
        .then_refused(Invalid("text"));
}

#[test]
fn a_passed_verification_needs_no_note() {
    given(a_handled_ticket())
        .when(Command::Verify {
            passed: true,
            note: String::new(),
        })
        .then_events(vec![TicketEvent::VerificationPassed(VerificationPassed {
            note: String::new(),
        })]);
}

#[test]
fn a_ticket_cannot_be_related_to_itself() {
    given_no_ticket()
        .when(accept(AcceptTicket {
            related_to: Some(ID),
            ..hotline_complaint()
        }))
        .then_refused(Invalid("related_to"));
}

#[test]
fn a_dispatched_ticket_must_be_returned_before_it_is_dispatched_again() {
    given(a_signed_ticket())
        .when(assign(AGENCY))
        .then_refused(NotAllowedSaying("returned"));
}

#[test]
fn a_centre_cannot_dispatch_on_to_the_unit_that_already_holds_it() {
    given(a_ticket_at_the_township_centre())
        .when(township_dispatches_to(TOWNSHIP))
        .then_refused(Invalid("unit"));
}

#[test]
fn the_lead_unit_cannot_also_be_a_co_unit() {
    given(an_accepted_ticket())
        .when(assign_with_co_units(DEPT, &[AGENCY, DEPT]))
        .then_refused(Invalid("co_units"));
}

#[test]
fn a_ticket_waiting_at_a_centre_is_not_signed_for_handled_or_extended() {
    given(a_ticket_at_the_township_centre())
        .when(sign("张三"))
        .then_refused(NotAllowedSaying("centre"));
    given(a_ticket_at_the_township_centre())
        .when(handle("已处理"))
        .then_refused(NotAllowed);
    given(a_ticket_at_the_township_centre())
        .when(request_extension(3))
        .then_refused(NotAllowed);
}

#[test]
fn a_ticket_is_signed_for_only_once() {
    given(a_signed_ticket())
        .when(sign("李四"))
        .then_refused(NotAllowedSaying("already signed"));
}

#[test]
fn an_extension_of_0_or_31_days_is_invalid() {
    given(a_signed_ticket())
        .when(request_extension(0))
        .then_refused(Invalid("days"));
    given(a_signed_ticket())
        .when(request_extension(31))
        .then_refused(Invalid("days"));
    given(a_signed_ticket())
        .when(request_extension(1))
        .then_events(vec![extension_requested(1)]);
    given(a_signed_ticket())
        .when(request_extension(30))
        .then_events(vec![extension_requested(30)]);
}

#[test]
fn an_approval_of_0_or_31_days_is_invalid() {
    given(a_ticket_with_an_extension_pending())
        .when(approve_extension_for(0))
        .then_refused(Invalid("days"));
    given(a_ticket_with_an_extension_pending())
        .when(approve_extension_for(31))
        .then_refused(Invalid("days"));
}

#[test]
fn a_second_extension_request_while_one_is_pending_is_refused() {
    given(a_ticket_with_an_extension_pending())
        .when(request_extension(2))
        .then_refused(NotAllowedSaying("already has an extension request"));
}

#[test]
fn deciding_an_extension_with_nothing_pending_is_refused() {
    for h in [a_signed_ticket(), an_accepted_ticket(), a_handled_ticket()] {
        given(h.clone())
            .when(approve_extension())
            .then_refused(NotAllowedSaying("no extension request"));
        given(h).when(reject_extension()).then_refused(NotAllowed);
    }
}

#[test]
fn a_return_clears_a_pending_extension() {
    let mut h = a_ticket_with_an_extension_pending();
    h.push(returned("不属于", DISTRICT));
    h.push(assigned_to(AGENCY));
    assert_eq!(given(h.clone()).ticket().pending_extension_days, None);
    given(h).when(approve_extension()).then_refused(NotAllowed);
}

#[test]
fn feedback_is_recorded_only_once() {
    let mut h = a_handled_ticket();
    h.push(feedback_recorded(Satisfaction::Satisfied));
    given(h.clone())
        .when(feedback(Satisfaction::Unsatisfied))
        .then_refused(NotAllowedSaying("already has the citizen's feedback"));
    h.push(verification_passed());
    given(h)
        .when(feedback(Satisfaction::Satisfied))
        .then_refused(NotAllowed);
}

#[test]
fn feedback_before_the_ticket_is_handled_is_refused() {
    given(an_accepted_ticket())
        .when(feedback(Satisfaction::Satisfied))
        .then_refused(NotAllowed);
    given(a_signed_ticket())
        .when(feedback(Satisfaction::Satisfied))
        .then_refused(NotAllowed);
}

#[test]
fn a_duplicate_must_name_the_ticket_it_duplicates() {
    given(an_accepted_ticket())
        .when(close(CloseCode::Duplicate))
        .then_refused(Invalid("duplicate_of"));
}

#[test]
fn a_ticket_cannot_duplicate_itself() {
    given(an_accepted_ticket())
        .when(close_as_duplicate_of(ID))
        .then_refused(Invalid("duplicate_of"));
}

#[test]
fn only_a_duplicate_names_another_ticket() {
    for code in [CloseCode::Invalid, CloseCode::Withdrawn] {
        given(an_accepted_ticket())
            .when(Command::Close {
                code,
                duplicate_of: Some(OTHER),
            })
            .then_refused(Invalid("duplicate_of"));
    }
    given(a_verified_ticket())
        .when(Command::Close {
            code: CloseCode::Resolved,
            duplicate_of: Some(OTHER),
        })
        .then_refused(Invalid("duplicate_of"));
}

#[test]
fn an_accepted_ticket_cannot_close_as_resolved() {
    given(an_accepted_ticket())
        .when(close(CloseCode::Resolved))
        .then_refused(NotAllowedSaying("not handled and verified"));
}

#[test]
fn a_verified_ticket_closes_only_as_resolved() {
    for cmd in [
        close(CloseCode::Invalid),
        close(CloseCode::Withdrawn),
        close_as_duplicate_of(OTHER),
    ] {
        given(a_verified_ticket())
            .when(cmd)
            .then_refused(Invalid("code"));
    }
}

#[test]
fn a_ticket_in_the_hands_of_a_unit_cannot_be_closed() {
    for h in [a_dispatched_ticket(), a_signed_ticket(), a_handled_ticket()] {
        given(h.clone())
            .when(close(CloseCode::Withdrawn))
            .then_refused(NotAllowed);
        given(h)
            .when(close(CloseCode::Resolved))
            .then_refused(NotAllowed);
    }
}

#[test]
fn only_a_handled_ticket_is_verified() {
    for h in [an_accepted_ticket(), a_signed_ticket(), a_verified_ticket()] {
        given(h.clone())
            .when(verify_passed())
            .then_refused(NotAllowed);
        given(h).when(verify_failed("x")).then_refused(NotAllowed);
    }
}

#[test]
fn only_an_assigned_ticket_is_supervised_or_returned() {
    for h in [
        an_accepted_ticket(),
        a_handled_ticket(),
        a_verified_ticket(),
    ] {
        given(h.clone())
            .when(supervise("x"))
            .then_refused(NotAllowed);
        given(h).when(return_it("x")).then_refused(NotAllowed);
    }
}

// ---------------------------------------------------------------------------------
// Event storage round trip
// ---------------------------------------------------------------------------------

fn one_of_every_event() -> Vec<TicketEvent> {
    vec![
        accepted(),
        assigned_to(DEPT),
        assigned_to_township(),
        signed_by("张三"),
        returned("不属于", DISTRICT),
        extension_requested(3),
        TicketEvent::ExtensionDecided(ExtensionDecided {
            approved: true,
            days: 3,
            handle_due_at: Some(given_handle_due() + days(3)),
        }),
        supervised(2),
        handled_event("已清理"),
        verification_passed(),
        verification_failed(now()),
        feedback_recorded(Satisfaction::BasicallySatisfied),
        TicketEvent::TicketCommented(Commented {
            text: "备注".into(),
        }),
        closed(CloseCode::Duplicate, Some(OTHER)),
        sla_warning(DeadlineKind::Sign, given_sign_due()),
        sla_breached(DeadlineKind::Handle, given_handle_due()),
    ]
}

#[test]
fn every_event_round_trips_through_its_stored_parts() {
    for e in one_of_every_event() {
        let (ty, data) = e.to_parts();
        assert_eq!(ty, e.type_name());
        assert!(data.is_object(), "{ty}: data is a JSON object");
        let v = e.schema_version();
        assert_eq!(TicketEvent::from_parts(&ty, v, &data).unwrap(), e);
        // As the store keeps it: JSON text.
        let text = serde_json::to_string(&data).unwrap();
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            TicketEvent::from_parts(&ty, v, &back).unwrap(),
            e,
            "{ty} via text"
        );
        assert_eq!(
            TicketEvent::from_json_parts(&ty, v, &text).unwrap(),
            e,
            "{ty} straight from text"
        );
    }
}

/// `to_parts` serializes the payload alone; the stored type and text are those of
/// the tagged enum's JSON (`{"type": …, "data": …}`), byte for byte.
#[test]
fn stored_parts_are_the_tagged_enums_type_and_data() {
    for e in one_of_every_event() {
        let whole = serde_json::to_value(&e).unwrap();
        let (ty, data) = e.to_parts();
        assert_eq!(whole["type"], ty.as_str());
        assert_eq!(
            serde_json::to_string(&data).unwrap(),
            serde_json::to_string(&whole["data"]).unwrap(),
            "{ty}"
        );
    }
}

#[test]
fn an_unknown_event_type_is_an_error() {
    assert!(TicketEvent::from_parts("TicketTeleported", 1, &serde_json::json!({})).is_err());
    assert!(TicketEvent::from_json_parts("TicketTeleported", 1, "{}").is_err());
    // A known type with another type's payload is refused too, at any version.
    let (_, data) = one_of_every_event()[0].to_parts();
    assert!(TicketEvent::from_parts("TicketHandled", 2, &data).is_err());
    assert!(TicketEvent::from_parts("TicketHandled", 1, &data).is_err());
}

// ---------------------------------------------------------------------------------
// Property tests: random command sequences from a fresh Accept
// ---------------------------------------------------------------------------------

fn arb_text() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["", " ", "x", "已处理", "请尽快"]).prop_map(String::from)
}

fn arb_unit() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["", DISTRICT, TOWNSHIP, DEPT, AGENCY]).prop_map(String::from)
}

fn arb_satisfaction() -> impl Strategy<Value = Satisfaction> {
    prop::sample::select(vec![
        Satisfaction::Satisfied,
        Satisfaction::BasicallySatisfied,
        Satisfaction::Unsatisfied,
    ])
}

fn arb_close_code() -> impl Strategy<Value = CloseCode> {
    prop::sample::select(vec![
        CloseCode::Resolved,
        CloseCode::Duplicate,
        CloseCode::Invalid,
        CloseCode::Withdrawn,
    ])
}

fn arb_ticket_ref() -> impl Strategy<Value = Option<Uuid>> {
    prop::sample::select(vec![None, Some(ID), Some(OTHER)])
}

/// The opening Accept. `grid_always` keeps `location.grid` set (see
/// `bug_self_handled_report_without_grid_fails_verification_into_assigned_with_no_unit`).
fn arb_accept(grid_always: bool) -> impl Strategy<Value = AcceptTicket> {
    (
        prop::sample::select(Source::ALL.to_vec()),
        prop::sample::select(vec![Urgency::Normal, Urgency::Urgent, Urgency::Emergency]),
        prop::option::of(arb_text()),
        any::<bool>(),
    )
        .prop_map(
            move |(source, urgency, self_handled, has_grid)| AcceptTicket {
                source,
                urgency,
                self_handled,
                location: Location {
                    grid: (grid_always || has_grid).then(|| GRID.to_string()),
                    ..Location::default()
                },
                ..hotline_complaint()
            },
        )
}

fn arb_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        // A second Accept (always refused: the stream exists).
        1 => arb_accept(false).prop_map(|a| Command::Accept(Box::new(a))),
        4 => (arb_unit(), arb_unit(), prop::collection::vec(arb_unit(), 0..3), prop::option::of(arb_text()), any::<bool>())
            .prop_map(|(from_unit, unit, co_units, note, to_centre)| Command::Assign { from_unit, unit, co_units, note, to_centre }),
        3 => (arb_unit(), arb_text()).prop_map(|(unit, handler)| Command::Sign { unit, handler }),
        2 => (arb_unit(), arb_text()).prop_map(|(unit, reason)| Command::Return { unit, reason }),
        2 => (0u32..=32, arb_text()).prop_map(|(days, reason)| Command::RequestExtension { days, reason }),
        2 => (any::<bool>(), prop::option::of(0u32..=32)).prop_map(|(approved, days)| Command::DecideExtension { approved, days }),
        2 => arb_text().prop_map(|note| Command::Supervise { note }),
        3 => (arb_text(), prop::collection::vec(arb_text(), 0..2)).prop_map(|(result, photos)| Command::Handle { result, photos }),
        3 => (any::<bool>(), arb_text()).prop_map(|(passed, note)| Command::Verify { passed, note }),
        1 => arb_satisfaction().prop_map(|satisfaction| Command::Feedback { satisfaction }),
        1 => arb_text().prop_map(|text| Command::Comment { text }),
        2 => (arb_close_code(), arb_ticket_ref()).prop_map(|(code, duplicate_of)| Command::Close { code, duplicate_of }),
    ]
}

/// Invariants that hold of any ticket decide and apply can produce. Returns the
/// first violation. `all_invariants` also checks the invariants that
/// ticket.rs once broke (see the `bug_*` regression tests).
fn check_invariants(
    t: &Ticket,
    prev: Option<&Ticket>,
    events_applied: usize,
    all_invariants: bool,
) -> Result<(), String> {
    let fail = |what: &str| Err(format!("{what}: {t:#?}"));
    if t.version as usize != events_applied {
        return fail(&format!("version {} != {events_applied} events", t.version));
    }
    match t.state {
        State::Accepted => {
            if t.unit.is_some() || !t.co_units.is_empty() {
                return fail("accepted with a unit");
            }
            if t.sign_due_at.is_some() || t.handle_due_at.is_some() {
                return fail("accepted with deadlines");
            }
            if t.at_centre || t.signed_at.is_some() || t.handler.is_some() {
                return fail("accepted but at a centre or signed");
            }
        }
        State::Assigned => {
            if all_invariants && t.unit.is_none() {
                return fail("assigned without a unit");
            }
            if t.at_centre {
                if t.sign_due_at.is_some() || t.handle_due_at.is_some() {
                    return fail("a deadline runs while at a centre");
                }
                if t.signed_at.is_some() {
                    return fail("signed while at a centre");
                }
            } else if t.handle_due_at.is_none() {
                return fail("with a working unit but no handle deadline");
            }
            if t.handled_at.is_some() {
                return fail("assigned with handled_at");
            }
        }
        State::Handled => {
            if t.handled_at.is_none() || t.result.is_none() {
                return fail("handled without handled_at / result");
            }
        }
        State::Verified => {
            if t.handled_at.is_none() || t.result.is_none() {
                return fail("verified without handled_at / result");
            }
        }
        State::Closed => {
            if t.closed_at.is_none() || t.close_code.is_none() {
                return fail("closed without closed_at / close_code");
            }
        }
    }
    if t.state != State::Closed && (t.closed_at.is_some() || t.close_code.is_some()) {
        return fail("open with a close code");
    }
    if (t.close_code == Some(CloseCode::Duplicate)) != t.duplicate_of.is_some() {
        return fail("duplicate_of set iff closed as duplicate");
    }
    if t.duplicate_of == Some(t.id) {
        return fail("duplicates itself");
    }
    if t.at_centre && t.state != State::Assigned {
        return fail("at a centre outside ASSIGNED");
    }
    if t.signed_at.is_some() && t.state == State::Accepted {
        return fail("signed while accepted");
    }
    if let Some(d) = t.pending_extension_days {
        if !(1..=30).contains(&d) {
            return fail("pending extension out of range");
        }
        if all_invariants && t.state != State::Assigned {
            return fail("extension pending outside ASSIGNED");
        }
    }
    if t.co_units.iter().any(|c| Some(c) == t.unit.as_ref()) {
        return fail("lead unit is also a co-unit");
    }
    if let Some(p) = prev {
        if t.supervisions < p.supervisions
            || t.returns < p.returns
            || t.reworks < p.reworks
            || t.extensions < p.extensions
        {
            return fail("a counter decreased");
        }
        if p.satisfaction.is_some() && t.satisfaction != p.satisfaction {
            return fail("feedback changed once given");
        }
        if t.created_at != p.created_at || t.id != p.id || t.number != p.number {
            return fail("identity changed");
        }
        if p.state == State::Closed && t != p {
            return fail("a closed ticket changed");
        }
    }
    Ok(())
}

/// Runs a command sequence from `opening`, checking every step. Refused commands
/// leave the state unchanged; allowed ones apply; after all steps the whole log
/// folds to the same ticket.
fn run_sequence(
    opening: AcceptTicket,
    cmds: Vec<(Command, i64)>,
    all_invariants: bool,
) -> Result<(), TestCaseError> {
    let mut t: Option<Ticket> = None;
    let mut log: Vec<(TicketEvent, DateTime<Utc>)> = vec![];
    let steps = std::iter::once((Command::Accept(Box::new(opening)), 0)).chain(cmds);
    let mut now = t0();
    for (i, (cmd, gap)) in steps.enumerate() {
        now += Duration::minutes(gap);
        let before = t.clone();
        let shown = format!("{cmd:?}");
        match decide(t.as_ref(), cmd, &ctx_at(now)) {
            Err(e) => {
                prop_assert_eq!(&t, &before, "refused {} changed the state", shown);
                if i == 0 {
                    // The opening Accept may be refused (blank self-handled result,
                    // self-handled hotline): then there is no ticket at all.
                    prop_assert!(matches!(e, DomainError::Invalid { .. }), "{e:?}");
                    prop_assert!(t.is_none());
                    return Ok(());
                }
                if before.as_ref().is_some_and(|b| b.state == State::Closed) {
                    prop_assert!(
                        matches!(e, DomainError::NotAllowed(_) | DomainError::AlreadyExists),
                        "closed refused {} with {:?}",
                        shown,
                        e
                    );
                }
            }
            Ok(events) => {
                prop_assert!(!events.is_empty(), "{} allowed with no events", shown);
                if let Some(b) = &before {
                    prop_assert_ne!(b.state, State::Closed, "closed ticket accepted {}", shown);
                }
                for e in events {
                    let (ty, data) = e.to_parts();
                    prop_assert_eq!(ty.as_str(), e.type_name());
                    let back = TicketEvent::from_parts(&ty, e.schema_version(), &data)
                        .map_err(|err| TestCaseError::fail(format!("{ty}: {err}")))?;
                    prop_assert_eq!(&back, &e, "round trip of {}", ty);
                    t = Some(Ticket::apply(t, ID, &e, now));
                    log.push((e, now));
                }
                let cur = t.as_ref().unwrap();
                check_invariants(cur, before.as_ref(), log.len(), all_invariants)
                    .map_err(|m| TestCaseError::fail(format!("after {shown}: {m}")))?;
            }
        }
    }
    let folded = Ticket::fold(ID, log.iter().map(|(e, at)| (e, *at)));
    prop_assert_eq!(folded, t, "fold of the whole log differs from step-by-step");
    Ok(())
}

/// The time between two commands: minutes, hours or days up to three weeks, so that
/// a sequence crosses the sign deadline (a day), the handle deadline (five days) and
/// an extension's, or stays well inside them.
fn arb_gap() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => 0i64..90,
        3 => 90i64..(24 * 60),
        2 => (24 * 60i64)..(7 * 24 * 60),
        1 => (7 * 24 * 60i64)..(21 * 24 * 60),
    ]
}

/// A command and the minutes since the one before it.
fn arb_timed_command() -> impl Strategy<Value = (Command, i64)> {
    (arb_command(), arb_gap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn prop_random_command_sequences_keep_the_ticket_consistent(
        opening in arb_accept(true),
        cmds in prop::collection::vec(arb_timed_command(), 0..40),
    ) {
        run_sequence(opening, cmds, false)?;
    }

    #[test]
    fn prop_a_closed_ticket_refuses_every_further_command(
        history in prop::sample::select(vec![0usize, 1]),
        cmd in arb_command(),
    ) {
        let h = if history == 0 { a_closed_ticket() } else { a_ticket_closed_as_duplicate() };
        let t = fold(&h).unwrap();
        let before = t.clone();
        let r = decide(Some(&t), cmd, &ctx_at(now()));
        prop_assert!(r.is_err(), "closed ticket allowed {:?}", r);
        prop_assert_eq!(t, before);
    }

    #[test]
    fn prop_a_ticket_closes_only_from_verified_or_from_accepted(
        cmds in prop::collection::vec(arb_command(), 0..60),
    ) {
        // Every ticket that ends closed was either verified or closed from
        // accepted with a non-resolved code.
        let mut t = fold(&an_accepted_ticket());
        for (i, cmd) in cmds.into_iter().enumerate() {
            let now = now() + Duration::minutes(i as i64);
            if let Ok(events) = decide(t.as_ref(), cmd, &ctx_at(now)) {
                let prev_state = t.as_ref().unwrap().state;
                for e in &events {
                    if let TicketEvent::TicketClosed(c) = e {
                        match prev_state {
                            State::Verified => prop_assert_eq!(c.code, CloseCode::Resolved),
                            State::Accepted => prop_assert_ne!(c.code, CloseCode::Resolved),
                            s => prop_assert!(false, "closed from {:?}", s),
                        }
                    }
                    t = Some(Ticket::apply(t, ID, e, now));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Regressions: two bugs these tests found in ticket.rs, now fixed
// ---------------------------------------------------------------------------------

/// Was a bug: reporting a ticket handled while an extension request is still waiting
/// leaves `pending_extension_days` set on a HANDLED ticket (and on VERIFIED and
/// CLOSED ones after it). After a failed verification the stale request comes
/// back to life: the centre can then approve it and it moves the *rework*
/// deadline and counts as an extension the unit never asked for against it.
///
/// Input: accepted → assigned → signed → ExtensionRequested{3} → Handle.
/// Now: the HANDLED ticket has pending_extension_days = Some(3); after
/// VerificationFailed, DecideExtension{approved} is allowed and extends the
/// rework deadline by 3 days. Should: handling resolves (drops) the pending request
/// — `Ticket::apply(TicketHandled)` clears `pending_extension_days` — or decide
/// refuses Handle while a request waits.
#[test]
fn bug_handle_leaves_extension_request_pending() {
    let t = given(a_ticket_with_an_extension_pending())
        .when(handle("已处理"))
        .then_events(vec![handled_event("已处理")]);
    assert_eq!(t.state, State::Handled);
    assert_eq!(
        t.pending_extension_days, None,
        "a handled ticket has no extension request waiting"
    );

    // The stale request must not be decidable after a failed verification.
    let mut h = a_ticket_with_an_extension_pending();
    h.push(handled_event("已处理"));
    h.push(verification_failed(t0() + days(9)));
    given(h).when(approve_extension()).then_refused(NotAllowed);
}

/// Was a bug: a self-handled (自行处置) report with no `location.grid` is accepted; its
/// TicketHandled sets `unit = location.grid = None`, and a failed verification
/// then puts the ticket in ASSIGNED with no unit at all (no one's queue, no
/// sign deadline). Reachable over HTTP: hotline agents and dispatchers may create
/// tickets with `source: grid` and `self_handled` but no grid (only grid workers
/// are forced to name one, in auth::policy::check_create).
///
/// Input: Accept{source: Grid, location.grid: None, self_handled: Some("已处理")}
/// then Verify{passed: false, note: "未处理"}.
/// Now: both allowed; the ticket ends ASSIGNED with unit None. Should: accept
/// refuses with `Invalid { field: "location.grid" }` (a fix on the spot is made
/// inside a grid), so an assigned ticket always has a unit.
#[test]
fn bug_self_handled_report_without_grid_fails_verification_into_assigned_with_no_unit() {
    let no_grid = AcceptTicket {
        location: Location::default(),
        ..fixed_on_the_spot("已处理")
    };
    given_no_ticket()
        .when(accept(no_grid))
        .then_refused(Invalid("location.grid"));
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The full property, including the invariants two former bugs broke
    /// ("assigned ⇒ unit", "extension pending only while assigned") and openings
    /// without a grid.
    #[test]
    fn prop_every_invariant_holds_from_any_opening(
        opening in arb_accept(false),
        cmds in prop::collection::vec(arb_timed_command(), 0..40),
    ) {
        run_sequence(opening, cmds, true)?;
    }
}

// ---------------------------------------------------------------------------------
// The SLA watcher: `sla_events` (DESIGN §2 "SLA watcher events", issue 3 item 5)
// ---------------------------------------------------------------------------------
//
// `given(history).when_watched_at(t)` runs the watcher's pure decision at `t` with
// the default 80% warning fraction. In `a_dispatched_ticket()` the assignment is at
// hour(1) = t0 + 1 h, the sign deadline t0 + 24 h (23 h later: the warning falls at
// 80% of 23 h = 18 h 24 min after it, t0 + 19 h 24 min) and the handle deadline
// t0 + 120 h (119 h: warning at t0 + 1 h + 95 h 12 min = t0 + 96 h 12 min).

const WARN: f64 = 0.8;

fn sla_warning(deadline: DeadlineKind, due_at: DateTime<Utc>) -> TicketEvent {
    TicketEvent::SlaWarning(SlaWarning { deadline, due_at })
}

fn sla_breached(deadline: DeadlineKind, due_at: DateTime<Utc>) -> TicketEvent {
    TicketEvent::SlaBreached(SlaBreached { deadline, due_at })
}

use DeadlineKind::{Handle as HandleDeadline, Sign as SignDeadline};

fn sign_warn_at() -> DateTime<Utc> {
    t0() + Duration::hours(19) + Duration::minutes(24)
}

fn handle_warn_at() -> DateTime<Utc> {
    t0() + Duration::hours(96) + Duration::minutes(12)
}

fn second() -> Duration {
    Duration::seconds(1)
}

/// A history with each event at its own instant (the watcher's tests need real
/// gaps between the steps, not the one hour of `given`).
fn given_at(history: Vec<(TicketEvent, DateTime<Utc>)>) -> Given {
    let ticket = Ticket::fold(ID, history.iter().map(|(e, at)| (e, *at)));
    Given {
        history: history.into_iter().map(|(e, _)| e).collect(),
        ticket,
    }
}

impl Given {
    /// The watcher's decision at `at` (80% warning), as a `When` whose
    /// `then_events` checks and applies it like a command's.
    fn when_watched_at(self, at: DateTime<Utc>) -> When {
        self.when_watched_with(at, WARN)
    }

    fn when_watched_with(self, at: DateTime<Utc>, fraction: f64) -> When {
        let result = Ok(sla_events(
            self.ticket.as_ref().expect("a ticket"),
            at,
            fraction,
        ));
        When {
            given: self,
            cmd: format!("the SLA watcher at {at} (warn at {fraction})"),
            result,
        }
    }
}

#[test]
fn the_warning_instants_of_the_fixtures_are_80_percent_of_the_way() {
    assert_eq!(sla_warn_at(hour(1), given_sign_due(), WARN), sign_warn_at());
    assert_eq!(
        sla_warn_at(hour(1), given_handle_due(), WARN),
        handle_warn_at()
    );
}

#[test]
fn before_80_percent_of_the_sign_time_the_watcher_appends_nothing() {
    given(a_dispatched_ticket())
        .when_watched_at(hour(1))
        .then_events(vec![]);
    given(a_dispatched_ticket())
        .when_watched_at(sign_warn_at() - second())
        .then_events(vec![]);
}

#[test]
fn at_80_percent_of_the_sign_time_the_sign_deadline_is_warned() {
    let t = given(a_dispatched_ticket())
        .when_watched_at(sign_warn_at())
        .then_events(vec![sla_warning(SignDeadline, given_sign_due())]);
    assert_eq!(t.sla.sign_warned, Some(given_sign_due()));
    assert_eq!(t.sla.sign_breached, None);
    assert_eq!(t.state, State::Assigned, "an SLA event moves no state");
}

#[test]
fn a_deadline_is_warned_only_once() {
    let mut h = a_dispatched_ticket();
    h.push(sla_warning(SignDeadline, given_sign_due()));
    for at in [
        sign_warn_at(),
        given_sign_due() - second(),
        given_sign_due(),
    ] {
        given(h.clone()).when_watched_at(at).then_events(vec![]);
    }
}

#[test]
fn when_the_sign_deadline_passes_it_is_breached_once() {
    let mut h = a_dispatched_ticket();
    h.push(sla_warning(SignDeadline, given_sign_due()));
    // At the deadline itself it has not passed yet (as `Ticket::overdue`).
    given(h.clone())
        .when_watched_at(given_sign_due())
        .then_events(vec![]);
    let t = given(h.clone())
        .when_watched_at(given_sign_due() + second())
        .then_events(vec![sla_breached(SignDeadline, given_sign_due())]);
    assert!(t.overdue(given_sign_due() + second()));
    assert_eq!(t.sla.sign_breached, Some(given_sign_due()));
    h.push(sla_breached(SignDeadline, given_sign_due()));
    given(h.clone())
        .when_watched_at(given_sign_due() + Duration::hours(2))
        .then_events(vec![]);
}

#[test]
fn a_watcher_that_missed_the_warning_window_appends_the_breach_only() {
    let t = given(a_dispatched_ticket())
        .when_watched_at(given_sign_due() + Duration::hours(1))
        .then_events(vec![sla_breached(SignDeadline, given_sign_due())]);
    // And never the warning afterwards, whatever the clock says.
    let mut h = a_dispatched_ticket();
    h.push(sla_breached(SignDeadline, given_sign_due()));
    for at in [sign_warn_at(), given_sign_due(), given_sign_due() + days(1)] {
        given(h.clone()).when_watched_at(at).then_events(vec![]);
    }
    assert_eq!(t.sla.sign_warned, None);
}

#[test]
fn signing_for_the_ticket_stops_the_sign_deadline_events() {
    // Signed at hour(2), well before the sign deadline.
    for at in [sign_warn_at(), given_sign_due() + Duration::hours(3)] {
        given(a_signed_ticket())
            .when_watched_at(at)
            .then_events(vec![]);
    }
    // Signed late, after the warning: the breach never comes.
    let mut h = a_dispatched_ticket();
    h.push(sla_warning(SignDeadline, given_sign_due()));
    h.push(signed_by("张三"));
    given(h)
        .when_watched_at(given_sign_due() + Duration::hours(3))
        .then_events(vec![]);
}

#[test]
fn the_handle_deadline_is_warned_then_breached() {
    given(a_signed_ticket())
        .when_watched_at(handle_warn_at() - second())
        .then_events(vec![]);
    given(a_signed_ticket())
        .when_watched_at(handle_warn_at())
        .then_events(vec![sla_warning(HandleDeadline, given_handle_due())]);
    let mut h = a_signed_ticket();
    h.push(sla_warning(HandleDeadline, given_handle_due()));
    let t = given(h.clone())
        .when_watched_at(given_handle_due() + second())
        .then_events(vec![sla_breached(HandleDeadline, given_handle_due())]);
    assert_eq!(t.sla.handle_breached, Some(given_handle_due()));
    h.push(sla_breached(HandleDeadline, given_handle_due()));
    given(h)
        .when_watched_at(given_handle_due() + days(10))
        .then_events(vec![]);
}

#[test]
fn both_deadlines_due_at_once_come_sign_first_in_one_append() {
    given(a_dispatched_ticket())
        .when_watched_at(given_handle_due() + second())
        .then_events(vec![
            sla_breached(SignDeadline, given_sign_due()),
            sla_breached(HandleDeadline, given_handle_due()),
        ]);
    let mut h = a_dispatched_ticket();
    h.push(sla_breached(SignDeadline, given_sign_due()));
    given(h)
        .when_watched_at(handle_warn_at())
        .then_events(vec![sla_warning(HandleDeadline, given_handle_due())]);
}

#[test]
fn an_approved_extension_gives_the_handle_deadline_a_fresh_warning_and_breach() {
    let assigned = t0() + Duration::hours(1);
    let decided = t0() + Duration::hours(130);
    let extended_due = given_handle_due() + days(3);
    let h = vec![
        (accepted(), t0()),
        (assigned_to(DEPT), assigned),
        (signed_by("张三"), t0() + Duration::hours(2)),
        (
            sla_warning(HandleDeadline, given_handle_due()),
            handle_warn_at(),
        ),
        (
            sla_breached(HandleDeadline, given_handle_due()),
            given_handle_due() + second(),
        ),
        (extension_requested(3), t0() + Duration::hours(125)),
        (
            TicketEvent::ExtensionDecided(ExtensionDecided {
                approved: true,
                days: 3,
                handle_due_at: Some(extended_due),
            }),
            decided,
        ),
    ];
    let t = given_at(h.clone()).ticket().clone();
    assert_eq!(t.handle_started_at, Some(decided));
    assert_eq!(t.sla, SlaMarks::default(), "the new deadline is unwatched");
    assert!(!t.overdue(decided), "extended: no longer overdue");
    // The new deadline runs from the decision: 80% of the 62 h left is 49 h 36 min.
    let warn_at = decided + Duration::hours(49) + Duration::minutes(36);
    given_at(h.clone())
        .when_watched_at(warn_at - second())
        .then_events(vec![]);
    given_at(h.clone())
        .when_watched_at(warn_at)
        .then_events(vec![sla_warning(HandleDeadline, extended_due)]);
    let mut h2 = h;
    h2.push((sla_warning(HandleDeadline, extended_due), warn_at));
    given_at(h2.clone())
        .when_watched_at(extended_due + second())
        .then_events(vec![sla_breached(HandleDeadline, extended_due)]);
    h2.push((
        sla_breached(HandleDeadline, extended_due),
        extended_due + second(),
    ));
    given_at(h2)
        .when_watched_at(extended_due + days(5))
        .then_events(vec![]);
}

#[test]
fn a_rejected_extension_does_not_restart_the_watch() {
    let mut h = a_ticket_with_an_extension_pending();
    h.push(sla_warning(HandleDeadline, given_handle_due()));
    h.push(TicketEvent::ExtensionDecided(ExtensionDecided {
        approved: false,
        days: 0,
        handle_due_at: None,
    }));
    given(h)
        .when_watched_at(handle_warn_at() + Duration::hours(1))
        .then_events(vec![]);
}

#[test]
fn a_rework_deadline_is_watched_from_the_failed_verification() {
    let failed = t0() + days(6);
    let rework_due = failed + days(3);
    let h = vec![
        (accepted(), t0()),
        (assigned_to(DEPT), hour(1)),
        (signed_by("张三"), hour(2)),
        (
            sla_warning(HandleDeadline, given_handle_due()),
            handle_warn_at(),
        ),
        (handled_event("已清理"), t0() + days(4)),
        (verification_failed(rework_due), failed),
    ];
    // Measured from the assignment the warning would be due at t0 + 7 d 5 h; it is
    // measured from the failure: 80% of 72 h = 57 h 36 min after it.
    given_at(h.clone())
        .when_watched_at(t0() + days(7) + Duration::hours(6))
        .then_events(vec![]);
    let warn_at = failed + Duration::hours(57) + Duration::minutes(36);
    given_at(h.clone())
        .when_watched_at(warn_at)
        .then_events(vec![sla_warning(HandleDeadline, rework_due)]);
    given_at(h)
        .when_watched_at(rework_due + second())
        .then_events(vec![sla_breached(HandleDeadline, rework_due)]);
}

#[test]
fn a_new_dispatch_is_watched_afresh_even_with_the_same_due_instant() {
    // Returned and dispatched again within the day: the new unit's sign deadline
    // is the same instant as the old one, and it still gets its own warning.
    let mut h = a_dispatched_ticket();
    h.push(sla_warning(SignDeadline, given_sign_due()));
    h.push(returned("不属于本单位职责", DISTRICT));
    h.push(assigned_to(AGENCY)); // at hour(4): 20 h to the deadline, warned at 16 h
    assert_eq!(given(h.clone()).ticket().sla, SlaMarks::default());
    given(h.clone())
        .when_watched_at(hour(20) - second())
        .then_events(vec![]);
    given(h)
        .when_watched_at(hour(20))
        .then_events(vec![sla_warning(SignDeadline, given_sign_due())]);
}

#[test]
fn a_self_handled_report_sent_back_for_rework_has_its_handle_deadline_watched() {
    let report = fixed_on_the_spot("已清理");
    let rework_due = hour(2) + days(3);
    let h = vec![
        accepted_from(&report),
        handled_event("已清理"),
        verification_failed(rework_due),
    ];
    let t = given(h.clone()).ticket().clone();
    assert_eq!(t.assigned_at, None, "never dispatched");
    assert_eq!(t.handle_started_at, Some(hour(2)));
    given(h)
        .when_watched_at(rework_due + second())
        .then_events(vec![sla_breached(HandleDeadline, rework_due)]);
}

#[test]
fn only_a_ticket_with_a_working_unit_is_watched() {
    let far = t0() + days(60);
    for (name, h) in [
        ("accepted", an_accepted_ticket()),
        ("returned", a_returned_ticket()),
        ("at township centre", a_ticket_at_the_township_centre()),
        ("handled", a_handled_ticket()),
        ("verified", a_verified_ticket()),
        ("closed", a_closed_ticket()),
        ("closed duplicate", a_ticket_closed_as_duplicate()),
    ] {
        let t = fold(&h).unwrap();
        assert_eq!(sla_events(&t, far, WARN), vec![], "{name}");
    }
}

#[test]
fn the_warning_fraction_is_clamped_and_a_nan_warns_at_the_deadline_only() {
    for f in [0.0, -3.0] {
        given(a_dispatched_ticket())
            .when_watched_with(hour(1), f)
            .then_events(vec![
                sla_warning(SignDeadline, given_sign_due()),
                sla_warning(HandleDeadline, given_handle_due()),
            ]);
    }
    for f in [1.0, 7.0, f64::NAN] {
        given(a_dispatched_ticket())
            .when_watched_with(given_sign_due() - second(), f)
            .then_events(vec![]);
        given(a_dispatched_ticket())
            .when_watched_with(given_sign_due(), f)
            .then_events(vec![sla_warning(SignDeadline, given_sign_due())]);
    }
}

#[test]
fn sla_events_are_facts_that_every_state_folds() {
    // Apply never refuses: an SLA event after the ticket moved on (an old log, an
    // import) is recorded and changes nothing else.
    for (name, h) in situations() {
        if h.is_empty() {
            continue;
        }
        let before = fold(&h).unwrap();
        let mut after = before.clone();
        for e in [
            sla_warning(HandleDeadline, given_handle_due()),
            sla_breached(HandleDeadline, given_handle_due()),
        ] {
            after = Ticket::apply(Some(after), ID, &e, now());
        }
        assert_eq!(after.state, before.state, "{name}");
        assert_eq!(after.version, before.version + 2, "{name}");
        assert_eq!(after.sla.handle_breached, Some(given_handle_due()));
    }
}

#[test]
fn a_ticket_view_written_before_the_watcher_still_reads() {
    let t = fold(&a_signed_ticket()).unwrap();
    let mut doc = serde_json::to_value(&t).unwrap();
    let obj = doc.as_object_mut().unwrap();
    obj.remove("sla");
    obj.remove("handle_started_at");
    let old: Ticket = serde_json::from_value(doc).expect("an old view doc reads");
    assert_eq!(old.sla, SlaMarks::default());
    assert_eq!(old.handle_started_at, None);
    // Without handle_started_at the handle deadline is measured from the assignment.
    assert_eq!(
        sla_events(&old, handle_warn_at(), WARN),
        vec![sla_warning(HandleDeadline, given_handle_due())]
    );
    // And an old stream (no SLA events) folds with the new fields filled in.
    assert_eq!(t.handle_started_at, Some(hour(1)));
}

/// A command sequence with the watcher running after every step at the step's
/// time (and sometimes twice, or at a later instant first), as a server would.
fn run_sequence_with_watcher(
    opening: AcceptTicket,
    steps: Vec<(Command, u32, u32)>,
    fraction: f64,
) -> Result<(), TestCaseError> {
    let mut t: Option<Ticket> = None;
    let mut log: Vec<(TicketEvent, DateTime<Utc>)> = vec![];
    // (kind, due_at) already warned / breached since the deadline last started.
    let mut warned: BTreeSet<(DeadlineKind, DateTime<Utc>)> = BTreeSet::new();
    let mut breached: BTreeSet<(DeadlineKind, DateTime<Utc>)> = BTreeSet::new();
    let mut clock = t0();
    let steps = std::iter::once((Command::Accept(Box::new(opening)), 0, 0)).chain(steps);
    for (cmd, gap_minutes, watch_delay_minutes) in steps {
        clock += Duration::minutes(i64::from(gap_minutes));
        let before = t.clone();
        if let Ok(events) = decide(t.as_ref(), cmd, &ctx_at(clock)) {
            for e in events {
                match &e {
                    TicketEvent::TicketAssigned(_) | TicketEvent::TicketReturned(_) => {
                        warned.clear();
                        breached.clear();
                    }
                    TicketEvent::VerificationFailed(_)
                    | TicketEvent::ExtensionDecided(ExtensionDecided { approved: true, .. }) => {
                        warned.retain(|(k, _)| *k != DeadlineKind::Handle);
                        breached.retain(|(k, _)| *k != DeadlineKind::Handle);
                    }
                    _ => {}
                }
                t = Some(Ticket::apply(t, ID, &e, clock));
                log.push((e, clock));
            }
        } else if t.is_none() {
            return Ok(());
        }
        let cur = t.clone().unwrap();
        check_invariants(&cur, before.as_ref(), log.len(), false).map_err(TestCaseError::fail)?;

        // The watcher, a little after the command.
        clock += Duration::minutes(i64::from(watch_delay_minutes));
        let sla = sla_events(&cur, clock, fraction);
        let kinds: BTreeSet<_> = sla
            .iter()
            .map(|e| match e {
                TicketEvent::SlaWarning(w) => w.deadline,
                TicketEvent::SlaBreached(b) => b.deadline,
                other => panic!("sla_events gave {other:?}"),
            })
            .collect();
        prop_assert_eq!(kinds.len(), sla.len(), "one event per deadline per run");
        if !sla.is_empty() {
            prop_assert_eq!(cur.state, State::Assigned);
            prop_assert!(!cur.at_centre);
        }
        for e in &sla {
            match e {
                TicketEvent::SlaWarning(w) => {
                    let key = (w.deadline, w.due_at);
                    prop_assert!(clock <= w.due_at, "warning after the deadline");
                    prop_assert!(!breached.contains(&key), "warning after the breach");
                    prop_assert!(warned.insert(key), "second warning for {:?}", key);
                }
                TicketEvent::SlaBreached(b) => {
                    let key = (b.deadline, b.due_at);
                    prop_assert!(clock > b.due_at, "breach before the deadline");
                    prop_assert!(breached.insert(key), "second breach for {:?}", key);
                }
                _ => unreachable!(),
            }
            t = Some(Ticket::apply(t, ID, e, clock));
            log.push((e.clone(), clock));
        }
        let after = t.clone().unwrap();
        check_invariants(&after, Some(&cur), log.len(), false).map_err(TestCaseError::fail)?;
        // Once appended, the same decision at the same instant has nothing to add:
        // this is what makes several watchers append each event once.
        prop_assert_eq!(sla_events(&after, clock, fraction), vec![]);
        prop_assert_eq!(after.overdue(clock), cur.overdue(clock));
    }
    let folded = Ticket::fold(ID, log.iter().map(|(e, at)| (e, *at)));
    prop_assert_eq!(folded, t, "fold of the whole log differs from step-by-step");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn prop_the_watcher_appends_each_warning_and_breach_once_per_deadline(
        opening in arb_accept(true),
        steps in prop::collection::vec((arb_command(), 0u32..3000, 0u32..1500), 0..40),
        fraction in prop::sample::select(vec![0.0, 0.5, 0.8, 0.95, 1.0]),
    ) {
        run_sequence_with_watcher(opening, steps, fraction)?;
    }
}

// ---------------------------------------------------------------------------------
// Photos (attachments)
// ---------------------------------------------------------------------------------

/// The ticket lists every attachment its events name, once each, with the step that
/// added it; a name that is not an attachment hash (events older than attachments
/// held free-form names) is not listed.
#[test]
fn a_ticket_lists_the_photos_of_its_report_and_of_every_handling() {
    let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
    let report = AcceptTicket {
        photos: vec![a.clone()],
        ..hotline_complaint()
    };
    let mut h = vec![accepted_from(&report), assigned_to(DEPT), signed_by("张三")];
    h.push(TicketEvent::TicketHandled(Handled {
        result: "已清理".into(),
        photos: vec![b.clone(), a.clone(), "photo-1.jpg".into()],
        self_handled: false,
        legacy_photo_names: vec![],
    }));
    h.push(verification_failed(t0() + days(9)));
    h.push(TicketEvent::TicketHandled(Handled {
        result: "已彻底清理".into(),
        photos: vec![c.clone()],
        self_handled: false,
        legacy_photo_names: vec![],
    }));
    let t = given(h).ticket().clone();
    let listed: Vec<(&str, PhotoStage)> = t
        .photos
        .iter()
        .map(|p| (p.hash.as_str(), p.stage))
        .collect();
    assert_eq!(
        listed,
        [
            (a.as_str(), PhotoStage::Accepted),
            (b.as_str(), PhotoStage::Handled),
            (c.as_str(), PhotoStage::Handled),
        ]
    );
    assert!(t.has_photo(&b) && !t.has_photo("photo-1.jpg"));
    // The report's photos are in its TicketAccepted; older events read without them.
    let t = given_no_ticket()
        .when(accept(report.clone()))
        .then_events(vec![accepted_from(&report)]);
    assert_eq!(t.photos.len(), 1);
    let old: Accepted = serde_json::from_value(serde_json::json!({
        "number": "N", "source": "hotline", "category": "c", "urgency": "normal",
        "title": "t", "description": "", "location": {}, "reporter_ref": null,
        "related_to": null, "suggested_unit": null, "centre": "x"
    }))
    .expect("an event written before photos reads");
    assert!(old.photos.is_empty());
}
