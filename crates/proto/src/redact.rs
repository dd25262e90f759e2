//! `Debug` for the messages that carry personal data: the type and which fields are set, never the
//! values. The build script turns off the derived `Debug` for exactly these types.

use crate::case::{Child, ChildView, FosterHome, VillageMember};
use crate::common::{ContactPoint, PostalAddress};
use crate::notification::{
    CaseProtection, InboxItem, Notification, Recipient, SendNotificationRequest,
};
use crate::visitation::{
    AdjustVisitationPlanRequest, Adjustment, Cancellation, Frame, NoShow, Participant,
    RecordNoShowRequest, ScopeVersion, VisitReport,
};
use std::fmt;

macro_rules! redacted_debug {
    ($($ty:ty => [$($field:ident),*]),* $(,)?) => {$(
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut s = f.debug_struct(stringify!($ty));
                $( s.field(stringify!($field), &Redacted(is_set(&self.$field))); )*
                s.finish_non_exhaustive()
            }
        }
    )*};
}

/// Prints `<redacted>` for a set field and `<empty>` for an unset one.
struct Redacted(bool);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 { "<redacted>" } else { "<empty>" })
    }
}

trait IsSet {
    fn is_set(&self) -> bool;
}
impl IsSet for String {
    fn is_set(&self) -> bool {
        !self.is_empty()
    }
}
impl<T> IsSet for Option<T> {
    fn is_set(&self) -> bool {
        self.is_some()
    }
}
impl<T> IsSet for Vec<T> {
    fn is_set(&self) -> bool {
        !self.is_empty()
    }
}
impl<K, V> IsSet for std::collections::HashMap<K, V> {
    fn is_set(&self) -> bool {
        !self.is_empty()
    }
}
fn is_set(v: &impl IsSet) -> bool {
    v.is_set()
}

redacted_debug! {
    PostalAddress => [street, postal_code, city],
    ContactPoint => [value],
    Child => [given_name, family_name, birth_date, national_id],
    FosterHome => [name, address],
    VillageMember => [id, case_id, display_name, contact_points],
    ChildView => [view, not_obtained_reason],
    Frame => [place_description, participants, activity, supervisor],
    Participant => [member_id, task],
    VisitReport => [how_it_went, child_reactions, parenting_tasks_practised, concern_text],
    Cancellation => [reason],
    NoShow => [note],
    Adjustment => [rationale],
    ScopeVersion => [scope, rationale],
    AdjustVisitationPlanRequest => [plan_id, scope, rationale],
    RecordNoShowRequest => [visit_id, note],
    Notification => [id, case_id, recipient, subject, body],
    Recipient => [member_id, staff_subject, contact_points],
    InboxItem => [notification_id, subject, body],
    SendNotificationRequest => [case_id, recipient, parameters, protection],
    CaseProtection => [protected_values],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Case;

    #[test]
    fn debug_output_of_a_case_never_shows_the_childs_identity_or_the_foster_home_address() {
        let case = Case {
            child: Some(Child {
                given_name: "Kari".into(),
                family_name: "Nordmann".into(),
                national_id: "01010112345".into(),
                ..Default::default()
            }),
            placement: Some(crate::case::Placement {
                foster_home: Some(FosterHome {
                    name: "Fosterhjemmet i Bakkeveien".into(),
                    address: Some(PostalAddress {
                        street: "Bakkeveien 7".into(),
                        postal_code: "0150".into(),
                        city: "Oslo".into(),
                    }),
                    address_protected: true,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let printed = format!("{case:?} {case:#?}");
        for secret in [
            "Kari",
            "Nordmann",
            "01010112345",
            "Bakkeveien",
            "0150",
            "Oslo",
        ] {
            assert!(!printed.contains(secret), "{secret} leaked: {printed}");
        }
        assert!(printed.contains("<redacted>"));
    }

    #[test]
    fn debug_output_of_a_visit_never_shows_the_report_the_frame_or_a_reason() {
        use crate::visitation::{Visit, VisitReport};
        let visit = Visit {
            frame: Some(Frame {
                place_description: "Frivilligsentralen".into(),
                participants: vec![Participant {
                    member_id: "m".into(),
                    role: 1,
                    task: "brings Emma".into(),
                }],
                activity: "baking".into(),
                supervisor: "staff-7".into(),
                ..Default::default()
            }),
            report: Some(VisitReport {
                how_it_went: "Emma cried at the start".into(),
                child_reactions: "calm later".into(),
                concern_text: "the father smelled of alcohol".into(),
                ..Default::default()
            }),
            cancellation: Some(Cancellation {
                reason: "the mother was admitted".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let printed = format!("{visit:?} {visit:#?}");
        for secret in [
            "Frivilligsentralen",
            "Emma",
            "baking",
            "staff-7",
            "calm later",
            "alcohol",
            "admitted",
        ] {
            assert!(!printed.contains(secret), "{secret} leaked: {printed}");
        }
    }

    #[test]
    fn debug_output_of_a_village_member_hides_name_and_contacts() {
        let member = VillageMember {
            display_name: "Ola Nordmann".into(),
            contact_points: vec![ContactPoint {
                kind: 1,
                value: "ola@example.no".into(),
            }],
            ..Default::default()
        };
        let printed = format!("{member:?}");
        assert!(!printed.contains("Ola"));
        assert!(!printed.contains("ola@example.no"));
    }

    #[test]
    fn debug_output_of_a_notification_request_hides_its_words_and_the_protected_address() {
        let request = SendNotificationRequest {
            idempotency_key: "k-1".into(),
            case_id: "c".into(),
            recipient: Some(Recipient {
                contact_points: vec![ContactPoint {
                    kind: 1,
                    value: "ola@example.no".into(),
                }],
                ..Default::default()
            }),
            kind: "free_text".into(),
            parameters: [("body".to_owned(), "Ola is coming at five".to_owned())].into(),
            protection: Some(CaseProtection {
                secret_address: true,
                protected_values: vec!["Storgata 12B".into()],
            }),
        };
        let printed = format!("{request:?}");
        for secret in ["ola@example.no", "Ola is", "Storgata"] {
            assert!(!printed.contains(secret), "{secret} leaked: {printed}");
        }
        let sent = Notification {
            subject: "Ola".into(),
            body: "Storgata 12B".into(),
            ..Default::default()
        };
        let item = InboxItem {
            body: "Storgata 12B".into(),
            ..Default::default()
        };
        let printed = format!("{sent:?} {item:?}");
        assert!(
            !printed.contains("Ola") && !printed.contains("Storgata"),
            "{printed}"
        );
    }
}
