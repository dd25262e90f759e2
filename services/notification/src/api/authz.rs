//! Which roles may call which RPC of the notification service. Every RPC is listed; a test checks
//! the list against the contract, and `docs/security.md` carries the same table (also checked).
//!
//! The agency's case staff and the worker (role `service`) send and read notifications; the agency's
//! portals read a recipient's inbox and preferences with a service token. The worker alone purges
//! what retention no longer keeps.

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
    PurgeNotifications => &[Role::Service],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_of_the_contract_has_a_row_with_roles_and_docs_carry_the_table() {
        assert_eq!(Rpc::check("notification"), Ok(()));
    }
}
