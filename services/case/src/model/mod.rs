//! The case service's records and the rules that guard changes to them. Everything here is valid by
//! construction (the API edge validates; the store decodes and re-validates what it reads) and the
//! rules are pure functions, run by the store inside the transaction that makes the change.

use chrono::{DateTime, NaiveDate, Utc};
use landsby_domain::board::{self, BoardDecision};
use landsby_domain::{
    Affiliation, AgencyId, CaseStatus, CloseReason, Goal, Language, NationalId, PlacementKind,
    Step, VillageRole, VisitationFloor,
};
use landsby_platform::ApiError;
pub use landsby_platform::idempotency::Idempotency;
use uuid::Uuid;

mod plans;
mod reviews;

pub use plans::*;
pub use reviews::*;

/// The child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub given_name: String,
    pub family_name: String,
    pub birth_date: NaiveDate,
    pub national_id: Option<NationalId>,
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub street: String,
    pub postal_code: String,
    pub city: String,
}

/// The foster home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FosterHome {
    pub name: String,
    pub address: Address,
    pub address_protected: bool,
}

/// The placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub kind: PlacementKind,
    pub start_date: NaiveDate,
    pub foster_home: FosterHome,
}

/// A case to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCase {
    pub child: Child,
    pub placement: Placement,
    pub goal: Goal,
    pub step: Step,
    pub assigned_caseworker: String,
    pub team: String,
    pub co_caseworker: Option<String>,
}

/// A stored case, with its board decisions (oldest `valid_from` first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRecord {
    pub id: Uuid,
    pub agency: AgencyId,
    pub status: CaseStatus,
    pub child: Child,
    pub placement: Placement,
    pub goal: Goal,
    pub step: Step,
    pub assigned_caseworker: String,
    /// The team whose leads may open the case.
    pub team: String,
    /// A second caseworker assigned to the case.
    pub co_caseworker: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub close_reason: Option<CloseReason>,
    pub board_decisions: Vec<BoardDecisionRecord>,
    /// The day the case entered its current step.
    pub step_since: DateTime<Utc>,
    /// Why a family group conference was waived, if it was.
    pub conference_waiver_reason: Option<String>,
    /// A recorded decision reducing the caseworker's follow-up visits.
    pub follow_up_reduction: Option<FollowUpReduction>,
    /// The stamp (case version, policy version, the day computed on) of the computed reviews last
    /// applied; the day is None when they were applied before days were stamped.
    pub due_reviews_stamp: Option<(i64, String, Option<NaiveDate>)>,
    /// The visitation feed position the visit facts are as of.
    pub visit_facts_sequence: Option<i64>,
    /// The frame of the visits is complete (from the visitation service).
    pub frame_complete: bool,
}

/// A recorded decision to reduce the caseworker's follow-up visits until a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUpReduction {
    pub decided_on: NaiveDate,
    pub expires_on: NaiveDate,
    pub reason: String,
}

impl CaseRecord {
    /// Where the case stands on the staircase.
    pub fn position(&self) -> landsby_domain::staircase::Position {
        landsby_domain::staircase::Position {
            step: self.step,
            goal: self.goal,
        }
    }
}

impl CaseRecord {
    /// The board decision in force on `day`.
    pub fn decision_in_force(&self, day: NaiveDate) -> Option<&BoardDecisionRecord> {
        let decisions: Vec<BoardDecision> = self
            .board_decisions
            .iter()
            .map(BoardDecisionRecord::to_domain)
            .collect();
        let id = board::in_force(&decisions, day)?.id;
        self.board_decisions.iter().find(|d| d.id == id)
    }
}

/// Who a case is assigned to, and whether the asking subject holds an unexpired emergency grant
/// for it: what need to know decides on (`landsby_domain::access`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseAccess {
    pub caseworker: String,
    pub co_caseworker: Option<String>,
    pub team: String,
    pub grant: bool,
}

impl CaseAccess {
    /// The assignment, as the domain's rule takes it.
    pub fn assignment(&self) -> landsby_domain::access::Assignment<'_> {
        landsby_domain::access::Assignment {
            caseworker: &self.caseworker,
            co_caseworker: self.co_caseworker.as_deref(),
            team: &self.team,
        }
    }
}

/// A grant of emergency access to a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlassGrant {
    pub id: Uuid,
    pub subject: String,
    pub reason: String,
    pub granted_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The cases a list may show to its caller: None for every case of the agency (the worker),
/// else those assigned to `caseworker` (responsible or co-caseworker) or belonging to one of `teams`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Visibility {
    pub caseworker: Option<String>,
    pub teams: Vec<String>,
}

/// Filters of ListCases; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    /// Need to know: which cases the caller may see at all (None: all of the agency's).
    pub visible_to: Option<Visibility>,
    pub assigned_caseworker: Option<String>,
    pub step: Option<Step>,
    pub goal: Option<Goal>,
    pub status: Option<CaseStatus>,
    /// The keyed lookup hash of the child's identity number (never the number itself).
    pub national_id_hash: Option<String>,
}

/// One way to reach a village member.
pub use landsby_domain::ContactPoint;

/// What a caller sets on a village member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberFields {
    pub role: VillageRole,
    pub affiliation: Affiliation,
    pub display_name: String,
    pub contact_points: Vec<ContactPoint>,
    pub preferred_language: Language,
    pub involved: bool,
    pub informed: bool,
    pub prepared: bool,
    pub has_visitation_rights: bool,
}

/// A case and what belongs to it, read at one moment (BatchGetCaseSnapshots). The board decisions
/// are the case's own (`case.board_decisions`).
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The case.
    pub case: CaseRecord,
    /// Its current village members, in the order they were added.
    pub members: Vec<VillageMemberRecord>,
    /// Its follow-up goals, in the order they were added.
    pub goals: Vec<GoalRecord>,
    /// Its reviews in every status, earliest due first.
    pub reviews: Vec<ReviewRecord>,
    /// Its family group conferences, in the order they were scheduled.
    pub conferences: Vec<ConferenceRecord>,
}

/// A stored village member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VillageMemberRecord {
    pub id: Uuid,
    pub case_id: Uuid,
    pub fields: MemberFields,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A board decision to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBoardDecision {
    pub reference: String,
    pub decided_on: NaiveDate,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub secret_address: bool,
    pub floors: Vec<VisitationFloor>,
}

/// A recorded board decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardDecisionRecord {
    pub id: Uuid,
    pub case_id: Uuid,
    pub decision: NewBoardDecision,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

impl BoardDecisionRecord {
    /// The decision as the domain rules see it.
    pub fn to_domain(&self) -> BoardDecision {
        BoardDecision {
            id: self.id,
            valid_from: self.decision.valid_from,
            valid_to: self.decision.valid_to,
            secret_address: self.decision.secret_address,
            floors: self.decision.floors.clone(),
        }
    }

    /// Whether the decision names `member` in one of its floors.
    pub fn names(&self, member: Uuid) -> bool {
        self.decision.floors.iter().any(|f| f.parent_id == member)
    }
}

/// A change to a case, checked and applied inside the store's transaction.
pub type CaseChange = Box<dyn FnOnce(&mut CaseRecord) -> Result<(), ApiError> + Send>;

/// A change to a village member, given the case (with its decisions) it belongs to.
pub type MemberChange =
    Box<dyn FnOnce(&CaseRecord, &mut VillageMemberRecord) -> Result<(), ApiError> + Send>;

fn subject(case: &CaseRecord) -> String {
    format!("cases/{}", case.id)
}

/// Every change to a case or anything in it needs the case open.
pub fn ensure_open(case: &CaseRecord) -> Result<(), ApiError> {
    match case.status {
        CaseStatus::Open => Ok(()),
        CaseStatus::Closed => Err(ApiError::precondition(
            "CASE_CLOSED",
            subject(case),
            "the case is closed; a closed case can be read but not changed",
        )),
    }
}

/// A foster home's address stays protected while any board decision that keeps it secret applies
/// now or will apply later: protection is never lifted ahead of a decision that demands it.
pub fn ensure_protection_kept(case: &CaseRecord, today: NaiveDate) -> Result<(), ApiError> {
    let demanded = case
        .board_decisions
        .iter()
        .any(|d| d.decision.secret_address && d.decision.valid_to.is_none_or(|to| to >= today));
    if demanded && !case.placement.foster_home.address_protected {
        return Err(ApiError::precondition(
            "BOARD_SECRET_ADDRESS",
            subject(case),
            "a county board decision keeps the foster home's address secret, now or from a later \
             date; address_protected cannot be turned off",
        ));
    }
    Ok(())
}

/// A member named in a board decision must stay a parent with visitation rights, and cannot be
/// removed: the decision's floor is about them.
pub fn ensure_not_named_in_decision(
    case: &CaseRecord,
    member: Uuid,
    still_parent: bool,
) -> Result<(), ApiError> {
    if still_parent {
        return Ok(());
    }
    if case.board_decisions.iter().any(|d| d.names(member)) {
        return Err(ApiError::precondition(
            "MEMBER_IN_BOARD_DECISION",
            format!("cases/{}/members/{member}", case.id),
            "a county board decision sets this parent's visitation; the member must stay a parent \
             with visitation rights",
        ));
    }
    Ok(())
}

/// Whether a member counts as a parent with visitation rights.
pub fn is_parent_with_rights(fields: &MemberFields) -> bool {
    fields.role.is_parent() && fields.has_visitation_rights
}

/// Every floor of a decision must name a parent with visitation rights in this village, once.
/// Field violations name the floors by index.
pub fn check_floors(
    floors: &[VisitationFloor],
    members: &[VillageMemberRecord],
) -> Result<(), ApiError> {
    let mut v = landsby_platform::validate::Violations::new();
    for (i, floor) in floors.iter().enumerate() {
        let field = format!("decision.floors[{i}].parent_id");
        match members.iter().find(|m| m.id == floor.parent_id) {
            None => v.add(field, "no member of this case's village has this id"),
            Some(m) if !is_parent_with_rights(&m.fields) => {
                v.add(field, "the member is not a parent with visitation rights")
            }
            Some(_) => {}
        }
        if floors[..i].iter().any(|f| f.parent_id == floor.parent_id) {
            v.add(
                format!("decision.floors[{i}].parent_id"),
                "names the same parent as an earlier floor",
            );
        }
    }
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use landsby_domain::VisitPeriod;

    fn case() -> CaseRecord {
        let now = Utc::now();
        CaseRecord {
            id: Uuid::now_v7(),
            agency: AgencyId::parse("0301").unwrap(),
            status: CaseStatus::Open,
            child: Child {
                given_name: "A".into(),
                family_name: "B".into(),
                birth_date: NaiveDate::from_ymd_opt(2018, 1, 1).unwrap(),
                national_id: None,
            },
            placement: Placement {
                kind: PlacementKind::CareOrder,
                start_date: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
                foster_home: FosterHome {
                    name: "F".into(),
                    address: Address {
                        street: "S".into(),
                        postal_code: "0150".into(),
                        city: "Oslo".into(),
                    },
                    address_protected: false,
                },
            },
            goal: Goal::Reunification,
            step: Step::Safety,
            assigned_caseworker: "cw".into(),
            team: "team-1".into(),
            co_caseworker: None,
            version: 1,
            created_at: now,
            updated_at: now,
            closed_at: None,
            close_reason: None,
            board_decisions: vec![],
            step_since: now,
            conference_waiver_reason: None,
            follow_up_reduction: None,
            due_reviews_stamp: None,
            visit_facts_sequence: None,
            frame_complete: false,
        }
    }

    fn decision(
        case: &CaseRecord,
        from: NaiveDate,
        secret: bool,
        parent: Uuid,
    ) -> BoardDecisionRecord {
        BoardDecisionRecord {
            id: Uuid::now_v7(),
            case_id: case.id,
            decision: NewBoardDecision {
                reference: "r".into(),
                decided_on: from,
                valid_from: from,
                valid_to: None,
                secret_address: secret,
                floors: vec![VisitationFloor {
                    parent_id: parent,
                    min_visits: 2,
                    period: VisitPeriod::Month,
                    min_duration_minutes: 120,
                    supervision_required: true,
                }],
            },
            recorded_by: "cw".into(),
            recorded_at: Utc::now(),
        }
    }

    fn visit(start: DateTime<Utc>, outcome: VisitFactOutcome, concern: bool) -> VisitFact {
        VisitFact {
            visit_id: Uuid::now_v7(),
            parent_id: Uuid::now_v7(),
            start,
            outcome,
            concern,
            foster_parents_involved: true,
        }
    }

    #[test]
    fn readiness_counts_visits_from_the_moment_the_step_began() {
        let c = case();
        let hour = chrono::Duration::hours(1);
        let visits = [
            // Earlier the same day, before the step began: the step before's.
            visit(c.step_since - hour, VisitFactOutcome::Completed, false),
            visit(c.step_since, VisitFactOutcome::Completed, false),
            visit(c.step_since + hour, VisitFactOutcome::Completed, true),
            visit(
                c.step_since + hour,
                VisitFactOutcome::CancelledByParent,
                false,
            ),
            visit(c.step_since + hour, VisitFactOutcome::Completed, false),
        ];
        let facts = readiness_facts(&c, &visits, 0, false, 0, &[]);
        assert_eq!(facts.completed_visits_without_concerns, 2);
        assert_eq!(facts.visits_with_foster_parent_involvement, 3);
    }

    #[test]
    fn the_childs_view_counts_only_when_heard_after_the_step_began() {
        let c = case();
        let review = |decided_at| ReviewRecord {
            id: Uuid::now_v7(),
            case_id: c.id,
            kind: landsby_domain::due::ReviewKind::StepReview,
            due_date: NaiveDate::from_ymd_opt(2027, 1, 1).unwrap(),
            status: ReviewStatus::Completed,
            note: String::new(),
            computed_key: None,
            outcome: Some(ReviewOutcome {
                decision: landsby_domain::staircase::Decision::Hold,
                rationale: "r".into(),
                child_view: ChildView::View("v".into()),
                decided_by: "cw".into(),
                decided_at,
                from: c.position(),
                reviewed_by: None,
                rejection_reason: None,
                reviewed_at: None,
            }),
            decision_status: Some(DecisionStatus::Applied),
            version: 2,
            created_at: decided_at,
            updated_at: decided_at,
        };
        // The view heard with the decision that moved the case (at the same instant, or before
        // its approval) belongs to the step before.
        let at_the_move = review(c.step_since);
        assert!(!readiness_facts(&c, &[], 0, false, 0, &[at_the_move]).child_view_recorded);
        let later = review(c.step_since + chrono::Duration::minutes(1));
        assert!(readiness_facts(&c, &[], 0, false, 0, &[later]).child_view_recorded);
    }

    #[test]
    fn a_closed_case_refuses_changes() {
        let mut c = case();
        assert!(ensure_open(&c).is_ok());
        c.status = CaseStatus::Closed;
        assert!(matches!(
            ensure_open(&c),
            Err(ApiError::FailedPrecondition(_))
        ));
    }

    #[test]
    fn protection_cannot_be_lifted_while_a_secret_decision_applies_now_or_later() {
        let mut c = case();
        let from = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        c.board_decisions
            .push(decision(&c, from, true, Uuid::now_v7()));
        c.placement.foster_home.address_protected = false;
        assert!(ensure_protection_kept(&c, from).is_err());
        // Before the decision starts it is already demanded: lifting it now would leave the address
        // open on the day the decision begins.
        assert!(ensure_protection_kept(&c, from.pred_opt().unwrap()).is_err());
        c.placement.foster_home.address_protected = true;
        assert!(ensure_protection_kept(&c, from).is_ok());
    }

    #[test]
    fn a_secret_decision_that_has_ended_no_longer_demands_protection() {
        let mut c = case();
        let from = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let mut ended = decision(&c, from, true, Uuid::now_v7());
        ended.decision.valid_to = NaiveDate::from_ymd_opt(2025, 12, 31);
        c.board_decisions.push(ended);
        c.placement.foster_home.address_protected = false;
        assert!(ensure_protection_kept(&c, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()).is_ok());
        assert!(ensure_protection_kept(&c, NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()).is_err());
    }

    #[test]
    fn a_parent_named_in_a_decision_must_stay_a_parent() {
        let mut c = case();
        let parent = Uuid::now_v7();
        c.board_decisions.push(decision(
            &c,
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            false,
            parent,
        ));
        assert!(ensure_not_named_in_decision(&c, parent, false).is_err());
        assert!(ensure_not_named_in_decision(&c, parent, true).is_ok());
        assert!(ensure_not_named_in_decision(&c, Uuid::now_v7(), false).is_ok());
    }
}
