//! Which roles may call which RPC of the notification service. Every RPC is listed; a test checks
//! the list against the contract, and `docs/security.md` carries the same table (also checked).
//!
//! The agency's case staff send and read notifications; the worker (role `service`) sends them and
//! alone purges what retention no longer keeps; the agency's portals (role `portal`) read a
//! recipient's inbox, mark it read, read a notification in it and set the recipient's preferences.

use landsby_domain::Role;

const STAFF: &[Role] = &[Role::Caseworker, Role::TeamLead];
const STAFF_AND_WORKER: &[Role] = &[Role::Caseworker, Role::TeamLead, Role::Service];
const STAFF_AND_PORTALS: &[Role] = &[Role::Caseworker, Role::TeamLead, Role::Portal];

landsby_platform::rpc_table! {
    "landsby.notification.v1.NotificationService";
    SendNotification => STAFF_AND_WORKER,
    BatchSendNotifications => &[Role::Service],
    GetNotification => STAFF_AND_PORTALS,
    ListNotifications => STAFF,
    ListInbox => STAFF_AND_PORTALS,
    MarkInboxRead => STAFF_AND_PORTALS,
    GetPreferences => STAFF_AND_PORTALS,
    SetPreferences => STAFF_AND_PORTALS,
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
