//! Field-mask updates (AIP-134): only the paths listed here can change, each is validated like a
//! create, and the resulting record is checked as a whole inside the store's transaction. A path
//! that is unknown, output-only, or changed only by a decision is refused with a field violation.

use super::convert;
use crate::model::{CaseChange, MemberChange};
use chrono::NaiveDate;
use landsby_platform::validate::Violations;
use landsby_proto::case as pb;
use prost_types::FieldMask;

/// Why step and goal are not in an update mask.
const DECIDED: &str = "changes only through a recorded review decision";

/// The case paths an update may name.
pub const CASE_PATHS: &[&str] = &[
    "child.given_name",
    "child.family_name",
    "child.birth_date",
    "child.national_id",
    "placement.kind",
    "placement.start_date",
    "placement.foster_home.name",
    "placement.foster_home.address",
    "placement.foster_home.address_protected",
    "assigned_caseworker",
    "co_caseworker",
    "team",
];

/// The case paths that say who may open the case: a team lead's to change, not a caseworker's
/// (a caseworker cannot hand a case to someone, or take it to another team).
pub const ASSIGNMENT_PATHS: &[&str] = &["assigned_caseworker", "co_caseworker", "team"];

/// The village member paths an update may name.
pub const MEMBER_PATHS: &[&str] = &[
    "role",
    "affiliation",
    "display_name",
    "contact_points",
    "preferred_language",
    "involved",
    "informed",
    "prepared",
    "has_visitation_rights",
];

/// The change an UpdateCase request asks for, validated.
pub fn case_change(
    v: &mut Violations,
    case: &pb::Case,
    mask: Option<&FieldMask>,
    today: NaiveDate,
) -> Option<CaseChange> {
    let paths = v.mask_paths(mask, CASE_PATHS, &[("step", DECIDED), ("goal", DECIDED)]);
    let child = case.child.clone().unwrap_or_default();
    let placement = case.placement.clone().unwrap_or_default();
    let home = placement.foster_home.clone().unwrap_or_default();

    let mut given_name = None;
    let mut family_name = None;
    let mut birth_date = None;
    let mut national_id = None;
    let mut kind = None;
    let mut start_date = None;
    let mut home_name = None;
    let mut address = None;
    let mut protected = None;
    let mut caseworker = None;
    let mut co_caseworker = None;
    let mut team = None;
    let mut complete = true;
    for path in paths {
        let ok = match path {
            "child.given_name" => {
                given_name = v.text(
                    "case.child.given_name",
                    &child.given_name,
                    convert::MAX_NAME,
                );
                given_name.is_some()
            }
            "child.family_name" => {
                family_name = v.text(
                    "case.child.family_name",
                    &child.family_name,
                    convert::MAX_NAME,
                );
                family_name.is_some()
            }
            "child.birth_date" => {
                birth_date = convert::birth_date(
                    v,
                    "case.child.birth_date",
                    child.birth_date.as_ref(),
                    today,
                );
                birth_date.is_some()
            }
            "child.national_id" => {
                national_id = convert::national_id(v, "case.child.national_id", &child.national_id);
                national_id.is_some()
            }
            "placement.kind" => {
                kind = convert::placement_kind(v, "case.placement.kind", placement.kind);
                kind.is_some()
            }
            "placement.start_date" => {
                start_date = v.date("case.placement.start_date", placement.start_date.as_ref());
                start_date.is_some()
            }
            "placement.foster_home.name" => {
                home_name = v.optional_text(
                    "case.placement.foster_home.name",
                    &home.name,
                    convert::MAX_NAME,
                );
                home_name.is_some()
            }
            "placement.foster_home.address" => {
                address = convert::address(
                    v,
                    "case.placement.foster_home.address",
                    home.address.as_ref(),
                );
                address.is_some()
            }
            "placement.foster_home.address_protected" => {
                protected = Some(home.address_protected);
                true
            }
            "assigned_caseworker" => {
                caseworker =
                    convert::subject(v, "case.assigned_caseworker", &case.assigned_caseworker);
                caseworker.is_some()
            }
            "co_caseworker" => {
                co_caseworker =
                    convert::optional_subject(v, "case.co_caseworker", &case.co_caseworker);
                co_caseworker.is_some()
            }
            "team" => {
                team = convert::team(v, "case.team", &case.team);
                team.is_some()
            }
            _ => false,
        };
        complete &= ok;
    }
    if !complete || !v.is_empty() {
        return None;
    }
    Some(Box::new(move |record| {
        if let Some(x) = given_name {
            record.child.given_name = x;
        }
        if let Some(x) = family_name {
            record.child.family_name = x;
        }
        if let Some(x) = birth_date {
            record.child.birth_date = x;
        }
        if let Some(x) = national_id {
            record.child.national_id = x;
        }
        if let Some(x) = kind {
            record.placement.kind = x;
        }
        if let Some(x) = start_date {
            record.placement.start_date = x;
        }
        if let Some(x) = home_name {
            record.placement.foster_home.name = x;
        }
        if let Some(x) = address {
            record.placement.foster_home.address = x;
        }
        if let Some(x) = protected {
            record.placement.foster_home.address_protected = x;
        }
        if let Some(x) = caseworker {
            record.assigned_caseworker = x;
        }
        if let Some(x) = co_caseworker {
            record.co_caseworker = x;
        }
        if let Some(x) = team {
            record.team = x;
        }
        // The record as a whole: the identity number still agrees with the birth date, and a secret
        // address decided by the board stays protected.
        let mut whole = Violations::new();
        convert::check_id_agrees(&mut whole, "case.child", &record.child);
        whole.finish()?;
        crate::model::ensure_protection_kept(record, today)
    }))
}

/// The change an UpdateVillageMember request asks for, validated.
pub fn member_change(
    v: &mut Violations,
    member: &pb::VillageMember,
    mask: Option<&FieldMask>,
) -> Option<MemberChange> {
    let paths = v.mask_paths(mask, MEMBER_PATHS, &[]);
    let mut role = None;
    let mut affiliation = None;
    let mut display_name = None;
    let mut contact_points = None;
    let mut language = None;
    let mut flags: Vec<(&str, bool)> = Vec::new();
    let mut complete = true;
    for path in paths {
        let ok = match path {
            "role" => {
                role = convert::village_role(v, "member.role", member.role);
                role.is_some()
            }
            "affiliation" => {
                affiliation = convert::affiliation(v, "member.affiliation", member.affiliation);
                affiliation.is_some()
            }
            "display_name" => {
                display_name = v.text(
                    "member.display_name",
                    &member.display_name,
                    convert::MAX_NAME,
                );
                display_name.is_some()
            }
            "contact_points" => {
                contact_points =
                    convert::contact_points(v, "member.contact_points", &member.contact_points);
                contact_points.is_some()
            }
            "preferred_language" => {
                language =
                    convert::language(v, "member.preferred_language", member.preferred_language);
                language.is_some()
            }
            "involved" => {
                flags.push(("involved", member.involved));
                true
            }
            "informed" => {
                flags.push(("informed", member.informed));
                true
            }
            "prepared" => {
                flags.push(("prepared", member.prepared));
                true
            }
            "has_visitation_rights" => {
                flags.push(("has_visitation_rights", member.has_visitation_rights));
                true
            }
            _ => false,
        };
        complete &= ok;
    }
    if !complete || !v.is_empty() {
        return None;
    }
    Some(Box::new(move |_case, record| {
        let f = &mut record.fields;
        if let Some(x) = role {
            f.role = x;
            // A new role brings its side with it unless the same update says otherwise.
            if affiliation.is_none() {
                f.affiliation = x.default_affiliation();
            }
        }
        if let Some(x) = affiliation {
            f.affiliation = x.unwrap_or(f.role.default_affiliation());
        }
        if let Some(x) = display_name {
            f.display_name = x;
        }
        if let Some(x) = contact_points {
            f.contact_points = x;
        }
        if let Some(x) = language {
            f.preferred_language = x;
        }
        for (flag, value) in flags {
            match flag {
                "involved" => f.involved = value,
                "informed" => f.informed = value,
                "prepared" => f.prepared = value,
                _ => f.has_visitation_rights = value,
            }
        }
        Ok(())
    }))
}

/// The follow-up goal paths an update may name.
pub const GOAL_PATHS: &[&str] = &["description", "status"];

/// The change an UpdateFollowUpGoal request asks for, validated.
pub fn goal_change(
    v: &mut Violations,
    goal: &pb::FollowUpGoal,
    mask: Option<&FieldMask>,
) -> Option<crate::model::GoalChange> {
    let paths = v.mask_paths(mask, GOAL_PATHS, &[]);
    let mut description = None;
    let mut status = None;
    let mut complete = true;
    for path in paths {
        let ok = match path {
            "description" => {
                description = v.text("goal.description", &goal.description, 500);
                description.is_some()
            }
            "status" => {
                status = v.enumeration(
                    "goal.status",
                    goal.status,
                    |r| pb::FollowUpGoalStatus::try_from(r).ok(),
                    convert::goal_status_from,
                );
                status.is_some()
            }
            _ => false,
        };
        complete &= ok;
    }
    if !complete || !v.is_empty() {
        return None;
    }
    Some(Box::new(move |g| {
        if let Some(d) = description {
            g.description = d;
        }
        if let Some(s) = status {
            g.status = s;
        }
    }))
}
