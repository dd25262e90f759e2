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
    GetVisitationPlan => STAFF_AND_WORKER,
    ListVisitationPlans => STAFF_AND_WORKER,
    ListScopeVersions => STAFF_AND_WORKER,
    ApplyComputedScope => WORKER,
    AdjustVisitationPlan => STAFF,
    ProposeSchedule => STAFF,
    ScheduleVisit => STAFF,
    GetVisit => STAFF_AND_WORKER,
    ListVisits => STAFF_AND_WORKER,
    UpdateVisit => STAFF,
    ConfirmVisit => STAFF,
    CancelVisit => STAFF,
    CompleteVisit => STAFF,
    RecordNoShow => STAFF,
    WatchEvents => WORKER,
}

#[cfg(test)]
mod tests {
    use super::*;
    use landsby_platform::authz::{contract_methods, documented_table};

    #[test]
    fn every_rpc_of_the_contract_has_a_row_and_no_row_is_extra() {
        let mut ours: Vec<&str> = Rpc::ALL.iter().map(|r| r.name()).collect();
        ours.sort_unstable();
        assert_eq!(contract_methods(Rpc::SERVICE), ours);
        assert!(Rpc::ALL.iter().all(|r| !r.allowed().is_empty()));
    }

    #[test]
    fn docs_security_md_carries_the_role_table() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/security.md"
        ))
        .expect("docs/security.md");
        let table = Rpc::role_table();
        assert_eq!(
            documented_table(&doc, "visitation"),
            Some(table.trim_end()),
            "docs/security.md's visitation table is out of date:\n{table}"
        );
    }
}
