//! Which roles may call which RPC of the notification service. Every RPC is listed; a test checks
//! the list against the contract, and `docs/security.md` carries the same table (also checked).
//!
//! The agency's case staff and the worker (role `service`) send and read notifications; the agency's
//! portals read a recipient's inbox and preferences with a service token.

use landsby_domain::Role;

const STAFF_AND_WORKER: &[Role] = &[Role::Caseworker, Role::TeamLead, Role::Service];

landsby_platform::rpc_table! {
    "landsby.notification.v1.NotificationService";
    SendNotification => STAFF_AND_WORKER,
    GetNotification => STAFF_AND_WORKER,
    ListNotifications => STAFF_AND_WORKER,
    ListInbox => STAFF_AND_WORKER,
    MarkInboxRead => STAFF_AND_WORKER,
    GetPreferences => STAFF_AND_WORKER,
    SetPreferences => STAFF_AND_WORKER,
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
            documented_table(&doc, "notification"),
            Some(table.trim_end()),
            "docs/security.md's notification table is out of date:\n{table}"
        );
    }
}
