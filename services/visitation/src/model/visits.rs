//! Visits: their frame, the report after them, and the rules of booking and of moving a visit from
//! one status to the next.

use super::plans::PlanRecord;
use chrono::{DateTime, NaiveDateTime, Utc};
use landsby_domain::{AgencyId, Place, Supervision};
use landsby_platform::ApiError;
use landsby_platform::error::PreconditionViolation;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

landsby_domain::coded_enum! {
    /// Where a visit stands.
    VisitStatus {
        /// Planned; the frame may still be incomplete.
        Scheduled = "scheduled",
        /// The frame is complete and the visit will take place.
        Confirmed = "confirmed",
        /// It took place; the report is recorded.
        Completed = "completed",
        /// It was cancelled.
        Cancelled = "cancelled",
        /// The parent did not come.
        NoShow = "no_show",
    }
}

impl VisitStatus {
    /// Still to take place: it holds its time, for the child and the supervisor.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Scheduled | Self::Confirmed)
    }
}

landsby_domain::coded_enum! {
    /// A participant's part in a visit.
    ParticipantRole {
        /// A parent.
        Parent = "parent",
        /// A foster parent.
        FosterParent = "foster_parent",
        /// Family.
        Family = "family",
        /// A support person.
        SupportPerson = "support_person",
        /// Anyone else with a task.
        Other = "other",
    }
}

landsby_domain::coded_enum! {
    /// Who cancelled a visit.
    CancelledBy {
        /// The parent.
        Parent = "parent",
        /// The agency.
        Agency = "agency",
        /// The foster home.
        FosterParents = "foster_parents",
        /// The child was ill.
        ChildIllness = "child_illness",
        /// Someone or something else.
        Other = "other",
    }
}

/// A village member taking part in a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub member_id: Uuid,
    pub role: ParticipantRole,
    /// Who does what.
    pub task: String,
}

/// Where, who, what, and who does what.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    pub place: Option<Place>,
    pub place_description: String,
    pub participants: Vec<Participant>,
    pub activity: String,
    /// The staff member (`sub`) supervising.
    pub supervisor: Option<String>,
}

/// Why a visit was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    pub cancelled_by: CancelledBy,
    pub reason: String,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

/// The report after a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub how_it_went: String,
    pub child_reactions: String,
    pub parenting_tasks_practised: Vec<String>,
    pub foster_parents_before: bool,
    pub foster_parents_during: bool,
    pub foster_parents_after: bool,
    pub concern: bool,
    pub concern_text: String,
    pub reported_by: String,
    pub reported_at: DateTime<Utc>,
}

impl Report {
    /// The foster parents were involved before, during or after.
    pub fn foster_parents_involved(&self) -> bool {
        self.foster_parents_before || self.foster_parents_during || self.foster_parents_after
    }
}

/// The parent did not come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoShow {
    pub note: String,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

/// A visit as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitRecord {
    pub id: Uuid,
    pub agency: AgencyId,
    pub case_id: Uuid,
    pub parent_id: Uuid,
    pub plan_id: Uuid,
    pub start: DateTime<Utc>,
    /// The Europe/Oslo wall clock it was planned on.
    pub local_start: NaiveDateTime,
    pub duration_minutes: u32,
    pub end: DateTime<Utc>,
    pub status: VisitStatus,
    pub frame: Frame,
    pub supervision: Supervision,
    pub cancellation: Option<Cancellation>,
    pub report: Option<Report>,
    pub no_show: Option<NoShow>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A visit to schedule, before its plan is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVisit {
    pub id: Uuid,
    pub agency: AgencyId,
    pub case_id: Uuid,
    pub parent_id: Uuid,
    pub start: DateTime<Utc>,
    pub local_start: NaiveDateTime,
    pub duration_minutes: u32,
    pub end: DateTime<Utc>,
    pub frame: Frame,
    /// None: the plan's.
    pub supervision: Option<Supervision>,
    pub at: DateTime<Utc>,
}

impl NewVisit {
    /// The visit on `plan`: scheduled, supervised as asked or as the plan says.
    pub fn on(self, plan: &PlanRecord) -> VisitRecord {
        VisitRecord {
            id: self.id,
            agency: self.agency,
            case_id: self.case_id,
            parent_id: self.parent_id,
            plan_id: plan.id,
            start: self.start,
            local_start: self.local_start,
            duration_minutes: self.duration_minutes,
            end: self.end,
            status: VisitStatus::Scheduled,
            frame: self.frame,
            supervision: self.supervision.unwrap_or(plan.scope.supervision.value),
            cancellation: None,
            report: None,
            no_show: None,
            version: 1,
            created_at: self.at,
            updated_at: self.at,
        }
    }
}

fn subject(visit: &VisitRecord) -> String {
    format!("visits/{}", visit.id)
}

impl VisitRecord {
    /// What the frame still lacks, as (precondition type, what to add): where, who, what, roles.
    pub fn missing_frame(&self) -> Vec<(&'static str, &'static str)> {
        let f = &self.frame;
        let mut missing = Vec::new();
        if f.place.is_none() {
            missing.push(("FRAME_WHERE", "say where the visit takes place"));
        }
        if !f.participants.iter().any(|p| p.member_id == self.parent_id) {
            missing.push((
                "FRAME_WHO",
                "name who takes part: at least the parent the visit is for",
            ));
        }
        if f.activity.trim().is_empty() {
            missing.push(("FRAME_WHAT", "say what child and parent will do"));
        }
        let tasks_given = f.participants.iter().all(|p| !p.task.trim().is_empty());
        let supervised =
            self.supervision != Supervision::AgencySupervised || f.supervisor.is_some();
        if !tasks_given || !supervised {
            missing.push((
                "FRAME_ROLES",
                "say who does what: a task for every participant, and the supervisor of a supervised visit",
            ));
        }
        missing
    }

    /// The frame is complete: the visit can be confirmed.
    pub fn frame_complete(&self) -> bool {
        self.missing_frame().is_empty()
    }
}

/// The rules a visit's plan sets: a place the plan allows, never the foster home while the address
/// is secret (as the case service says now, or as the plan last heard), and supervision at least as
/// strict as the plan's.
pub fn check_against_plan(
    visit: &VisitRecord,
    plan: &PlanRecord,
    secret_address: bool,
) -> Result<(), ApiError> {
    let mut violations = Vec::new();
    let mut refuse = |kind: &str, description: String| {
        violations.push(PreconditionViolation {
            kind: kind.into(),
            subject: subject(visit),
            description,
        });
    };
    if let Some(place) = visit.frame.place {
        if place == Place::FosterHome && (secret_address || plan.secret_address) {
            refuse(
                "SECRET_ADDRESS",
                "the foster home's address is secret: no visit with a parent there".into(),
            );
        } else if !plan.scope.places.value.contains(&place) {
            refuse(
                "PLACE_NOT_IN_PLAN",
                format!("the plan does not allow visits at {place}"),
            );
        }
    }
    let required = plan.scope.supervision.value;
    if visit.supervision.leniency() > required.leniency() {
        refuse(
            "SUPERVISION_BELOW_PLAN",
            format!("the plan requires supervision: {required}"),
        );
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ApiError::FailedPrecondition(violations))
    }
}

/// FAILED_PRECONDITION for a change the visit's status does not allow.
pub fn wrong_status(visit: &VisitRecord, what: &str) -> ApiError {
    ApiError::precondition(
        "VISIT_STATUS",
        subject(visit),
        format!("the visit is {}: {what}", visit.status.as_str()),
    )
}

/// Confirms a scheduled visit whose frame is complete.
pub fn confirm(visit: &mut VisitRecord) -> Result<(), ApiError> {
    if visit.status != VisitStatus::Scheduled {
        return Err(wrong_status(
            visit,
            "only a scheduled visit can be confirmed",
        ));
    }
    let missing = visit.missing_frame();
    if !missing.is_empty() {
        return Err(ApiError::FailedPrecondition(
            missing
                .into_iter()
                .map(|(kind, description)| PreconditionViolation {
                    kind: kind.into(),
                    subject: subject(visit),
                    description: description.into(),
                })
                .collect(),
        ));
    }
    visit.status = VisitStatus::Confirmed;
    Ok(())
}

/// Cancels a visit that is still to take place.
pub fn cancel(visit: &mut VisitRecord, cancellation: Cancellation) -> Result<(), ApiError> {
    if !visit.status.is_active() {
        return Err(wrong_status(
            visit,
            "only a scheduled or confirmed visit can be cancelled",
        ));
    }
    visit.status = VisitStatus::Cancelled;
    visit.cancellation = Some(cancellation);
    Ok(())
}

/// A confirmed visit that has begun can be completed or recorded as a no-show.
fn has_taken_place(visit: &VisitRecord, now: DateTime<Utc>, what: &str) -> Result<(), ApiError> {
    if visit.status != VisitStatus::Confirmed {
        return Err(wrong_status(visit, what));
    }
    if visit.start > now {
        return Err(ApiError::precondition(
            "VISIT_NOT_STARTED",
            subject(visit),
            "the visit has not begun yet",
        ));
    }
    Ok(())
}

/// Records that a confirmed visit took place, with its report.
pub fn complete(
    visit: &mut VisitRecord,
    report: Report,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    has_taken_place(visit, now, "only a confirmed visit can be completed")?;
    visit.status = VisitStatus::Completed;
    visit.report = Some(report);
    Ok(())
}

/// Records that the parent did not come to a confirmed visit.
pub fn no_show(
    visit: &mut VisitRecord,
    no_show: NoShow,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    has_taken_place(
        visit,
        now,
        "only a confirmed visit can be recorded as a no-show",
    )?;
    visit.status = VisitStatus::NoShow;
    visit.no_show = Some(no_show);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn visit() -> VisitRecord {
        let start = Utc.with_ymd_and_hms(2027, 3, 2, 16, 0, 0).unwrap();
        VisitRecord {
            id: Uuid::now_v7(),
            agency: AgencyId::parse("0301").unwrap(),
            case_id: Uuid::now_v7(),
            parent_id: Uuid::now_v7(),
            plan_id: Uuid::now_v7(),
            start,
            local_start: start.naive_utc(),
            duration_minutes: 90,
            end: start + chrono::Duration::minutes(90),
            status: VisitStatus::Scheduled,
            frame: Frame::default(),
            supervision: Supervision::AgencySupervised,
            cancellation: None,
            report: None,
            no_show: None,
            version: 1,
            created_at: start,
            updated_at: start,
        }
    }

    fn kinds(err: &ApiError) -> Vec<String> {
        match err {
            ApiError::FailedPrecondition(v) => v.iter().map(|v| v.kind.clone()).collect(),
            other => panic!("expected a precondition, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_frame_lacks_where_who_what_and_roles() {
        let v = visit();
        let missing: Vec<&str> = v.missing_frame().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            missing,
            ["FRAME_WHERE", "FRAME_WHO", "FRAME_WHAT", "FRAME_ROLES"]
        );
    }

    #[test]
    fn a_frame_is_complete_with_place_parent_activity_tasks_and_the_supervisor() {
        let mut v = visit();
        v.frame = Frame {
            place: Some(Place::AgencyPremises),
            place_description: String::new(),
            participants: vec![Participant {
                member_id: v.parent_id,
                role: ParticipantRole::Parent,
                task: "brings the snack".into(),
            }],
            activity: "baking".into(),
            supervisor: None,
        };
        assert_eq!(
            v.missing_frame()
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>(),
            ["FRAME_ROLES"],
            "a supervised visit needs its supervisor"
        );
        v.frame.supervisor = Some("staff-1".into());
        assert!(v.frame_complete());
        v.frame.participants[0].task = " ".into();
        assert!(!v.frame_complete(), "every participant has a task");
    }

    #[test]
    fn only_a_complete_frame_is_confirmed() {
        let mut v = visit();
        let err = confirm(&mut v).unwrap_err();
        assert_eq!(kinds(&err).len(), 4);
        assert_eq!(v.status, VisitStatus::Scheduled);
    }

    #[test]
    fn a_visit_is_completed_only_when_confirmed_and_begun() {
        let mut v = visit();
        let report = Report {
            how_it_went: "well".into(),
            child_reactions: String::new(),
            parenting_tasks_practised: vec![],
            foster_parents_before: true,
            foster_parents_during: false,
            foster_parents_after: false,
            concern: false,
            concern_text: String::new(),
            reported_by: "cw".into(),
            reported_at: v.start,
        };
        let after = v.start + chrono::Duration::hours(3);
        assert_eq!(
            kinds(&complete(&mut v, report.clone(), after).unwrap_err()),
            ["VISIT_STATUS"]
        );
        v.status = VisitStatus::Confirmed;
        let before = v.start - chrono::Duration::hours(1);
        assert_eq!(
            kinds(&complete(&mut v, report.clone(), before).unwrap_err()),
            ["VISIT_NOT_STARTED"]
        );
        complete(&mut v, report, after).unwrap();
        assert_eq!(v.status, VisitStatus::Completed);
        assert!(v.report.as_ref().unwrap().foster_parents_involved());
        assert_eq!(
            kinds(
                &cancel(
                    &mut v,
                    Cancellation {
                        cancelled_by: CancelledBy::Agency,
                        reason: "r".into(),
                        recorded_by: "cw".into(),
                        recorded_at: after,
                    }
                )
                .unwrap_err()
            ),
            ["VISIT_STATUS"],
            "a completed visit is not cancelled"
        );
    }
}
