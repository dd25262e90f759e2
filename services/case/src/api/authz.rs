//! Which roles may call which RPC of the case service. Every RPC is listed; a test checks the list
//! against the contract, and `docs/security.md` carries the same table (also checked by a test).
//!
//! Case content is for the agency's case staff; the worker (role `service`) makes exactly the calls
//! it needs (a test checks the `service` column against them): it lists the open cases, reads their
//! snapshots in batches and the event feed, and alone writes what it derives; the visitation service
//! reads a case with its village (GetCase) on the worker's behalf when it puts a computed scope in
//! force. A step or goal decision takes effect when a team lead approves it. Administrators and
//! auditors do not read case content here.

use landsby_domain::Role;

const CASE_STAFF: &[Role] = &[Role::Caseworker, Role::TeamLead];
const CASE_STAFF_AND_WORKER: &[Role] = &[Role::Caseworker, Role::TeamLead, Role::Service];
const TEAM_LEAD: &[Role] = &[Role::TeamLead];
const WORKER: &[Role] = &[Role::Service];

landsby_platform::rpc_table! {
    "landsby.case.v1.CaseService";
    CreateCase => CASE_STAFF,
    GetCase => CASE_STAFF_AND_WORKER,
    ListCases => CASE_STAFF_AND_WORKER,
    UpdateCase => CASE_STAFF,
    CloseCase => CASE_STAFF,
    BreakGlass => CASE_STAFF,
    AddVillageMember => CASE_STAFF,
    UpdateVillageMember => CASE_STAFF,
    RemoveVillageMember => CASE_STAFF,
    ListVillageMembers => CASE_STAFF,
    RecordBoardDecision => CASE_STAFF,
    ListBoardDecisions => CASE_STAFF,
    ScheduleReview => CASE_STAFF,
    ListReviews => CASE_STAFF,
    CompleteReview => CASE_STAFF,
    ApproveDecision => TEAM_LEAD,
    RejectDecision => TEAM_LEAD,
    GetReadiness => CASE_STAFF,
    AddFollowUpGoal => CASE_STAFF,
    UpdateFollowUpGoal => CASE_STAFF,
    ListFollowUpGoals => CASE_STAFF,
    AddCareTask => CASE_STAFF,
    MoveCareTask => CASE_STAFF,
    ListCareTasks => CASE_STAFF,
    ScheduleFamilyGroupConference => CASE_STAFF,
    RecordConferenceOutcome => CASE_STAFF,
    ListFamilyGroupConferences => CASE_STAFF,
    WaiveFamilyGroupConference => CASE_STAFF,
    ReduceFollowUpVisits => CASE_STAFF,
    BatchSyncVisitFacts => WORKER,
    BatchSyncDueReviews => WORKER,
    BatchGetCaseSnapshots => WORKER,
    WatchEvents => WORKER,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_of_the_contract_has_a_row_with_roles_and_docs_carry_the_table() {
        assert_eq!(Rpc::check("case"), Ok(()));
        assert_eq!(Rpc::GetCase.method(), "landsby.case.v1.CaseService/GetCase");
    }
}
