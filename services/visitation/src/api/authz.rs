//! Which roles may call which RPC of the visitation service. Every RPC is listed; a test checks the
//! list against the contract, and `docs/security.md` carries the same table (also checked).
//!
//! Plans and visits are the agency's case staff's work; the worker (role `service`) reads them,
//! alone puts computed scopes in force, and reads the feed.

use landsby_domain::Role;

const STAFF: &[Role] = &[Role::Caseworker, Role::TeamLead];
const STAFF_AND_WORKER: &[Role] = &[Role::Caseworker, Role::TeamLead, Role::Service];
const WORKER: &[Role] = &[Role::Service];

landsby_platform::rpc_table! {
    "landsby.visitation.v1.VisitationService";
    GetVisitationPlan => STAFF,
    ListVisitationPlans => STAFF,
    ListScopeVersions => STAFF_AND_WORKER,
    BatchApplyComputedScopes => WORKER,
    AdjustVisitationPlan => STAFF,
    ProposeSchedule => STAFF,
    ScheduleVisit => STAFF,
    GetVisit => STAFF_AND_WORKER,
    ListVisits => STAFF,
    UpdateVisit => STAFF,
    ConfirmVisit => STAFF,
    CancelVisit => STAFF,
    CompleteVisit => STAFF,
    RecordNoShow => STAFF,
    BatchGetCaseVisitation => WORKER,
    WatchEvents => WORKER,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_of_the_contract_has_a_row_with_roles_and_docs_carry_the_table() {
        assert_eq!(Rpc::check("visitation"), Ok(()));
    }
}
