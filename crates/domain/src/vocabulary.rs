//! The words of the domain, as closed sets. Each has a stable text code, used in storage and events,
//! that never changes once released (a new value gets a new code).

/// Declares a closed set with stable text codes: `as_str`, `parse`, `ALL` and `Display`, stored by
/// serde as its code. Services declare their own sets with it too; the crate that calls it needs
/// `serde` as a dependency.
#[macro_export]
macro_rules! coded_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize,
            ::serde::Deserialize,
        )]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable text code.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            /// The value for a text code, if there is one.
            pub fn parse(code: &str) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

coded_enum! {
    /// The steps of the staircase (Utviklingstrappa).
    Step {
        /// Step 1: safety (trygghet). The agency holds the frame.
        Safety = "safety",
        /// Step 2: involvement (involvering). Parents practise parenting tasks; foster parents are
        /// involved before, during and after visits.
        Involvement = "involvement",
        /// Step 3: responsibility (ansvarliggjøring). Only with a reunification goal.
        Responsibility = "responsibility",
    }
}

impl VisitPeriod {
    /// How many of these periods make a year, for comparing frequencies.
    pub fn per_year(self) -> u32 {
        match self {
            VisitPeriod::Week => 52,
            VisitPeriod::Month => 12,
            VisitPeriod::Year => 1,
        }
    }
}

impl Step {
    /// The step number, 1-3.
    pub fn number(self) -> u8 {
        match self {
            Step::Safety => 1,
            Step::Involvement => 2,
            Step::Responsibility => 3,
        }
    }

    /// The step with this number.
    pub fn from_number(n: i64) -> Option<Self> {
        match n {
            1 => Some(Step::Safety),
            2 => Some(Step::Involvement),
            3 => Some(Step::Responsibility),
            _ => None,
        }
    }

    /// Whether a case can be in this step with this goal: step 3 needs a reunification goal.
    pub fn allowed_with(self, goal: Goal) -> bool {
        self != Step::Responsibility || goal == Goal::Reunification
    }
}

coded_enum! {
    /// The goal of a placement.
    Goal {
        /// The child is to move home (tilbakeføring).
        Reunification = "reunification",
        /// Long-term placement; visits maintain and develop the relation.
        LongTermPlacement = "long_term_placement",
    }
}

coded_enum! {
    /// Whether a case is open.
    CaseStatus {
        /// Open.
        Open = "open",
        /// Closed: readable, not changeable.
        Closed = "closed",
    }
}

coded_enum! {
    /// Why a case was closed.
    CloseReason {
        /// The child moved home.
        Reunified = "reunified",
        /// The child came of age.
        AgedOut = "aged_out",
        /// The case moved to another municipality.
        Transferred = "transferred",
        /// The placement ended for another reason.
        PlacementEnded = "placement_ended",
        /// Another reason.
        Other = "other",
    }
}

coded_enum! {
    /// The legal basis of a placement.
    PlacementKind {
        /// Care order (omsorgsovertakelse).
        CareOrder = "care_order",
        /// Voluntary placement.
        Voluntary = "voluntary",
        /// Emergency placement (akuttvedtak).
        Emergency = "emergency",
    }
}

coded_enum! {
    /// A village member's role around the child.
    VillageRole {
        /// Mother.
        Mother = "mother",
        /// Father.
        Father = "father",
        /// Another parent.
        OtherParent = "other_parent",
        /// Foster parent.
        FosterParent = "foster_parent",
        /// Sibling.
        Sibling = "sibling",
        /// Grandparent.
        Grandparent = "grandparent",
        /// Other family.
        OtherFamily = "other_family",
        /// School or kindergarten contact.
        School = "school",
        /// Health nurse.
        HealthNurse = "health_nurse",
        /// Visit supervisor.
        VisitSupervisor = "visit_supervisor",
        /// Support person.
        SupportPerson = "support_person",
        /// Caseworker.
        Caseworker = "caseworker",
        /// Anyone else.
        Other = "other",
    }
}

impl VillageRole {
    /// Mother, father or another parent.
    pub fn is_parent(self) -> bool {
        matches!(
            self,
            VillageRole::Mother | VillageRole::Father | VillageRole::OtherParent
        )
    }

    /// The side a member with this role belongs to when nothing else is said. Roles that could be on
    /// either side (support person, other) count as birth family, so that a secret address is withheld
    /// from them unless a caseworker says otherwise.
    pub fn default_affiliation(self) -> Affiliation {
        match self {
            VillageRole::FosterParent => Affiliation::FosterFamily,
            VillageRole::School
            | VillageRole::HealthNurse
            | VillageRole::VisitSupervisor
            | VillageRole::Caseworker => Affiliation::Professional,
            VillageRole::Mother
            | VillageRole::Father
            | VillageRole::OtherParent
            | VillageRole::Sibling
            | VillageRole::Grandparent
            | VillageRole::OtherFamily
            | VillageRole::SupportPerson
            | VillageRole::Other => Affiliation::BirthFamily,
        }
    }
}

coded_enum! {
    /// Which side of the child's life a village member belongs to.
    Affiliation {
        /// Parents, their family and their support persons.
        BirthFamily = "birth_family",
        /// The foster family.
        FosterFamily = "foster_family",
        /// The agency, school, health services, supervisors.
        Professional = "professional",
    }
}

coded_enum! {
    /// The language a person wants to be addressed in.
    Language {
        /// Norwegian Bokmål (the fallback).
        Nb = "nb",
        /// Norwegian Nynorsk.
        Nn = "nn",
        /// Northern Sámi.
        Se = "se",
        /// English.
        En = "en",
    }
}

/// One way to reach a person: an e-mail address or a phone number, checked where it enters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContactPoint {
    /// E-mail or phone.
    pub kind: ContactKind,
    /// The address or number.
    pub value: String,
}

coded_enum! {
    /// How a person can be reached.
    ContactKind {
        /// E-mail.
        Email = "email",
        /// Mobile phone.
        Phone = "phone",
    }
}

coded_enum! {
    /// The period visitation is counted over.
    VisitPeriod {
        /// A week.
        Week = "week",
        /// A month.
        Month = "month",
        /// A year.
        Year = "year",
    }
}

coded_enum! {
    /// How a visit is supervised, strictest first.
    Supervision {
        /// A supervisor from the agency is present (tilsyn).
        AgencySupervised = "agency_supervised",
        /// The foster parents take part and support; no agency supervisor.
        SupportedByFosterParents = "supported_by_foster_parents",
        /// Child and parents on their own.
        Unsupervised = "unsupervised",
    }
}

impl Supervision {
    /// 0 for the strictest; higher is less strict.
    pub fn leniency(self) -> u8 {
        match self {
            Supervision::AgencySupervised => 0,
            Supervision::SupportedByFosterParents => 1,
            Supervision::Unsupervised => 2,
        }
    }
}

coded_enum! {
    /// Where a visit can take place.
    Place {
        /// The agency's own premises (samværsrom).
        AgencyPremises = "agency_premises",
        /// Out in the community: a park, a café, a leisure activity.
        Community = "community",
        /// The foster home. Never with a parent when the address is secret.
        FosterHome = "foster_home",
        /// The parents' home.
        ParentsHome = "parents_home",
    }
}

coded_enum! {
    /// What a caller may do, as the `roles` claim of a token says it.
    Role {
        /// A caseworker: works the cases assigned to them.
        Caseworker = "caseworker",
        /// A team lead: leads caseworkers and receives escalations.
        TeamLead = "team_lead",
        /// An agency administrator: configuration and staff, not case content.
        AgencyAdmin = "agency_admin",
        /// An auditor: reads the audit log.
        Auditor = "auditor",
        /// Another landsby process (the worker): exactly the calls the worker makes.
        Service = "service",
        /// An agency's portal for parents and foster parents: a recipient's inbox and preferences.
        Portal = "portal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_for_every_value() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(
            all: &[T],
            code: fn(T) -> &'static str,
            parse: fn(&str) -> Option<T>,
        ) {
            let mut seen = std::collections::HashSet::new();
            for &v in all {
                assert!(seen.insert(code(v)), "duplicate code {}", code(v));
                assert_eq!(parse(code(v)), Some(v));
            }
            assert_eq!(parse("no_such_code"), None);
        }
        check(Step::ALL, Step::as_str, Step::parse);
        check(Goal::ALL, Goal::as_str, Goal::parse);
        check(CaseStatus::ALL, CaseStatus::as_str, CaseStatus::parse);
        check(CloseReason::ALL, CloseReason::as_str, CloseReason::parse);
        check(
            PlacementKind::ALL,
            PlacementKind::as_str,
            PlacementKind::parse,
        );
        check(VillageRole::ALL, VillageRole::as_str, VillageRole::parse);
        check(Affiliation::ALL, Affiliation::as_str, Affiliation::parse);
        check(Language::ALL, Language::as_str, Language::parse);
        check(ContactKind::ALL, ContactKind::as_str, ContactKind::parse);
        check(VisitPeriod::ALL, VisitPeriod::as_str, VisitPeriod::parse);
        check(Role::ALL, Role::as_str, Role::parse);
        check(Supervision::ALL, Supervision::as_str, Supervision::parse);
        check(Place::ALL, Place::as_str, Place::parse);
    }

    #[test]
    fn step_three_needs_a_reunification_goal() {
        assert!(Step::Responsibility.allowed_with(Goal::Reunification));
        assert!(!Step::Responsibility.allowed_with(Goal::LongTermPlacement));
        assert!(Step::Involvement.allowed_with(Goal::LongTermPlacement));
        assert!(Step::Safety.allowed_with(Goal::LongTermPlacement));
    }

    #[test]
    fn step_numbers_round_trip() {
        for &s in Step::ALL {
            assert_eq!(Step::from_number(i64::from(s.number())), Some(s));
        }
        assert_eq!(Step::from_number(0), None);
        assert_eq!(Step::from_number(4), None);
    }

    #[test]
    fn foster_parents_are_foster_family_and_unclear_roles_count_as_birth_family() {
        assert_eq!(
            VillageRole::FosterParent.default_affiliation(),
            Affiliation::FosterFamily
        );
        assert_eq!(
            VillageRole::SupportPerson.default_affiliation(),
            Affiliation::BirthFamily
        );
        assert_eq!(
            VillageRole::Other.default_affiliation(),
            Affiliation::BirthFamily
        );
        assert_eq!(
            VillageRole::VisitSupervisor.default_affiliation(),
            Affiliation::Professional
        );
    }
}
