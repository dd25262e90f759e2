//! Conversions at the edge: contract messages to validated records (every problem becomes a field
//! violation) and records back to messages. Enum mappings are exhaustive matches, so a new value in
//! the contract or the domain fails to compile until it is handled here.

use crate::model::{
    Address, BoardDecisionRecord, CaseRecord, Child, FosterHome, MemberFields, NewBoardDecision,
    NewCase, Placement, VillageMemberRecord,
};
use chrono::NaiveDate;
use landsby_domain as d;
use landsby_domain::NationalId;
use landsby_platform::validate::{Violations, date_to_proto, etag, known};
use landsby_proto::case as pb;
use landsby_proto::common as cpb;
use prost_types::Timestamp;

/// Longest names and free text.
pub const MAX_NAME: usize = 200;
/// Most contact points on one member.
/// Most floors on one decision.
pub const MAX_FLOORS: usize = 10;

// ---- enums -------------------------------------------------------------------------------------

pub use landsby_platform::vocab::{
    affiliation_from, affiliation_to, contact_kind_to, contact_points, goal_from, goal_to,
    language_from, language_to, period_from, role_from, role_to, step_from, step_to,
};

pub fn status_from(p: pb::CaseStatus) -> Option<d::CaseStatus> {
    match p {
        pb::CaseStatus::Unspecified => None,
        pb::CaseStatus::Open => Some(d::CaseStatus::Open),
        pb::CaseStatus::Closed => Some(d::CaseStatus::Closed),
    }
}

pub fn status_to(s: d::CaseStatus) -> pb::CaseStatus {
    match s {
        d::CaseStatus::Open => pb::CaseStatus::Open,
        d::CaseStatus::Closed => pb::CaseStatus::Closed,
    }
}

pub fn close_reason_from(p: pb::CloseReason) -> Option<d::CloseReason> {
    match p {
        pb::CloseReason::Unspecified => None,
        pb::CloseReason::Reunified => Some(d::CloseReason::Reunified),
        pb::CloseReason::AgedOut => Some(d::CloseReason::AgedOut),
        pb::CloseReason::Transferred => Some(d::CloseReason::Transferred),
        pb::CloseReason::PlacementEnded => Some(d::CloseReason::PlacementEnded),
        pb::CloseReason::Other => Some(d::CloseReason::Other),
    }
}

pub fn close_reason_to(r: d::CloseReason) -> pb::CloseReason {
    match r {
        d::CloseReason::Reunified => pb::CloseReason::Reunified,
        d::CloseReason::AgedOut => pb::CloseReason::AgedOut,
        d::CloseReason::Transferred => pb::CloseReason::Transferred,
        d::CloseReason::PlacementEnded => pb::CloseReason::PlacementEnded,
        d::CloseReason::Other => pb::CloseReason::Other,
    }
}

pub fn placement_kind_from(p: pb::PlacementKind) -> Option<d::PlacementKind> {
    match p {
        pb::PlacementKind::Unspecified => None,
        pb::PlacementKind::CareOrder => Some(d::PlacementKind::CareOrder),
        pb::PlacementKind::Voluntary => Some(d::PlacementKind::Voluntary),
        pb::PlacementKind::Emergency => Some(d::PlacementKind::Emergency),
    }
}

pub fn placement_kind_to(k: d::PlacementKind) -> pb::PlacementKind {
    match k {
        d::PlacementKind::CareOrder => pb::PlacementKind::CareOrder,
        d::PlacementKind::Voluntary => pb::PlacementKind::Voluntary,
        d::PlacementKind::Emergency => pb::PlacementKind::Emergency,
    }
}

// ---- messages to records ----------------------------------------------------------------------

/// The child, with the identity number checked against the birth date.
pub fn child(v: &mut Violations, prefix: &str, c: &pb::Child, today: NaiveDate) -> Option<Child> {
    let given_name = v.text(&format!("{prefix}.given_name"), &c.given_name, MAX_NAME);
    let family_name = v.text(&format!("{prefix}.family_name"), &c.family_name, MAX_NAME);
    let birth_date = birth_date(
        v,
        &format!("{prefix}.birth_date"),
        c.birth_date.as_ref(),
        today,
    );
    let national_id = national_id(v, &format!("{prefix}.national_id"), &c.national_id);
    let child = Child {
        given_name: given_name?,
        family_name: family_name?,
        birth_date: birth_date?,
        national_id: national_id?,
    };
    check_id_agrees(v, prefix, &child);
    Some(child)
}

/// The identity number must encode the birth date.
pub fn check_id_agrees(v: &mut Violations, prefix: &str, child: &Child) {
    if let Some(id) = &child.national_id
        && !id.agrees_with(child.birth_date)
    {
        v.add(
            format!("{prefix}.national_id"),
            "does not agree with the birth date",
        );
    }
}

pub fn birth_date(
    v: &mut Violations,
    field: &str,
    date: Option<&cpb::Date>,
    today: NaiveDate,
) -> Option<NaiveDate> {
    let date = v.date(field, date)?;
    if date > today {
        v.add(field, "must not be in the future");
        return None;
    }
    Some(date)
}

pub fn national_id(v: &mut Violations, field: &str, raw: &str) -> Option<Option<NationalId>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Some(None);
    }
    match NationalId::parse(raw) {
        Ok(id) => Some(Some(id)),
        Err(e) => {
            v.add(field, e.to_string());
            None
        }
    }
}

pub fn address(
    v: &mut Violations,
    prefix: &str,
    a: Option<&cpb::PostalAddress>,
) -> Option<Address> {
    let a = v.required(prefix, a)?;
    let street = v.text(&format!("{prefix}.street"), &a.street, MAX_NAME);
    let postal_code = postal_code(v, &format!("{prefix}.postal_code"), &a.postal_code);
    let city = v.text(&format!("{prefix}.city"), &a.city, 100);
    Some(Address {
        street: street?,
        postal_code: postal_code?,
        city: city?,
    })
}

fn postal_code(v: &mut Violations, field: &str, raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.len() == 4 && raw.bytes().all(|b| b.is_ascii_digit()) {
        Some(raw.to_owned())
    } else {
        v.add(field, "must be a Norwegian postal code (4 digits)");
        None
    }
}

pub fn foster_home(
    v: &mut Violations,
    prefix: &str,
    f: Option<&pb::FosterHome>,
) -> Option<FosterHome> {
    let f = v.required(prefix, f)?;
    let name = v.optional_text(&format!("{prefix}.name"), &f.name, MAX_NAME);
    let address = address(v, &format!("{prefix}.address"), f.address.as_ref());
    Some(FosterHome {
        name: name?,
        address: address?,
        address_protected: f.address_protected,
    })
}

pub fn placement_kind(v: &mut Violations, field: &str, raw: i32) -> Option<d::PlacementKind> {
    v.enumeration(field, raw, known::<pb::PlacementKind>, placement_kind_from)
}

pub fn placement(v: &mut Violations, prefix: &str, p: Option<&pb::Placement>) -> Option<Placement> {
    let p = v.required(prefix, p)?;
    let kind = placement_kind(v, &format!("{prefix}.kind"), p.kind);
    let start_date = v.date(&format!("{prefix}.start_date"), p.start_date.as_ref());
    let foster_home = foster_home(v, &format!("{prefix}.foster_home"), p.foster_home.as_ref());
    Some(Placement {
        kind: kind?,
        start_date: start_date?,
        foster_home: foster_home?,
    })
}

pub fn subject(v: &mut Violations, field: &str, raw: &str) -> Option<String> {
    v.text(field, raw, 256)
}

/// An optional subject: empty is none.
pub fn optional_subject(v: &mut Violations, field: &str, raw: &str) -> Option<Option<String>> {
    v.optional_text(field, raw, 256)
        .map(|s| (!s.is_empty()).then_some(s))
}

/// A team: 1-64 characters, as a token's `teams` claim names it.
pub fn team(v: &mut Violations, field: &str, raw: &str) -> Option<String> {
    v.text(field, raw, 64)
}

/// A case to create. Output-only fields are ignored, as the contract says.
pub fn new_case(v: &mut Violations, c: Option<&pb::Case>, today: NaiveDate) -> Option<NewCase> {
    let c = v.required("case", c)?;
    let child = v
        .required("case.child", c.child.as_ref())
        .and_then(|ch| child(v, "case.child", ch, today));
    let placement = placement(v, "case.placement", c.placement.as_ref());
    let goal = v.enumeration("case.goal", c.goal, known::<pb::Goal>, goal_from);
    // A new case starts in step 1; a step changes only through a recorded review decision.
    if let Some(Some(step)) =
        v.optional_enumeration("case.step", c.step, known::<pb::Step>, step_from)
        && step != d::Step::Safety
    {
        v.add(
            "case.step",
            "a new case starts in step 1 (safety); steps change only through a recorded review decision",
        );
    }
    let assigned = subject(v, "case.assigned_caseworker", &c.assigned_caseworker);
    let co = optional_subject(v, "case.co_caseworker", &c.co_caseworker);
    let team = team(v, "case.team", &c.team);
    Some(NewCase {
        child: child?,
        placement: placement?,
        goal: goal?,
        step: d::Step::Safety,
        assigned_caseworker: assigned?,
        team: team?,
        co_caseworker: co?,
    })
}

pub fn village_role(v: &mut Violations, field: &str, raw: i32) -> Option<d::VillageRole> {
    v.enumeration(field, raw, known::<pb::VillageRole>, role_from)
}

pub fn affiliation(v: &mut Violations, field: &str, raw: i32) -> Option<Option<d::Affiliation>> {
    v.optional_enumeration(field, raw, known::<pb::Affiliation>, affiliation_from)
}

pub fn language(v: &mut Violations, field: &str, raw: i32) -> Option<d::Language> {
    v.optional_enumeration(field, raw, known::<cpb::Language>, language_from)
        .map(|l| l.unwrap_or(d::Language::Nb))
}

/// A member to add: the side defaults to the role's, the language to Bokmål.
pub fn member_fields(v: &mut Violations, m: Option<&pb::VillageMember>) -> Option<MemberFields> {
    let m = v.required("member", m)?;
    let role = village_role(v, "member.role", m.role);
    let affiliation = affiliation(v, "member.affiliation", m.affiliation);
    let display_name = v.text("member.display_name", &m.display_name, MAX_NAME);
    let contact_points = contact_points(v, "member.contact_points", &m.contact_points);
    let preferred_language = language(v, "member.preferred_language", m.preferred_language);
    let role = role?;
    Some(MemberFields {
        role,
        affiliation: affiliation?.unwrap_or(role.default_affiliation()),
        display_name: display_name?,
        contact_points: contact_points?,
        preferred_language: preferred_language?,
        involved: m.involved,
        informed: m.informed,
        prepared: m.prepared,
        has_visitation_rights: m.has_visitation_rights,
    })
}

fn floor(v: &mut Violations, field: &str, f: &pb::VisitationFloor) -> Option<d::VisitationFloor> {
    let parent_id = v.uuid(&format!("{field}.parent_id"), &f.parent_id);
    let min_visits = bounded(
        v,
        &format!("{field}.min_visits"),
        f.min_visits,
        d::board::MAX_FLOOR_VISITS,
    );
    let period = v.enumeration(
        &format!("{field}.period"),
        f.period,
        known::<pb::VisitPeriod>,
        period_from,
    );
    let min_duration = bounded(
        v,
        &format!("{field}.min_duration_minutes"),
        f.min_duration_minutes,
        d::board::MAX_VISIT_MINUTES,
    );
    Some(d::VisitationFloor {
        parent_id: parent_id?,
        min_visits: min_visits?,
        period: period?,
        min_duration_minutes: min_duration?,
        supervision_required: f.supervision_required,
    })
}

fn bounded(v: &mut Violations, field: &str, raw: i32, max: u32) -> Option<u32> {
    match u32::try_from(raw) {
        Ok(n) if n <= max => Some(n),
        _ => {
            v.add(field, format!("must be between 0 and {max}"));
            None
        }
    }
}

/// A board decision to record.
pub fn new_decision(v: &mut Violations, b: Option<&pb::BoardDecision>) -> Option<NewBoardDecision> {
    let b = v.required("decision", b)?;
    let reference = v.optional_text("decision.reference", &b.reference, 100);
    let decided_on = v.date("decision.decided_on", b.decided_on.as_ref());
    let valid_from = v.date("decision.valid_from", b.valid_from.as_ref());
    let valid_to = v.optional_date("decision.valid_to", b.valid_to.as_ref());
    if b.floors.is_empty() {
        v.add("decision.floors", "at least one parent's floor is required");
    } else if b.floors.len() > MAX_FLOORS {
        v.add("decision.floors", format!("at most {MAX_FLOORS} floors"));
    }
    // Past the limit the floors are not looked at one by one: the answer stays small.
    let floors: Option<Vec<d::VisitationFloor>> = if b.floors.len() > MAX_FLOORS {
        None
    } else {
        b.floors
            .iter()
            .enumerate()
            .map(|(i, f)| floor(v, &format!("decision.floors[{i}]"), f))
            .collect::<Vec<_>>()
            .into_iter()
            .collect()
    };
    if let (Some(from), Some(Some(to))) = (valid_from, valid_to)
        && to < from
    {
        v.add("decision.valid_to", "must not be before valid_from");
    }
    if let (Some(decided), Some(from)) = (decided_on, valid_from)
        && from < decided
    {
        v.add("decision.valid_from", "must not be before decided_on");
    }
    Some(NewBoardDecision {
        reference: reference?,
        decided_on: decided_on?,
        valid_from: valid_from?,
        valid_to: valid_to?,
        secret_address: b.secret_address,
        floors: floors?,
    })
}

// ---- records to messages ----------------------------------------------------------------------

pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> Timestamp {
    landsby_platform::validate::timestamp_to_proto(t)
}

/// A case as the contract shows it, with the decision in force on `today`.
pub fn case_to_proto(c: &CaseRecord, today: NaiveDate) -> pb::Case {
    pb::Case {
        id: c.id.to_string(),
        agency: c.agency.as_str().to_owned(),
        status: status_to(c.status).into(),
        child: Some(pb::Child {
            given_name: c.child.given_name.clone(),
            family_name: c.child.family_name.clone(),
            birth_date: Some(date_to_proto(c.child.birth_date)),
            national_id: c
                .child
                .national_id
                .as_ref()
                .map(|n| n.expose().to_owned())
                .unwrap_or_default(),
        }),
        placement: Some(pb::Placement {
            kind: placement_kind_to(c.placement.kind).into(),
            start_date: Some(date_to_proto(c.placement.start_date)),
            foster_home: Some(pb::FosterHome {
                name: c.placement.foster_home.name.clone(),
                address: Some(cpb::PostalAddress {
                    street: c.placement.foster_home.address.street.clone(),
                    postal_code: c.placement.foster_home.address.postal_code.clone(),
                    city: c.placement.foster_home.address.city.clone(),
                }),
                address_protected: c.placement.foster_home.address_protected,
            }),
        }),
        goal: goal_to(c.goal).into(),
        step: step_to(c.step).into(),
        assigned_caseworker: c.assigned_caseworker.clone(),
        team: c.team.clone(),
        co_caseworker: c.co_caseworker.clone().unwrap_or_default(),
        board_decision: c.decision_in_force(today).map(decision_to_proto),
        version: c.version,
        etag: etag(c.version),
        create_time: Some(timestamp(c.created_at)),
        update_time: Some(timestamp(c.updated_at)),
        close_time: c.closed_at.map(timestamp),
        close_reason: c
            .close_reason
            .map_or(pb::CloseReason::Unspecified, close_reason_to)
            .into(),
        step_since: Some(date_to_proto(landsby_domain::time::oslo_date(c.step_since))),
        conference_waiver_reason: c.conference_waiver_reason.clone().unwrap_or_default(),
        follow_up_reduction: c
            .follow_up_reduction
            .as_ref()
            .map(|r| pb::FollowUpReduction {
                decided_on: Some(date_to_proto(r.decided_on)),
                expires_on: Some(date_to_proto(r.expires_on)),
                reason: r.reason.clone(),
            }),
    }
}

pub fn member_to_proto(m: &VillageMemberRecord) -> pb::VillageMember {
    let f = &m.fields;
    pb::VillageMember {
        id: m.id.to_string(),
        case_id: m.case_id.to_string(),
        role: role_to(f.role).into(),
        affiliation: affiliation_to(f.affiliation).into(),
        display_name: f.display_name.clone(),
        contact_points: f
            .contact_points
            .iter()
            .map(|c| cpb::ContactPoint {
                kind: contact_kind_to(c.kind).into(),
                value: c.value.clone(),
            })
            .collect(),
        preferred_language: language_to(f.preferred_language).into(),
        involved: f.involved,
        informed: f.informed,
        prepared: f.prepared,
        has_visitation_rights: f.has_visitation_rights,
        version: m.version,
        etag: etag(m.version),
        create_time: Some(timestamp(m.created_at)),
        update_time: Some(timestamp(m.updated_at)),
    }
}

pub fn decision_to_proto(r: &BoardDecisionRecord) -> pb::BoardDecision {
    let d = &r.decision;
    pb::BoardDecision {
        id: r.id.to_string(),
        case_id: r.case_id.to_string(),
        reference: d.reference.clone(),
        decided_on: Some(date_to_proto(d.decided_on)),
        valid_from: Some(date_to_proto(d.valid_from)),
        valid_to: d.valid_to.map(date_to_proto),
        secret_address: d.secret_address,
        floors: d
            .floors
            .iter()
            .map(landsby_platform::vocab::floor_to)
            .collect(),
        recorded_by: r.recorded_by.clone(),
        record_time: Some(timestamp(r.recorded_at)),
    }
}

// ---- reviews, plans, visit facts ---------------------------------------------------------------

use crate::model::{
    CareTaskRecord, ChildView, ConferenceAction, ConferenceRecord, DecisionStatus, GoalRecord,
    GoalStatus, NewReview, ReviewOutcome, ReviewRecord, ReviewStatus, VisitFact, VisitFactOutcome,
};
use landsby_domain::care::{CareTaskKind, Holder, Progress};
use landsby_domain::due::ReviewKind;
use landsby_domain::readiness::Assessment;
use landsby_domain::staircase::Decision;

pub fn review_kind_from(p: pb::ReviewKind) -> Option<ReviewKind> {
    match p {
        pb::ReviewKind::Unspecified => None,
        pb::ReviewKind::StepReview => Some(ReviewKind::StepReview),
        pb::ReviewKind::PlanEvaluation => Some(ReviewKind::PlanEvaluation),
        pb::ReviewKind::FollowUpVisit => Some(ReviewKind::FollowUpVisit),
        pb::ReviewKind::ConferenceFollowUp => Some(ReviewKind::ConferenceFollowUp),
        pb::ReviewKind::EarlyReview => Some(ReviewKind::EarlyReview),
        pb::ReviewKind::SecretAddressRenewal => Some(ReviewKind::SecretAddressRenewal),
    }
}

pub fn review_kind_to(k: ReviewKind) -> pb::ReviewKind {
    match k {
        ReviewKind::StepReview => pb::ReviewKind::StepReview,
        ReviewKind::PlanEvaluation => pb::ReviewKind::PlanEvaluation,
        ReviewKind::FollowUpVisit => pb::ReviewKind::FollowUpVisit,
        ReviewKind::ConferenceFollowUp => pb::ReviewKind::ConferenceFollowUp,
        ReviewKind::EarlyReview => pb::ReviewKind::EarlyReview,
        ReviewKind::SecretAddressRenewal => pb::ReviewKind::SecretAddressRenewal,
    }
}

pub fn review_status_from(p: pb::ReviewStatus) -> Option<ReviewStatus> {
    match p {
        pb::ReviewStatus::Unspecified => None,
        pb::ReviewStatus::Scheduled => Some(ReviewStatus::Scheduled),
        pb::ReviewStatus::Completed => Some(ReviewStatus::Completed),
        pb::ReviewStatus::Replaced => Some(ReviewStatus::Replaced),
    }
}

pub fn review_status_to(s: ReviewStatus) -> pb::ReviewStatus {
    match s {
        ReviewStatus::Scheduled => pb::ReviewStatus::Scheduled,
        ReviewStatus::Completed => pb::ReviewStatus::Completed,
        ReviewStatus::Replaced => pb::ReviewStatus::Replaced,
    }
}

pub fn decision_kind_to(d: Decision) -> pb::DecisionKind {
    match d {
        Decision::Hold => pb::DecisionKind::Hold,
        Decision::Advance => pb::DecisionKind::Advance,
        Decision::StepBack { .. } => pb::DecisionKind::StepBack,
        Decision::ChangeGoal { .. } => pb::DecisionKind::ChangeGoal,
    }
}

pub fn decision_status_to(s: DecisionStatus) -> pb::DecisionStatus {
    match s {
        DecisionStatus::Applied => pb::DecisionStatus::Applied,
        DecisionStatus::PendingApproval => pb::DecisionStatus::PendingApproval,
        DecisionStatus::Rejected => pb::DecisionStatus::Rejected,
    }
}

fn decision_to_proto_message(d: Decision) -> pb::StaircaseDecision {
    pb::StaircaseDecision {
        kind: decision_kind_to(d).into(),
        step_back_to: match d {
            Decision::StepBack { to } => step_to(to).into(),
            _ => pb::Step::Unspecified.into(),
        },
        new_goal: match d {
            Decision::ChangeGoal { to } => goal_to(to).into(),
            _ => pb::Goal::Unspecified.into(),
        },
    }
}

/// A staircase decision: the kind, and the step or goal the kind needs.
pub fn decision_from(v: &mut Violations, d: Option<&pb::StaircaseDecision>) -> Option<Decision> {
    let d = v.required("decision", d)?;
    let kind = v.enumeration("decision.kind", d.kind, known::<pb::DecisionKind>, Some)?;
    match kind {
        pb::DecisionKind::Unspecified => {
            v.add("decision.kind", "is required");
            None
        }
        pb::DecisionKind::Hold => Some(Decision::Hold),
        pb::DecisionKind::Advance => Some(Decision::Advance),
        pb::DecisionKind::StepBack => v
            .enumeration(
                "decision.step_back_to",
                d.step_back_to,
                known::<pb::Step>,
                step_from,
            )
            .map(|to| Decision::StepBack { to }),
        pb::DecisionKind::ChangeGoal => v
            .enumeration(
                "decision.new_goal",
                d.new_goal,
                known::<pb::Goal>,
                goal_from,
            )
            .map(|to| Decision::ChangeGoal { to }),
    }
}

/// The child's view or why it could not be obtained: exactly one.
pub fn child_view_from(v: &mut Violations, c: Option<&pb::ChildView>) -> Option<ChildView> {
    let c = v.required("child_view", c)?;
    let view = c.view.trim();
    let reason = c.not_obtained_reason.trim();
    match (view.is_empty(), reason.is_empty()) {
        (false, true) => v.text("child_view.view", view, 4000).map(ChildView::View),
        (true, false) => v
            .text("child_view.not_obtained_reason", reason, 2000)
            .map(ChildView::NotObtained),
        (true, true) => {
            v.add(
                "child_view",
                "record the child's view, or why it could not be obtained",
            );
            None
        }
        (false, false) => {
            v.add(
                "child_view",
                "give either the view or why it could not be obtained, not both",
            );
            None
        }
    }
}

fn outcome_to_proto(o: &ReviewOutcome, status: Option<DecisionStatus>) -> pb::ReviewOutcome {
    let (view, not_obtained) = match &o.child_view {
        ChildView::View(v) => (v.clone(), String::new()),
        ChildView::NotObtained(r) => (String::new(), r.clone()),
    };
    pb::ReviewOutcome {
        decision: Some(decision_to_proto_message(o.decision)),
        rationale: o.rationale.clone(),
        child_view: Some(pb::ChildView {
            view,
            not_obtained_reason: not_obtained,
        }),
        decided_by: o.decided_by.clone(),
        decide_time: Some(timestamp(o.decided_at)),
        decision_status: status
            .map_or(pb::DecisionStatus::Unspecified, decision_status_to)
            .into(),
        reviewed_by: o.reviewed_by.clone().unwrap_or_default(),
        rejection_reason: o.rejection_reason.clone().unwrap_or_default(),
        review_time: o.reviewed_at.map(timestamp),
    }
}

pub fn review_to_proto(r: &ReviewRecord) -> pb::Review {
    pb::Review {
        id: r.id.to_string(),
        case_id: r.case_id.to_string(),
        kind: review_kind_to(r.kind).into(),
        due_date: Some(date_to_proto(r.due_date)),
        status: review_status_to(r.status).into(),
        note: r.note.clone(),
        computed_key: r.computed_key.clone().unwrap_or_default(),
        outcome: r
            .outcome
            .as_ref()
            .map(|o| outcome_to_proto(o, r.decision_status)),
        version: r.version,
        etag: etag(r.version),
        create_time: Some(timestamp(r.created_at)),
        update_time: Some(timestamp(r.updated_at)),
    }
}

/// A review to schedule, or (with `computed`) a computed one, whose key is required.
pub fn new_review(
    v: &mut Violations,
    field: &str,
    r: &pb::Review,
    computed: bool,
) -> Option<NewReview> {
    let kind = v.enumeration(
        &format!("{field}.kind"),
        r.kind,
        known::<pb::ReviewKind>,
        review_kind_from,
    );
    let due_date = v.date(&format!("{field}.due_date"), r.due_date.as_ref());
    let note = v.optional_text(&format!("{field}.note"), &r.note, 2000);
    let computed_key = if computed {
        v.text(&format!("{field}.computed_key"), &r.computed_key, 300)
            .map(Some)
    } else {
        Some(None)
    };
    Some(NewReview {
        kind: kind?,
        due_date: due_date?,
        note: note?,
        computed_key: computed_key?,
    })
}

pub fn readiness_to_proto(
    case_id: uuid::Uuid,
    a: &Assessment,
    policy_version: &str,
) -> pb::Readiness {
    pb::Readiness {
        case_id: case_id.to_string(),
        next_step: a.next_step.map_or(pb::Step::Unspecified, step_to).into(),
        ready: a.ready(),
        conditions: a
            .conditions
            .iter()
            .map(|c| pb::ReadinessCondition {
                key: c.key.to_owned(),
                met: c.met,
                reason: c.reason.clone(),
            })
            .collect(),
        policy_version: policy_version.to_owned(),
    }
}

pub fn goal_status_from(p: pb::FollowUpGoalStatus) -> Option<GoalStatus> {
    match p {
        pb::FollowUpGoalStatus::Unspecified => None,
        pb::FollowUpGoalStatus::Active => Some(GoalStatus::Active),
        pb::FollowUpGoalStatus::Achieved => Some(GoalStatus::Achieved),
        pb::FollowUpGoalStatus::Dropped => Some(GoalStatus::Dropped),
    }
}

pub fn goal_status_to(s: GoalStatus) -> pb::FollowUpGoalStatus {
    match s {
        GoalStatus::Active => pb::FollowUpGoalStatus::Active,
        GoalStatus::Achieved => pb::FollowUpGoalStatus::Achieved,
        GoalStatus::Dropped => pb::FollowUpGoalStatus::Dropped,
    }
}

pub fn goal_to_proto(g: &GoalRecord) -> pb::FollowUpGoal {
    pb::FollowUpGoal {
        id: g.id.to_string(),
        case_id: g.case_id.to_string(),
        description: g.description.clone(),
        status: goal_status_to(g.status).into(),
        version: g.version,
        etag: etag(g.version),
        create_time: Some(timestamp(g.created_at)),
        update_time: Some(timestamp(g.updated_at)),
    }
}

pub fn care_kind_from(p: pb::CareTaskKind) -> Option<CareTaskKind> {
    match p {
        pb::CareTaskKind::Unspecified => None,
        pb::CareTaskKind::SchoolFollowUp => Some(CareTaskKind::SchoolFollowUp),
        pb::CareTaskKind::LeisureActivities => Some(CareTaskKind::LeisureActivities),
        pb::CareTaskKind::ParentMeetings => Some(CareTaskKind::ParentMeetings),
        pb::CareTaskKind::MedicalAppointments => Some(CareTaskKind::MedicalAppointments),
        pb::CareTaskKind::Bedtime => Some(CareTaskKind::Bedtime),
        pb::CareTaskKind::Overnights => Some(CareTaskKind::Overnights),
        pb::CareTaskKind::DailyCare => Some(CareTaskKind::DailyCare),
        pb::CareTaskKind::Other => Some(CareTaskKind::Other),
    }
}

pub fn care_kind_to(k: CareTaskKind) -> pb::CareTaskKind {
    match k {
        CareTaskKind::SchoolFollowUp => pb::CareTaskKind::SchoolFollowUp,
        CareTaskKind::LeisureActivities => pb::CareTaskKind::LeisureActivities,
        CareTaskKind::ParentMeetings => pb::CareTaskKind::ParentMeetings,
        CareTaskKind::MedicalAppointments => pb::CareTaskKind::MedicalAppointments,
        CareTaskKind::Bedtime => pb::CareTaskKind::Bedtime,
        CareTaskKind::Overnights => pb::CareTaskKind::Overnights,
        CareTaskKind::DailyCare => pb::CareTaskKind::DailyCare,
        CareTaskKind::Other => pb::CareTaskKind::Other,
    }
}

pub fn holder_from(p: pb::CareTaskHolder) -> Option<Holder> {
    match p {
        pb::CareTaskHolder::Unspecified => None,
        pb::CareTaskHolder::FosterParents => Some(Holder::FosterParents),
        pb::CareTaskHolder::Shared => Some(Holder::Shared),
        pb::CareTaskHolder::Parents => Some(Holder::Parents),
    }
}

pub fn holder_to(h: Holder) -> pb::CareTaskHolder {
    match h {
        Holder::FosterParents => pb::CareTaskHolder::FosterParents,
        Holder::Shared => pb::CareTaskHolder::Shared,
        Holder::Parents => pb::CareTaskHolder::Parents,
    }
}

pub fn task_to_proto(t: &CareTaskRecord) -> pb::CareTask {
    pb::CareTask {
        id: t.id.to_string(),
        case_id: t.case_id.to_string(),
        kind: care_kind_to(t.kind).into(),
        description: t.description.clone(),
        holder: holder_to(t.holder).into(),
        version: t.version,
        etag: etag(t.version),
        create_time: Some(timestamp(t.created_at)),
        update_time: Some(timestamp(t.updated_at)),
    }
}

pub fn progress_to_proto(p: &Progress) -> pb::CareProgress {
    let n = |x: u32| i32::try_from(x).unwrap_or(i32::MAX);
    pb::CareProgress {
        total: n(p.total),
        foster_parents: n(p.foster_parents),
        shared: n(p.shared),
        parents: n(p.parents),
        percent_with_parents: n(p.percent_with_parents),
    }
}

pub fn action_from(
    v: &mut Violations,
    field: &str,
    a: &pb::ConferenceAction,
) -> Option<ConferenceAction> {
    let owner = v.text(&format!("{field}.owner"), &a.owner, 200);
    let what = v.text(&format!("{field}.what"), &a.what, 1000);
    let due_date = v.date(&format!("{field}.due_date"), a.due_date.as_ref());
    Some(ConferenceAction {
        owner: owner?,
        what: what?,
        due_date: due_date?,
    })
}

pub fn conference_to_proto(c: &ConferenceRecord) -> pb::FamilyGroupConference {
    pb::FamilyGroupConference {
        id: c.id.to_string(),
        case_id: c.case_id.to_string(),
        planned_date: Some(date_to_proto(c.planned_date)),
        coordinator: c.coordinator.clone(),
        participant_ids: c
            .participant_ids
            .iter()
            .map(uuid::Uuid::to_string)
            .collect(),
        held_on: c.held_on.map(date_to_proto),
        actions: c
            .actions
            .iter()
            .map(|a| pb::ConferenceAction {
                owner: a.owner.clone(),
                what: a.what.clone(),
                due_date: Some(date_to_proto(a.due_date)),
            })
            .collect(),
        version: c.version,
        etag: etag(c.version),
        create_time: Some(timestamp(c.created_at)),
        update_time: Some(timestamp(c.updated_at)),
    }
}

fn visit_outcome_from(p: pb::VisitFactOutcome) -> Option<VisitFactOutcome> {
    match p {
        pb::VisitFactOutcome::Unspecified => None,
        pb::VisitFactOutcome::Completed => Some(VisitFactOutcome::Completed),
        pb::VisitFactOutcome::CancelledByParent => Some(VisitFactOutcome::CancelledByParent),
        pb::VisitFactOutcome::CancelledByOthers => Some(VisitFactOutcome::CancelledByOthers),
        pb::VisitFactOutcome::NoShow => Some(VisitFactOutcome::NoShow),
    }
}

pub fn visit_fact_from(v: &mut Violations, field: &str, f: &pb::VisitFact) -> Option<VisitFact> {
    let visit_id = v.uuid(&format!("{field}.visit_id"), &f.visit_id);
    let parent_id = v.uuid(&format!("{field}.parent_id"), &f.parent_id);
    let start = v.timestamp(&format!("{field}.start_time"), f.start_time.as_ref());
    let outcome = v.enumeration(
        &format!("{field}.outcome"),
        f.outcome,
        known::<pb::VisitFactOutcome>,
        visit_outcome_from,
    );
    Some(VisitFact {
        visit_id: visit_id?,
        parent_id: parent_id?,
        start: start?,
        outcome: outcome?,
        concern: f.concern,
        foster_parents_involved: f.foster_parents_involved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_enum_value_maps_and_round_trips() {
        for &g in d::Goal::ALL {
            assert_eq!(goal_from(goal_to(g)), Some(g));
        }
        for &s in d::Step::ALL {
            assert_eq!(step_from(step_to(s)), Some(s));
            assert_eq!(
                step_to(s) as i32,
                i32::from(s.number()),
                "proto step numbers are step numbers"
            );
        }
        for &r in d::VillageRole::ALL {
            assert_eq!(role_from(role_to(r)), Some(r));
        }
        for &p in d::VisitPeriod::ALL {
            assert_eq!(period_from(landsby_platform::vocab::period_to(p)), Some(p));
        }
        for &r in d::CloseReason::ALL {
            assert_eq!(close_reason_from(close_reason_to(r)), Some(r));
        }
        for &k in d::PlacementKind::ALL {
            assert_eq!(placement_kind_from(placement_kind_to(k)), Some(k));
        }
        for &s in d::CaseStatus::ALL {
            assert_eq!(status_from(status_to(s)), Some(s));
        }
        for &k in ReviewKind::ALL {
            assert_eq!(review_kind_from(review_kind_to(k)), Some(k));
        }
        for &k in CareTaskKind::ALL {
            assert_eq!(care_kind_from(care_kind_to(k)), Some(k));
        }
        for &h in Holder::ALL {
            assert_eq!(holder_from(holder_to(h)), Some(h));
        }
    }
}
