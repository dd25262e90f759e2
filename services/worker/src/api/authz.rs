//! Which roles may call which RPC of the worker's admin API. Every RPC is listed; a test checks the
//! list against the contract, and `docs/security.md` carries the same table (also checked).
//!
//! The agency's administrators run the jobs (list, retry, start a sweep); auditors may look. Jobs
//! carry ids only, never case content.

use landsby_domain::Role;

const ADMIN: &[Role] = &[Role::AgencyAdmin];
const ADMIN_AND_AUDITOR: &[Role] = &[Role::AgencyAdmin, Role::Auditor];

landsby_platform::rpc_table! {
    "landsby.worker.v1.WorkerAdminService";
    ListJobs => ADMIN_AND_AUDITOR,
    RetryJob => ADMIN,
    GetSweepStatus => ADMIN_AND_AUDITOR,
    TriggerSweep => ADMIN,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_of_the_contract_has_a_row_with_roles_and_docs_carry_the_table() {
        assert_eq!(Rpc::check("worker"), Ok(()));
    }
}
