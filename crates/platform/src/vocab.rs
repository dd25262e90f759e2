//! The contract's words for the domain's shared vocabulary (steps, goals, visit periods, in
//! `landsby.case.v1`), converted both ways for every service that speaks them. The matches are
//! exhaustive, so a new value in the contract or the domain fails to compile until it is handled.

use crate::validate::{Violations, known};
use landsby_domain as d;
use landsby_proto::case as pb;
use landsby_proto::common;

/// The most contact points one person may have.
pub const MAX_CONTACT_POINTS: usize = 10;

/// The goal a contract value names; None for UNSPECIFIED.
pub fn goal_from(p: pb::Goal) -> Option<d::Goal> {
    match p {
        pb::Goal::Unspecified => None,
        pb::Goal::Reunification => Some(d::Goal::Reunification),
        pb::Goal::LongTermPlacement => Some(d::Goal::LongTermPlacement),
    }
}

/// The contract value of a goal.
pub fn goal_to(g: d::Goal) -> pb::Goal {
    match g {
        d::Goal::Reunification => pb::Goal::Reunification,
        d::Goal::LongTermPlacement => pb::Goal::LongTermPlacement,
    }
}

/// The step a contract value names; None for UNSPECIFIED.
pub fn step_from(p: pb::Step) -> Option<d::Step> {
    match p {
        pb::Step::Unspecified => None,
        pb::Step::Safety => Some(d::Step::Safety),
        pb::Step::Involvement => Some(d::Step::Involvement),
        pb::Step::Responsibility => Some(d::Step::Responsibility),
    }
}

/// The contract value of a step.
pub fn step_to(s: d::Step) -> pb::Step {
    match s {
        d::Step::Safety => pb::Step::Safety,
        d::Step::Involvement => pb::Step::Involvement,
        d::Step::Responsibility => pb::Step::Responsibility,
    }
}

/// The period a contract value names; None for UNSPECIFIED.
pub fn period_from(p: pb::VisitPeriod) -> Option<d::VisitPeriod> {
    match p {
        pb::VisitPeriod::Unspecified => None,
        pb::VisitPeriod::Week => Some(d::VisitPeriod::Week),
        pb::VisitPeriod::Month => Some(d::VisitPeriod::Month),
        pb::VisitPeriod::Year => Some(d::VisitPeriod::Year),
    }
}

/// The contract value of a period.
pub fn period_to(p: d::VisitPeriod) -> pb::VisitPeriod {
    match p {
        d::VisitPeriod::Week => pb::VisitPeriod::Week,
        d::VisitPeriod::Month => pb::VisitPeriod::Month,
        d::VisitPeriod::Year => pb::VisitPeriod::Year,
    }
}

/// The contract's form of a board floor.
pub fn floor_to(f: &d::VisitationFloor) -> pb::VisitationFloor {
    pb::VisitationFloor {
        parent_id: f.parent_id.to_string(),
        min_visits: i32::try_from(f.min_visits).unwrap_or(i32::MAX),
        period: period_to(f.period).into(),
        min_duration_minutes: i32::try_from(f.min_duration_minutes).unwrap_or(i32::MAX),
        supervision_required: f.supervision_required,
    }
}

/// A board floor as the case service sends it (already validated there); None if it does not read.
pub fn floor_from(f: &pb::VisitationFloor) -> Option<d::VisitationFloor> {
    Some(d::VisitationFloor {
        parent_id: uuid::Uuid::try_parse(&f.parent_id).ok()?,
        min_visits: u32::try_from(f.min_visits).ok()?,
        period: period_from(f.period())?,
        min_duration_minutes: u32::try_from(f.min_duration_minutes).ok()?,
        supervision_required: f.supervision_required,
    })
}

// ---- the village's words, shared by the case and notification services ------------------

/// A village role from the contract.
pub fn role_from(p: pb::VillageRole) -> Option<d::VillageRole> {
    use d::VillageRole as R;
    match p {
        pb::VillageRole::Unspecified => None,
        pb::VillageRole::Mother => Some(R::Mother),
        pb::VillageRole::Father => Some(R::Father),
        pb::VillageRole::OtherParent => Some(R::OtherParent),
        pb::VillageRole::FosterParent => Some(R::FosterParent),
        pb::VillageRole::Sibling => Some(R::Sibling),
        pb::VillageRole::Grandparent => Some(R::Grandparent),
        pb::VillageRole::OtherFamily => Some(R::OtherFamily),
        pb::VillageRole::School => Some(R::School),
        pb::VillageRole::HealthNurse => Some(R::HealthNurse),
        pb::VillageRole::VisitSupervisor => Some(R::VisitSupervisor),
        pb::VillageRole::SupportPerson => Some(R::SupportPerson),
        pb::VillageRole::Caseworker => Some(R::Caseworker),
        pb::VillageRole::Other => Some(R::Other),
    }
}

/// A village role for the contract.
pub fn role_to(r: d::VillageRole) -> pb::VillageRole {
    use d::VillageRole as R;
    match r {
        R::Mother => pb::VillageRole::Mother,
        R::Father => pb::VillageRole::Father,
        R::OtherParent => pb::VillageRole::OtherParent,
        R::FosterParent => pb::VillageRole::FosterParent,
        R::Sibling => pb::VillageRole::Sibling,
        R::Grandparent => pb::VillageRole::Grandparent,
        R::OtherFamily => pb::VillageRole::OtherFamily,
        R::School => pb::VillageRole::School,
        R::HealthNurse => pb::VillageRole::HealthNurse,
        R::VisitSupervisor => pb::VillageRole::VisitSupervisor,
        R::SupportPerson => pb::VillageRole::SupportPerson,
        R::Caseworker => pb::VillageRole::Caseworker,
        R::Other => pb::VillageRole::Other,
    }
}

pub fn affiliation_from(p: pb::Affiliation) -> Option<d::Affiliation> {
    match p {
        pb::Affiliation::Unspecified => None,
        pb::Affiliation::BirthFamily => Some(d::Affiliation::BirthFamily),
        pb::Affiliation::FosterFamily => Some(d::Affiliation::FosterFamily),
        pb::Affiliation::Professional => Some(d::Affiliation::Professional),
    }
}

pub fn affiliation_to(a: d::Affiliation) -> pb::Affiliation {
    match a {
        d::Affiliation::BirthFamily => pb::Affiliation::BirthFamily,
        d::Affiliation::FosterFamily => pb::Affiliation::FosterFamily,
        d::Affiliation::Professional => pb::Affiliation::Professional,
    }
}

pub fn language_from(p: common::Language) -> Option<d::Language> {
    match p {
        common::Language::Unspecified => None,
        common::Language::Nb => Some(d::Language::Nb),
        common::Language::Nn => Some(d::Language::Nn),
        common::Language::Se => Some(d::Language::Se),
        common::Language::En => Some(d::Language::En),
    }
}

pub fn language_to(l: d::Language) -> common::Language {
    match l {
        d::Language::Nb => common::Language::Nb,
        d::Language::Nn => common::Language::Nn,
        d::Language::Se => common::Language::Se,
        d::Language::En => common::Language::En,
    }
}

pub fn contact_kind_from(p: common::ContactKind) -> Option<d::ContactKind> {
    match p {
        common::ContactKind::Unspecified => None,
        common::ContactKind::Email => Some(d::ContactKind::Email),
        common::ContactKind::Phone => Some(d::ContactKind::Phone),
    }
}

pub fn contact_kind_to(k: d::ContactKind) -> common::ContactKind {
    match k {
        d::ContactKind::Email => common::ContactKind::Email,
        d::ContactKind::Phone => common::ContactKind::Phone,
    }
}

fn contact_point(
    v: &mut Violations,
    field: &str,
    c: &common::ContactPoint,
) -> Option<d::ContactPoint> {
    let kind = v.enumeration(
        &format!("{field}.kind"),
        c.kind,
        known::<common::ContactKind>,
        contact_kind_from,
    )?;
    let value = c.value.trim();
    let ok = match kind {
        d::ContactKind::Email => is_email(value),
        d::ContactKind::Phone => is_phone(value),
    };
    if !ok {
        v.add(
            format!("{field}.value"),
            match kind {
                d::ContactKind::Email => "is not an e-mail address",
                d::ContactKind::Phone => "is not a phone number (8 digits, or + and 8-15 digits)",
            },
        );
        return None;
    }
    Some(d::ContactPoint {
        kind,
        value: value.to_owned(),
    })
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && s.chars()
            .all(|c| c.is_ascii_graphic() || (!c.is_ascii() && !c.is_control()))
        // Characters a mailer would read as list or address syntax.
        && !s.chars().any(|c| matches!(c, ',' | ';' | '<' | '>' | '(' | ')' | '[' | ']' | '\\' | '"' | ':'))
}

fn is_phone(s: &str) -> bool {
    match s.strip_prefix('+') {
        // E.164: a country code never starts with 0.
        Some(rest) => {
            (8..=15).contains(&rest.len())
                && rest.bytes().all(|b| b.is_ascii_digit())
                && !rest.starts_with('0')
        }
        None => s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// Contact points, each checked: an e-mail address, or a phone number (8 digits, or + and 8-15
/// digits); at most [`MAX_CONTACT_POINTS`].
pub fn contact_points(
    v: &mut Violations,
    field: &str,
    points: &[common::ContactPoint],
) -> Option<Vec<d::ContactPoint>> {
    if points.len() > MAX_CONTACT_POINTS {
        v.add(
            field,
            format!("at most {MAX_CONTACT_POINTS} contact points"),
        );
        return None;
    }
    let parsed: Vec<Option<d::ContactPoint>> = points
        .iter()
        .enumerate()
        .map(|(i, c)| contact_point(v, &format!("{field}[{i}]"), c))
        .collect();
    parsed.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_round_trips_through_the_contract() {
        let floor = d::VisitationFloor {
            parent_id: uuid::Uuid::now_v7(),
            min_visits: 2,
            period: d::VisitPeriod::Month,
            min_duration_minutes: d::board::MAX_VISIT_MINUTES,
            supervision_required: true,
        };
        assert_eq!(floor_from(&floor_to(&floor)), Some(floor));
        let unreadable = pb::VisitationFloor {
            parent_id: "x".into(),
            ..Default::default()
        };
        assert_eq!(floor_from(&unreadable), None);
    }

    #[test]
    fn the_village_words_round_trip_through_the_contract() {
        for &l in d::Language::ALL {
            assert_eq!(language_from(language_to(l)), Some(l));
        }
        for &a in d::Affiliation::ALL {
            assert_eq!(affiliation_from(affiliation_to(a)), Some(a));
        }
        for &k in d::ContactKind::ALL {
            assert_eq!(contact_kind_from(contact_kind_to(k)), Some(k));
        }
    }

    #[test]
    fn emails_and_phone_numbers_are_checked() {
        for ok in [
            "kari@example.no",
            "ola.nordmann+x@kommune.no",
            "æøå@døme.no",
        ] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "",
            "kari",
            "@example.no",
            "kari@",
            "kari@no",
            "kari@.no",
            "ka ri@example.no",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
        for ok in ["91234567", "+4791234567"] {
            assert!(is_phone(ok), "{ok}");
        }
        for bad in ["a,b@x.no", "<a>@x.no", "a\"b@x.no"] {
            assert!(!is_email(bad), "{bad}");
        }
        for bad in [
            "9123456",
            "912345678",
            "+47",
            "+47 91234567",
            "abcdefgh",
            "+0471234567",
        ] {
            assert!(!is_phone(bad), "{bad}");
        }
    }
}
