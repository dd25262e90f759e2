//! Conversions at the edge: contract messages to validated records (every problem becomes a field
//! violation) and records back to messages. Enum mappings are exhaustive matches, so a new value in
//! the contract or the domain fails to compile until it is handled here.

use crate::model::plans::ComputedFrom;
use crate::model::{
    Adjustment, Cancellation, CancelledBy, Frame, NoShow, Participant, ParticipantRole, PlanRecord,
    Report, ScopeSource, ScopeVersionRecord, VisitRecord, VisitStatus,
};
use chrono::{NaiveDateTime, NaiveTime, Timelike};
use landsby_domain as d;
use landsby_domain::scope::{Explained, Frequency, Reason, Scope};
use landsby_platform::validate::{Violations, date_to_proto, etag, known, timestamp_to_proto};
use landsby_platform::vocab::{goal_from, goal_to, period_from, period_to, step_from, step_to};
use landsby_proto::case as cpb;
use landsby_proto::common;
use landsby_proto::visitation as pb;
use std::collections::HashSet;

/// Most visits in a period, overnights included.
const MAX_COUNT: i32 = 400;
/// Shortest and longest visit, in minutes (the longest: a week, as for the board's floors).
pub const DURATION: std::ops::RangeInclusive<u32> = 15..=d::board::MAX_VISIT_MINUTES;
/// Most entries in a list of texts (activities, parenting tasks), and the longest entry.
const MAX_TEXTS: usize = 20;
const MAX_TEXT: usize = 200;
/// Most participants in a visit.
const MAX_PARTICIPANTS: usize = 20;
/// Longest free texts.
pub const MAX_REASON: usize = 1000;
const MAX_LONG_TEXT: usize = 4000;
/// The scope fields, in the contract's order: each value has an explanation by this name.
pub const SCOPE_FIELDS: [&str; 8] = [
    "frequency",
    "duration_minutes",
    "supervision",
    "places",
    "overnights",
    "activities",
    "parenting_tasks",
    "foster_parents_role",
];

// ---- enums -------------------------------------------------------------------------------------

pub fn place_from(p: pb::Place) -> Option<d::Place> {
    match p {
        pb::Place::Unspecified => None,
        pb::Place::AgencyPremises => Some(d::Place::AgencyPremises),
        pb::Place::Community => Some(d::Place::Community),
        pb::Place::FosterHome => Some(d::Place::FosterHome),
        pb::Place::ParentsHome => Some(d::Place::ParentsHome),
    }
}

pub fn place_to(p: d::Place) -> pb::Place {
    match p {
        d::Place::AgencyPremises => pb::Place::AgencyPremises,
        d::Place::Community => pb::Place::Community,
        d::Place::FosterHome => pb::Place::FosterHome,
        d::Place::ParentsHome => pb::Place::ParentsHome,
    }
}

pub fn supervision_from(p: pb::Supervision) -> Option<d::Supervision> {
    match p {
        pb::Supervision::Unspecified => None,
        pb::Supervision::AgencySupervised => Some(d::Supervision::AgencySupervised),
        pb::Supervision::SupportedByFosterParents => Some(d::Supervision::SupportedByFosterParents),
        pb::Supervision::Unsupervised => Some(d::Supervision::Unsupervised),
    }
}

pub fn supervision_to(s: d::Supervision) -> pb::Supervision {
    match s {
        d::Supervision::AgencySupervised => pb::Supervision::AgencySupervised,
        d::Supervision::SupportedByFosterParents => pb::Supervision::SupportedByFosterParents,
        d::Supervision::Unsupervised => pb::Supervision::Unsupervised,
    }
}

pub fn status_from(p: pb::VisitStatus) -> Option<VisitStatus> {
    match p {
        pb::VisitStatus::Unspecified => None,
        pb::VisitStatus::Scheduled => Some(VisitStatus::Scheduled),
        pb::VisitStatus::Confirmed => Some(VisitStatus::Confirmed),
        pb::VisitStatus::Completed => Some(VisitStatus::Completed),
        pb::VisitStatus::Cancelled => Some(VisitStatus::Cancelled),
        pb::VisitStatus::NoShow => Some(VisitStatus::NoShow),
    }
}

pub fn status_to(s: VisitStatus) -> pb::VisitStatus {
    match s {
        VisitStatus::Scheduled => pb::VisitStatus::Scheduled,
        VisitStatus::Confirmed => pb::VisitStatus::Confirmed,
        VisitStatus::Completed => pb::VisitStatus::Completed,
        VisitStatus::Cancelled => pb::VisitStatus::Cancelled,
        VisitStatus::NoShow => pb::VisitStatus::NoShow,
    }
}

fn role_from(p: pb::ParticipantRole) -> Option<ParticipantRole> {
    match p {
        pb::ParticipantRole::Unspecified => None,
        pb::ParticipantRole::Parent => Some(ParticipantRole::Parent),
        pb::ParticipantRole::FosterParent => Some(ParticipantRole::FosterParent),
        pb::ParticipantRole::Family => Some(ParticipantRole::Family),
        pb::ParticipantRole::SupportPerson => Some(ParticipantRole::SupportPerson),
        pb::ParticipantRole::Other => Some(ParticipantRole::Other),
    }
}

fn role_to(r: ParticipantRole) -> pb::ParticipantRole {
    match r {
        ParticipantRole::Parent => pb::ParticipantRole::Parent,
        ParticipantRole::FosterParent => pb::ParticipantRole::FosterParent,
        ParticipantRole::Family => pb::ParticipantRole::Family,
        ParticipantRole::SupportPerson => pb::ParticipantRole::SupportPerson,
        ParticipantRole::Other => pb::ParticipantRole::Other,
    }
}

pub fn cancelled_by_from(p: pb::CancelledBy) -> Option<CancelledBy> {
    match p {
        pb::CancelledBy::Unspecified => None,
        pb::CancelledBy::Parent => Some(CancelledBy::Parent),
        pb::CancelledBy::Agency => Some(CancelledBy::Agency),
        pb::CancelledBy::FosterParents => Some(CancelledBy::FosterParents),
        pb::CancelledBy::ChildIllness => Some(CancelledBy::ChildIllness),
        pb::CancelledBy::Other => Some(CancelledBy::Other),
    }
}

pub fn cancelled_by_to(c: CancelledBy) -> pb::CancelledBy {
    match c {
        CancelledBy::Parent => pb::CancelledBy::Parent,
        CancelledBy::Agency => pb::CancelledBy::Agency,
        CancelledBy::FosterParents => pb::CancelledBy::FosterParents,
        CancelledBy::ChildIllness => pb::CancelledBy::ChildIllness,
        CancelledBy::Other => pb::CancelledBy::Other,
    }
}

pub fn weekday_from(p: common::Weekday) -> Option<chrono::Weekday> {
    match p {
        common::Weekday::Unspecified => None,
        common::Weekday::Monday => Some(chrono::Weekday::Mon),
        common::Weekday::Tuesday => Some(chrono::Weekday::Tue),
        common::Weekday::Wednesday => Some(chrono::Weekday::Wed),
        common::Weekday::Thursday => Some(chrono::Weekday::Thu),
        common::Weekday::Friday => Some(chrono::Weekday::Fri),
        common::Weekday::Saturday => Some(chrono::Weekday::Sat),
        common::Weekday::Sunday => Some(chrono::Weekday::Sun),
    }
}

fn source_to(s: ScopeSource) -> pb::ScopeSource {
    match s {
        ScopeSource::Computed => pb::ScopeSource::Computed,
        ScopeSource::Adjusted => pb::ScopeSource::Adjusted,
    }
}

// ---- values ------------------------------------------------------------------------------------

pub fn frequency(v: &mut Violations, field: &str, f: Option<&pb::Frequency>) -> Option<Frequency> {
    let f = v.required(field, f)?;
    let count = if (0..=MAX_COUNT).contains(&f.count) {
        u32::try_from(f.count).ok()
    } else {
        v.add(format!("{field}.count"), format!("must be 0-{MAX_COUNT}"));
        None
    };
    let period = v.enumeration(
        &format!("{field}.period"),
        f.period,
        known::<cpb::VisitPeriod>,
        period_from,
    );
    Some(Frequency {
        count: count?,
        period: period?,
    })
}

pub fn duration(v: &mut Violations, field: &str, minutes: i32) -> Option<u32> {
    match u32::try_from(minutes) {
        Ok(m) if DURATION.contains(&m) => Some(m),
        _ => {
            v.add(
                field,
                format!("must be {}-{} minutes", DURATION.start(), DURATION.end()),
            );
            None
        }
    }
}

pub fn supervision(v: &mut Violations, field: &str, raw: i32) -> Option<d::Supervision> {
    v.enumeration(field, raw, known::<pb::Supervision>, supervision_from)
}

pub fn places(v: &mut Violations, field: &str, raw: &[i32]) -> Option<Vec<d::Place>> {
    if raw.is_empty() {
        v.add(field, "must name at least one place");
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, p) in raw.iter().enumerate() {
        match v.enumeration(&format!("{field}[{i}]"), *p, known::<pb::Place>, place_from) {
            Some(place) if !out.contains(&place) => out.push(place),
            Some(_) => {
                v.add(format!("{field}[{i}]"), "is named twice");
                ok = false;
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

pub fn texts(v: &mut Violations, field: &str, raw: &[String]) -> Option<Vec<String>> {
    if raw.len() > MAX_TEXTS {
        v.add(field, format!("must have at most {MAX_TEXTS} entries"));
        return None;
    }
    let out: Vec<Option<String>> = raw
        .iter()
        .enumerate()
        .map(|(i, t)| v.text(&format!("{field}[{i}]"), t, MAX_TEXT))
        .collect();
    out.into_iter().collect()
}

fn reasons(v: &mut Violations, field: &str, raw: &[pb::Reason]) -> Option<Vec<Reason>> {
    if raw.is_empty() || raw.len() > 20 {
        v.add(field, "must give 1-20 reasons");
        return None;
    }
    let out: Vec<Option<Reason>> = raw
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let rule = v.text(&format!("{field}[{i}].rule"), &r.rule, 100);
            let text = v.text(&format!("{field}[{i}].text"), &r.text, 500);
            Some(Reason {
                rule: rule?,
                text: text?,
            })
        })
        .collect();
    out.into_iter().collect()
}

/// A computed scope with an explanation for every value.
pub fn scope_from(v: &mut Violations, field: &str, s: Option<&pb::Scope>) -> Option<Scope> {
    let s = v.required(field, s)?;
    let frequency = frequency(v, &format!("{field}.frequency"), s.frequency.as_ref());
    let duration = duration(v, &format!("{field}.duration_minutes"), s.duration_minutes);
    let supervision = supervision(v, &format!("{field}.supervision"), s.supervision);
    let places = places(v, &format!("{field}.places"), &s.places);
    let overnights = self::frequency(v, &format!("{field}.overnights"), s.overnights.as_ref());
    let activities = texts(v, &format!("{field}.activities"), &s.activities);
    let tasks = texts(v, &format!("{field}.parenting_tasks"), &s.parenting_tasks);
    let role = v.optional_text(
        &format!("{field}.foster_parents_role"),
        &s.foster_parents_role,
        500,
    );
    let policy_version = v.text(&format!("{field}.policy_version"), &s.policy_version, 50);
    let mut because: Vec<Option<Vec<Reason>>> = vec![None; SCOPE_FIELDS.len()];
    let mut ok = true;
    for (i, e) in s.explanations.iter().enumerate() {
        let at = format!("{field}.explanations[{i}]");
        match SCOPE_FIELDS.iter().position(|f| *f == e.field) {
            Some(k) if because[k].is_none() => {
                because[k] = reasons(v, &format!("{at}.reasons"), &e.reasons);
                ok &= because[k].is_some();
            }
            Some(_) => {
                v.add(format!("{at}.field"), "explains a value twice");
                ok = false;
            }
            None => {
                v.add(format!("{at}.field"), "is not a scope value");
                ok = false;
            }
        }
    }
    if ok {
        let missing: Vec<&str> = SCOPE_FIELDS
            .iter()
            .zip(&because)
            .filter(|(_, b)| b.is_none())
            .map(|(f, _)| *f)
            .collect();
        if !missing.is_empty() {
            v.add(
                format!("{field}.explanations"),
                format!(
                    "every value needs its explanation; missing: {}",
                    missing.join(", ")
                ),
            );
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    let mut because = because.into_iter().map(Option::unwrap_or_default);
    let mut next = || because.next().unwrap_or_default();
    Some(Scope {
        frequency: Explained {
            value: frequency?,
            because: next(),
        },
        duration_minutes: Explained {
            value: duration?,
            because: next(),
        },
        supervision: Explained {
            value: supervision?,
            because: next(),
        },
        places: Explained {
            value: places?,
            because: next(),
        },
        overnights: Explained {
            value: overnights?,
            because: next(),
        },
        activities: Explained {
            value: activities?,
            because: next(),
        },
        parenting_tasks: Explained {
            value: tasks?,
            because: next(),
        },
        foster_parents_role: Explained {
            value: role?,
            because: next(),
        },
        policy_version: policy_version?,
    })
}

pub fn computed_from(
    v: &mut Violations,
    field: &str,
    c: Option<&pb::ComputedFrom>,
) -> Option<ComputedFrom> {
    let c = v.required(field, c)?;
    let case_version = if c.case_version >= 1 {
        Some(c.case_version)
    } else {
        v.add(format!("{field}.case_version"), "must be at least 1");
        None
    };
    let policy_version = v.text(&format!("{field}.policy_version"), &c.policy_version, 50);
    let step = v.enumeration(
        &format!("{field}.step"),
        c.step,
        known::<cpb::Step>,
        step_from,
    );
    let goal = v.enumeration(
        &format!("{field}.goal"),
        c.goal,
        known::<cpb::Goal>,
        goal_from,
    );
    let step = match (step, goal) {
        (Some(s), Some(g)) if !s.allowed_with(g) => {
            v.add(
                format!("{field}.step"),
                "step 3 only with a reunification goal",
            );
            None
        }
        _ => step,
    };
    let computed_on = v.date(&format!("{field}.computed_on"), c.computed_on.as_ref());
    Some(ComputedFrom {
        case_version: case_version?,
        policy_version: policy_version?,
        step: step?,
        goal: goal?,
        computed_on: Some(computed_on?),
    })
}

pub fn time_of_day(v: &mut Violations, field: &str, t: &common::TimeOfDay) -> Option<NaiveTime> {
    let time = u32::try_from(t.hours)
        .ok()
        .zip(u32::try_from(t.minutes).ok())
        .and_then(|(h, m)| NaiveTime::from_hms_opt(h, m, 0));
    if time.is_none() {
        v.add(field, "must be a time of day: hours 0-23, minutes 0-59");
    }
    time
}

pub fn local_date_time(
    v: &mut Violations,
    field: &str,
    l: Option<&common::LocalDateTime>,
) -> Option<NaiveDateTime> {
    let l = v.required(field, l)?;
    let date = v.date(&format!("{field}.date"), l.date.as_ref());
    let time = v
        .required(&format!("{field}.time"), l.time.as_ref())
        .and_then(|t| time_of_day(v, &format!("{field}.time"), t));
    Some(date?.and_time(time?))
}

pub fn local_to(l: NaiveDateTime) -> common::LocalDateTime {
    common::LocalDateTime {
        date: Some(date_to_proto(l.date())),
        time: Some(common::TimeOfDay {
            hours: i32::try_from(l.hour()).unwrap_or(0),
            minutes: i32::try_from(l.minute()).unwrap_or(0),
        }),
    }
}

pub fn frame_from(v: &mut Violations, field: &str, f: &pb::Frame) -> Option<Frame> {
    let place = v.optional_enumeration(
        &format!("{field}.place"),
        f.place,
        known::<pb::Place>,
        place_from,
    );
    let description = v.optional_text(
        &format!("{field}.place_description"),
        &f.place_description,
        MAX_TEXT,
    );
    let activity = v.optional_text(&format!("{field}.activity"), &f.activity, 500);
    let supervisor = v.optional_text(&format!("{field}.supervisor"), &f.supervisor, 200);
    let participants = if f.participants.len() > MAX_PARTICIPANTS {
        v.add(
            format!("{field}.participants"),
            format!("must have at most {MAX_PARTICIPANTS} participants"),
        );
        None
    } else {
        let mut seen = HashSet::new();
        let out: Vec<Option<Participant>> = f
            .participants
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let at = format!("{field}.participants[{i}]");
                let member = v.uuid(&format!("{at}.member_id"), &p.member_id);
                if let Some(m) = member
                    && !seen.insert(m)
                {
                    v.add(format!("{at}.member_id"), "takes part twice");
                }
                let role = v.enumeration(
                    &format!("{at}.role"),
                    p.role,
                    known::<pb::ParticipantRole>,
                    role_from,
                );
                let task = v.optional_text(&format!("{at}.task"), &p.task, 300);
                Some(Participant {
                    member_id: member?,
                    role: role?,
                    task: task?,
                })
            })
            .collect();
        out.into_iter().collect()
    };
    Some(Frame {
        place: place?,
        place_description: description?,
        participants: participants?,
        activity: activity?,
        supervisor: supervisor.map(|s| (!s.is_empty()).then_some(s))?,
    })
}

pub fn report_from(
    v: &mut Violations,
    field: &str,
    r: Option<&pb::VisitReport>,
    by: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Option<Report> {
    let r = v.required(field, r)?;
    let how = v.text(
        &format!("{field}.how_it_went"),
        &r.how_it_went,
        MAX_LONG_TEXT,
    );
    let reactions = v.optional_text(
        &format!("{field}.child_reactions"),
        &r.child_reactions,
        MAX_LONG_TEXT,
    );
    let tasks = texts(
        v,
        &format!("{field}.parenting_tasks_practised"),
        &r.parenting_tasks_practised,
    );
    let concern_text = if r.concern {
        v.text(
            &format!("{field}.concern_text"),
            &r.concern_text,
            MAX_LONG_TEXT,
        )
    } else if r.concern_text.trim().is_empty() {
        Some(String::new())
    } else {
        v.add(
            format!("{field}.concern_text"),
            "is given only with a concern",
        );
        None
    };
    let foster = r.foster_parents.unwrap_or_default();
    Some(Report {
        how_it_went: how?,
        child_reactions: reactions?,
        parenting_tasks_practised: tasks?,
        foster_parents_before: foster.before,
        foster_parents_during: foster.during,
        foster_parents_after: foster.after,
        concern: r.concern,
        concern_text: concern_text?,
        reported_by: by.to_owned(),
        reported_at: at,
    })
}

pub fn cancellation_from(
    v: &mut Violations,
    field: &str,
    c: Option<&pb::Cancellation>,
    by: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Option<Cancellation> {
    let c = v.required(field, c)?;
    let who = v.enumeration(
        &format!("{field}.cancelled_by"),
        c.cancelled_by,
        known::<pb::CancelledBy>,
        cancelled_by_from,
    );
    let reason = v.text(&format!("{field}.reason"), &c.reason, MAX_REASON);
    Some(Cancellation {
        cancelled_by: who?,
        reason: reason?,
        recorded_by: by.to_owned(),
        recorded_at: at,
    })
}

// ---- records to messages ----------------------------------------------------------------------

fn frequency_to(f: Frequency) -> pb::Frequency {
    pb::Frequency {
        count: i32::try_from(f.count).unwrap_or(i32::MAX),
        period: period_to(f.period).into(),
    }
}

fn explanation<T>(field: &str, e: &Explained<T>) -> pb::Explanation {
    pb::Explanation {
        field: field.to_owned(),
        reasons: e
            .because
            .iter()
            .map(|r| pb::Reason {
                rule: r.rule.clone(),
                text: r.text.clone(),
            })
            .collect(),
    }
}

pub fn scope_to(s: &Scope) -> pb::Scope {
    pb::Scope {
        frequency: Some(frequency_to(s.frequency.value)),
        duration_minutes: i32::try_from(s.duration_minutes.value).unwrap_or(i32::MAX),
        supervision: supervision_to(s.supervision.value).into(),
        places: s.places.value.iter().map(|p| place_to(*p).into()).collect(),
        overnights: Some(frequency_to(s.overnights.value)),
        activities: s.activities.value.clone(),
        parenting_tasks: s.parenting_tasks.value.clone(),
        foster_parents_role: s.foster_parents_role.value.clone(),
        explanations: vec![
            explanation(SCOPE_FIELDS[0], &s.frequency),
            explanation(SCOPE_FIELDS[1], &s.duration_minutes),
            explanation(SCOPE_FIELDS[2], &s.supervision),
            explanation(SCOPE_FIELDS[3], &s.places),
            explanation(SCOPE_FIELDS[4], &s.overnights),
            explanation(SCOPE_FIELDS[5], &s.activities),
            explanation(SCOPE_FIELDS[6], &s.parenting_tasks),
            explanation(SCOPE_FIELDS[7], &s.foster_parents_role),
        ],
        policy_version: s.policy_version.clone(),
    }
}

fn computed_from_to(c: &ComputedFrom) -> pb::ComputedFrom {
    pb::ComputedFrom {
        case_version: c.case_version,
        policy_version: c.policy_version.clone(),
        step: step_to(c.step).into(),
        goal: goal_to(c.goal).into(),
        computed_on: c.computed_on.map(date_to_proto),
    }
}

fn adjustment_to(a: &Adjustment) -> pb::Adjustment {
    pb::Adjustment {
        field: a.manual.field().to_owned(),
        rationale: a.rationale.clone(),
        adjusted_by: a.adjusted_by.clone(),
        adjust_time: Some(timestamp_to_proto(a.adjusted_at)),
    }
}

pub fn plan_to(p: &PlanRecord) -> pb::VisitationPlan {
    pb::VisitationPlan {
        id: p.id.to_string(),
        case_id: p.case_id.to_string(),
        parent_id: p.parent_id.to_string(),
        scope: Some(scope_to(&p.scope)),
        scope_version: p.scope_version,
        computed_from: Some(computed_from_to(&p.computed_from)),
        adjustments: p.adjustments.iter().map(adjustment_to).collect(),
        floor: p.floor.as_ref().map(landsby_platform::vocab::floor_to),
        secret_address: p.secret_address,
        version: p.version,
        etag: etag(p.version),
        create_time: Some(timestamp_to_proto(p.created_at)),
        update_time: Some(timestamp_to_proto(p.updated_at)),
    }
}

pub fn version_to(v: &ScopeVersionRecord) -> pb::ScopeVersion {
    pb::ScopeVersion {
        version: v.version,
        scope: Some(scope_to(&v.scope)),
        source: source_to(v.source).into(),
        changed_by: v.changed_by.clone(),
        rationale: v.rationale.clone(),
        computed_from: Some(computed_from_to(&v.computed_from)),
        create_time: Some(timestamp_to_proto(v.created_at)),
    }
}

fn frame_to(f: &Frame) -> pb::Frame {
    pb::Frame {
        place: f.place.map_or(pb::Place::Unspecified, place_to).into(),
        place_description: f.place_description.clone(),
        participants: f
            .participants
            .iter()
            .map(|p| pb::Participant {
                member_id: p.member_id.to_string(),
                role: role_to(p.role).into(),
                task: p.task.clone(),
            })
            .collect(),
        activity: f.activity.clone(),
        supervisor: f.supervisor.clone().unwrap_or_default(),
    }
}

fn report_to(r: &Report) -> pb::VisitReport {
    pb::VisitReport {
        how_it_went: r.how_it_went.clone(),
        child_reactions: r.child_reactions.clone(),
        parenting_tasks_practised: r.parenting_tasks_practised.clone(),
        foster_parents: Some(pb::FosterParentInvolvement {
            before: r.foster_parents_before,
            during: r.foster_parents_during,
            after: r.foster_parents_after,
        }),
        concern: r.concern,
        concern_text: r.concern_text.clone(),
        reported_by: r.reported_by.clone(),
        report_time: Some(timestamp_to_proto(r.reported_at)),
    }
}

fn cancellation_to(c: &Cancellation) -> pb::Cancellation {
    pb::Cancellation {
        cancelled_by: cancelled_by_to(c.cancelled_by).into(),
        reason: c.reason.clone(),
        recorded_by: c.recorded_by.clone(),
        record_time: Some(timestamp_to_proto(c.recorded_at)),
    }
}

fn no_show_to(n: &NoShow) -> pb::NoShow {
    pb::NoShow {
        note: n.note.clone(),
        recorded_by: n.recorded_by.clone(),
        record_time: Some(timestamp_to_proto(n.recorded_at)),
    }
}

pub fn visit_to(v: &VisitRecord) -> pb::Visit {
    pb::Visit {
        id: v.id.to_string(),
        case_id: v.case_id.to_string(),
        parent_id: v.parent_id.to_string(),
        plan_id: v.plan_id.to_string(),
        local_start: Some(local_to(v.local_start)),
        start_time: Some(timestamp_to_proto(v.start)),
        duration_minutes: i32::try_from(v.duration_minutes).unwrap_or(i32::MAX),
        end_time: Some(timestamp_to_proto(v.end)),
        status: status_to(v.status).into(),
        frame: Some(frame_to(&v.frame)),
        supervision: supervision_to(v.supervision).into(),
        frame_complete: v.frame_complete(),
        cancellation: v.cancellation.as_ref().map(cancellation_to),
        report: v.report.as_ref().map(report_to),
        no_show: v.no_show.as_ref().map(no_show_to),
        version: v.version,
        etag: etag(v.version),
        create_time: Some(timestamp_to_proto(v.created_at)),
        update_time: Some(timestamp_to_proto(v.updated_at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_enum_value_maps_and_round_trips() {
        for &p in d::Place::ALL {
            assert_eq!(place_from(place_to(p)), Some(p));
        }
        for &s in d::Supervision::ALL {
            assert_eq!(supervision_from(supervision_to(s)), Some(s));
        }
        for s in [
            VisitStatus::Scheduled,
            VisitStatus::Confirmed,
            VisitStatus::Completed,
            VisitStatus::Cancelled,
            VisitStatus::NoShow,
        ] {
            assert_eq!(status_from(status_to(s)), Some(s));
        }
    }

    #[test]
    fn a_computed_scope_round_trips_through_the_contract() {
        let scope = landsby_domain::scope::compute(
            &landsby_domain::scope::ScopeInput {
                step: d::Step::Involvement,
                goal: d::Goal::Reunification,
                floor: None,
                secret_address: true,
                child_birth_date: chrono::NaiveDate::from_ymd_opt(2016, 1, 1).unwrap(),
                today: chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
                recent_visits: &[],
                current: None,
                parenting_goals: &["bedtime routines".to_owned()],
            },
            &d::Policy::default(),
        );
        let mut v = Violations::new();
        let back = scope_from(&mut v, "scope", Some(&scope_to(&scope)));
        v.finish().unwrap();
        assert_eq!(back, Some(scope));
    }
}
