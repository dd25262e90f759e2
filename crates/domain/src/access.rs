//! Need to know (*tjenstlig behov*): who may open a case. Roles say what kind of call a person may
//! make; this says which cases. A caseworker works the cases assigned to them (as the responsible
//! caseworker or the co-caseworker); a team lead, the cases of their teams. Anyone else on the
//! agency's staff opens a case only through emergency access (*break-glass*): a stated reason, for a
//! limited time, audited and flagged. The worker (role `service`) acts for the whole agency.
//! Administrators and auditors never open case content.
//!
//! The agency is checked before this (every read and write is scoped to the caller's agency); this
//! decides within it.

use crate::Role;

/// Who a case is assigned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment<'a> {
    /// The responsible caseworker's subject.
    pub caseworker: &'a str,
    /// The co-caseworker's subject, if there is one.
    pub co_caseworker: Option<&'a str>,
    /// The team the case belongs to.
    pub team: &'a str,
}

/// The person asking, as their token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer<'a> {
    /// Their subject.
    pub subject: &'a str,
    /// Their roles.
    pub roles: &'a [Role],
    /// The teams they belong to.
    pub teams: &'a [String],
}

/// Why a person may open a case, or that they may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The worker, for the agency.
    Service,
    /// The responsible caseworker or the co-caseworker.
    Assigned,
    /// A team lead of the case's team.
    TeamLead,
    /// Emergency access granted earlier and not yet expired: allowed, and flagged in the audit log.
    BreakGlass,
    /// No need to know.
    Denied,
}

impl Access {
    /// Whether the case may be opened.
    pub fn allowed(self) -> bool {
        self != Access::Denied
    }

    /// Whether the access is emergency access, to be flagged.
    pub fn is_break_glass(self) -> bool {
        self == Access::BreakGlass
    }
}

/// The roles that work cases, and so may be assigned to one or ask for emergency access to one.
pub const CASE_STAFF: &[Role] = &[Role::Caseworker, Role::TeamLead];

/// Whether `viewer` may open a case assigned as `assignment`, given whether they hold an unexpired
/// emergency grant for it.
pub fn decide(viewer: Viewer<'_>, assignment: Assignment<'_>, grant: bool) -> Access {
    let has = |role| viewer.roles.contains(&role);
    if has(Role::Service) {
        return Access::Service;
    }
    let named = |who: &str| !who.is_empty() && who == viewer.subject;
    if has(Role::Caseworker)
        && (named(assignment.caseworker) || assignment.co_caseworker.is_some_and(named))
    {
        return Access::Assigned;
    }
    if has(Role::TeamLead)
        && !assignment.team.is_empty()
        && viewer.teams.iter().any(|t| t == assignment.team)
    {
        return Access::TeamLead;
    }
    if grant && CASE_STAFF.iter().any(|r| has(*r)) {
        return Access::BreakGlass;
    }
    Access::Denied
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CASE: Assignment<'static> = Assignment {
        caseworker: "cw-1",
        co_caseworker: Some("cw-2"),
        team: "team-1",
    };

    fn viewer<'a>(subject: &'a str, roles: &'a [Role], teams: &'a [String]) -> Viewer<'a> {
        Viewer {
            subject,
            roles,
            teams,
        }
    }

    #[test]
    fn the_assigned_caseworkers_and_the_teams_lead_may_open_the_case() {
        let team = vec!["team-1".to_owned()];
        let none: Vec<String> = vec![];
        let cw = &[Role::Caseworker];
        let lead = &[Role::TeamLead];
        assert_eq!(
            decide(viewer("cw-1", cw, &none), CASE, false),
            Access::Assigned
        );
        assert_eq!(
            decide(viewer("cw-2", cw, &none), CASE, false),
            Access::Assigned
        );
        assert_eq!(
            decide(viewer("cw-3", cw, &team), CASE, false),
            Access::Denied
        );
        assert_eq!(
            decide(viewer("tl", lead, &team), CASE, false),
            Access::TeamLead
        );
        assert_eq!(
            decide(viewer("tl", lead, &none), CASE, false),
            Access::Denied
        );
        // Named as caseworker but holding only the team lead role: the role decides.
        assert_eq!(
            decide(viewer("cw-1", lead, &none), CASE, false),
            Access::Denied
        );
    }

    #[test]
    fn emergency_access_is_for_case_staff_only() {
        let none: Vec<String> = vec![];
        assert_eq!(
            decide(viewer("cw-9", &[Role::Caseworker], &none), CASE, true),
            Access::BreakGlass
        );
        assert_eq!(
            decide(viewer("tl-9", &[Role::TeamLead], &none), CASE, true),
            Access::BreakGlass
        );
        for role in [Role::AgencyAdmin, Role::Auditor] {
            assert_eq!(
                decide(viewer("x", &[role], &none), CASE, true),
                Access::Denied
            );
        }
    }

    #[test]
    fn an_empty_assignment_names_nobody() {
        let empty = Assignment {
            caseworker: "",
            co_caseworker: Some(""),
            team: "",
        };
        let teams = vec![String::new()];
        let all = &[Role::Caseworker, Role::TeamLead];
        assert_eq!(
            decide(viewer("", all, &teams), empty, false),
            Access::Denied
        );
    }

    fn role() -> impl Strategy<Value = Role> {
        proptest::sample::select(Role::ALL.to_vec())
    }

    proptest! {
        /// Without the service role, a person opens a case only if they are named on it (as a
        /// caseworker holding the caseworker role, or through a team they lead), or hold a grant and
        /// work cases. A grant never opens a case to an administrator or an auditor.
        #[test]
        fn need_to_know_holds(
            subject in "[a-c]{0,2}",
            caseworker in "[a-c]{0,2}",
            co in proptest::option::of("[a-c]{0,2}"),
            team in "[x-z]{0,1}",
            teams in proptest::collection::vec("[x-z]{0,1}", 0..3),
            roles in proptest::collection::vec(role(), 0..3),
            grant: bool,
        ) {
            let assignment = Assignment { caseworker: &caseworker, co_caseworker: co.as_deref(), team: &team };
            let access = decide(viewer(&subject, &roles, &teams), assignment, grant);
            let has = |r| roles.contains(&r);
            if has(Role::Service) {
                prop_assert_eq!(access, Access::Service);
            } else {
                let named = !subject.is_empty()
                    && (subject == caseworker || co.as_deref() == Some(subject.as_str()));
                let leads = !team.is_empty() && teams.contains(&team);
                let expected = (has(Role::Caseworker) && named)
                    || (has(Role::TeamLead) && leads)
                    || (grant && (has(Role::Caseworker) || has(Role::TeamLead)));
                prop_assert_eq!(access.allowed(), expected);
                prop_assert_eq!(
                    access.is_break_glass(),
                    expected && !(has(Role::Caseworker) && named) && !(has(Role::TeamLead) && leads)
                );
            }
        }
    }
}
