//! Visits through the gRPC API, on both databases, next to a running case service: scheduling with
//! the plan's rules, the frame, double booking (also under racing schedulers), Oslo local time, the
//! life of a visit, lists, and the event feed.

use crate::support::*;
use landsby_domain::Role;
use landsby_proto::case as cpb;
use landsby_proto::visitation::{self as pb, visitation_event::Change};
use landsby_testkit::{AGENCY, Backend, OTHER_AGENCY};
use std::time::Duration;
use tokio_stream::StreamExt;
use tonic::Code;

landsby_testkit::on_both_backends!(
    a_visit_is_scheduled_in_oslo_local_time_and_stays_at_its_wall_clock_across_dst,
    a_visit_with_bad_input_is_refused_with_field_details,
    a_retried_schedule_returns_the_first_visit,
    the_place_must_be_in_the_plan_and_never_the_foster_home_with_a_secret_address,
    supervision_cannot_be_more_lenient_than_the_plan,
    a_visit_is_confirmed_only_with_a_complete_frame,
    a_moved_confirmed_visit_needs_confirming_again,
    neither_the_child_nor_the_supervisor_is_double_booked,
    racing_schedulers_for_one_slot_leave_exactly_one_visit,
    racing_schedulers_for_one_supervisor_leave_exactly_one_visit,
    a_visit_is_completed_or_a_no_show_only_once_begun_and_confirmed,
    visits_are_listed_by_start_with_filters_a_page_at_a_time,
    a_completed_visit_with_a_concern_is_in_the_feed_once_with_its_flag,
    every_visit_rpc_refuses_roles_without_access_and_malformed_ids,
    an_update_with_bad_input_is_refused_with_field_details_and_changes_nothing,
);

fn ids(r: &pb::ListVisitsResponse) -> Vec<&str> {
    r.visits.iter().map(|v| v.id.as_str()).collect()
}

fn hour_utc(t: &prost_types::Timestamp) -> i64 {
    (t.seconds / 3600) % 24
}

async fn a_visit_is_scheduled_in_oslo_local_time_and_stays_at_its_wall_clock_across_dst(
    backend: Backend,
) {
    let env = env(backend).await;
    let (family, plan) = planned(&env).await;
    let mut cw = Client::caseworker(&env);
    let winter = cw
        .schedule(visit(&family, at(2027, 3, 23, 17, 0), "staff-1"))
        .await
        .unwrap();
    let summer = cw
        .schedule(visit(&family, at(2027, 3, 30, 17, 0), "staff-1"))
        .await
        .unwrap();
    assert_eq!(hour_utc(winter.start_time.as_ref().unwrap()), 16);
    assert_eq!(hour_utc(summer.start_time.as_ref().unwrap()), 15);
    assert_eq!(winter.local_start, Some(at(2027, 3, 23, 17, 0)));
    assert_eq!(summer.local_start, Some(at(2027, 3, 30, 17, 0)));
    // In the hour the clocks skip, the visit starts at the end of the gap.
    let gap = cw
        .schedule(visit(&family, at(2027, 3, 28, 2, 30), "staff-1"))
        .await
        .unwrap();
    assert_eq!(hour_utc(gap.start_time.as_ref().unwrap()), 1, "03:00 CEST");
    assert_eq!(
        gap.local_start,
        Some(at(2027, 3, 28, 3, 0)),
        "the visit keeps the wall clock it really has"
    );
    // In the hour the clocks repeat in autumn, the visit takes the first 02:30 (00:30 UTC).
    let repeated = cw
        .schedule(visit(&family, at(2027, 10, 31, 2, 30), "staff-1"))
        .await
        .unwrap();
    assert_eq!(hour_utc(repeated.start_time.as_ref().unwrap()), 0);
    assert_eq!(repeated.local_start, Some(at(2027, 10, 31, 2, 30)));
    let after_autumn = cw
        .schedule(visit(&family, at(2027, 11, 2, 17, 0), "staff-1"))
        .await
        .unwrap();
    assert_eq!(
        hour_utc(after_autumn.start_time.as_ref().unwrap()),
        16,
        "17:00 CET"
    );
    // Read back: the plan's supervision by default, scheduled, the frame complete.
    let read = cw.get(&summer.id).await.unwrap();
    assert_eq!(read, summer);
    assert_eq!(read.status(), pb::VisitStatus::Scheduled);
    assert_eq!(read.plan_id, plan.id);
    assert_eq!(read.supervision(), pb::Supervision::AgencySupervised);
    assert!(read.frame_complete);
    let end = read.end_time.unwrap().seconds - read.start_time.unwrap().seconds;
    assert_eq!(end, 90 * 60);
}

async fn a_visit_with_bad_input_is_refused_with_field_details(backend: Backend) {
    let env = env(backend).await;
    let (family, _plan) = planned(&env).await;
    let mut cw = Client::caseworker(&env);
    let mut bad = visit(&family, at(2027, 13, 1, 25, 0), "staff-1");
    bad.parent_id = "x".into();
    bad.duration_minutes = 5;
    let mut f = bad.frame.clone().unwrap();
    f.participants.push(f.participants[0].clone());
    f.participants[0].role = 99;
    bad.frame = Some(f);
    let err = cw.schedule(bad).await.unwrap_err();
    assert_eq!(
        violated_fields(&err),
        [
            "visit.parent_id",
            "visit.local_start.date",
            "visit.local_start.time",
            "visit.duration_minutes",
            "visit.frame.participants[0].role",
            "visit.frame.participants[1].member_id"
        ]
    );
    // The case service says who is who: the father has no plan, the foster parent no rights, a
    // stranger is not in the village.
    let mut no_plan = visit(&family, at(2027, 3, 2, 17, 0), "");
    no_plan.parent_id = family.father_id.clone();
    assert_eq!(
        precondition_kinds(&cw.schedule(no_plan).await.unwrap_err()),
        ["NO_PLAN"]
    );
    let mut not_a_parent = visit(&family, at(2027, 3, 2, 17, 0), "");
    not_a_parent.parent_id = family.foster_id.clone();
    assert_eq!(
        violated_fields(&cw.schedule(not_a_parent).await.unwrap_err()),
        ["visit.parent_id"]
    );
    let mut stranger = visit(&family, at(2027, 3, 2, 17, 0), "");
    stranger.frame.as_mut().unwrap().participants[0].member_id = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        violated_fields(&cw.schedule(stranger).await.unwrap_err()),
        ["visit.frame.participants[0].member_id"]
    );
    let mut bergen = Client::as_role(&env, "cw", OTHER_AGENCY, &[Role::Caseworker]);
    let err = bergen
        .schedule(visit(&family, at(2027, 3, 2, 17, 0), ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let list = cw
        .list(pb::ListVisitsRequest {
            case_id: family.case_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(list.visits.is_empty(), "nothing was scheduled");
}

async fn a_retried_schedule_returns_the_first_visit(backend: Backend) {
    let env = env(backend).await;
    let (family, _plan) = planned(&env).await;
    let mut cw = Client::caseworker(&env);
    let request_id = uuid::Uuid::now_v7().to_string();
    let send = |cw: &Client, v: pb::Visit| {
        cw.req(pb::ScheduleVisitRequest {
            request_id: request_id.clone(),
            visit: Some(v),
        })
    };
    let first = cw
        .inner
        .schedule_visit(send(&cw, visit(&family, at(2027, 3, 2, 17, 0), "")))
        .await
        .unwrap()
        .into_inner()
        .visit
        .unwrap();
    let again = cw
        .inner
        .schedule_visit(send(&cw, visit(&family, at(2027, 3, 2, 17, 0), "")))
        .await
        .unwrap()
        .into_inner()
        .visit
        .unwrap();
    assert_eq!(first.id, again.id, "a retry, not a double booking");
    // Once the case is closed a new visit is refused, but a retry is still answered with the
    // first visit: it is answered before the case service is asked.
    let mut cases = CaseClient::caseworker(&env.case);
    cases.close(&family.case_id).await.unwrap();
    assert_eq!(
        precondition_kinds(
            &cw.schedule(visit(&family, at(2027, 3, 16, 17, 0), ""))
                .await
                .unwrap_err()
        ),
        ["CASE_CLOSED"]
    );
    let late = cw
        .inner
        .schedule_visit(send(&cw, visit(&family, at(2027, 3, 2, 17, 0), "")))
        .await
        .unwrap()
        .into_inner()
        .visit
        .unwrap();
    assert_eq!(late, first);
    let err = cw
        .inner
        .schedule_visit(send(&cw, visit(&family, at(2027, 3, 9, 17, 0), "")))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["request_id"]);
}

async fn the_place_must_be_in_the_plan_and_never_the_foster_home_with_a_secret_address(
    backend: Backend,
) {
    let env = env(backend).await;
    let (family, _plan) = planned(&env).await;
    let mut cw = Client::caseworker(&env);
    let mut home = visit(&family, at(2027, 3, 2, 17, 0), "staff-1");
    home.frame.as_mut().unwrap().place = pb::Place::ParentsHome.into();
    assert_eq!(
        precondition_kinds(&cw.schedule(home).await.unwrap_err()),
        ["PLACE_NOT_IN_PLAN"],
        "step 1 offers the agency's premises and the community"
    );
    // A plan in step 2 allows the foster home, but the board has just made the address secret: the
    // case service's word counts, not the plan's last computation.
    let mut family = family;
    let step2 = computed(&family, landsby_domain::Step::Involvement, None, false);
    let mother = family.mother_id.clone();
    let plan2 = Client::worker(&env)
        .apply(&family, &mother, 2, cpb::Step::Involvement, step2)
        .await
        .unwrap()
        .plan
        .unwrap();
    assert!(
        plan2
            .scope
            .unwrap()
            .places
            .contains(&(pb::Place::FosterHome as i32))
    );
    let mut foster = visit(&family, at(2027, 3, 2, 17, 0), "staff-1");
    foster.frame.as_mut().unwrap().place = pb::Place::FosterHome.into();
    foster.supervision = pb::Supervision::AgencySupervised.into();
    let allowed = cw.schedule(foster.clone()).await.unwrap();
    cw.cancel(&allowed).await.unwrap();
    let case_id = family.case_id.clone();
    let mut d = decision(&mother, true);
    d.floors[0].supervision_required = false;
    family.cases.record(&case_id, d).await.unwrap();
    assert_eq!(
        precondition_kinds(&cw.schedule(foster).await.unwrap_err()),
        ["SECRET_ADDRESS"]
    );
}

async fn supervision_cannot_be_more_lenient_than_the_plan(backend: Backend) {
    let env = env(backend).await;
    let (family, _plan) = planned(&env).await;
    let mut cw = Client::caseworker(&env);
    let mut loose = visit(&family, at(2027, 3, 2, 17, 0), "");
    loose.supervision = pb::Supervision::Unsupervised.into();
    assert_eq!(
        precondition_kinds(&cw.schedule(loose).await.unwrap_err()),
        ["SUPERVISION_BELOW_PLAN"]
    );
}

async fn a_visit_is_confirmed_only_with_a_complete_frame(backend: Backend) {
    let env = env(backend).await;
    let (family, _plan) = planned(&env).await;
    let mut cw = Client::caseworker(&env);
    let mut bare = visit(&family, at(2027, 3, 2, 17, 0), "");
    bare.frame = None;
    let scheduled = cw.schedule(bare).await.unwrap();
    assert!(!scheduled.frame_complete);
    let err = cw.confirm(&scheduled).await.unwrap_err();
    assert_eq!(
        precondition_kinds(&err),
        ["FRAME_WHERE", "FRAME_WHO", "FRAME_WHAT", "FRAME_ROLES"]
    );
    // Where, who, what; then the supervisor, which an agency-supervised visit needs.
    let mut v = scheduled.clone();
    v.frame = Some(frame(&family.mother_id, ""));
    let framed = cw.update(v, &["frame"]).await.unwrap();
    assert_eq!(
        precondition_kinds(&cw.confirm(&framed).await.unwrap_err()),
        ["FRAME_ROLES"]
    );
    let mut v = framed.clone();
    v.frame.as_mut().unwrap().supervisor = "staff-1".into();
    let complete = cw.update(v, &["frame.supervisor"]).await.unwrap();
    assert!(complete.frame_complete);
    let confirmed = cw.confirm(&complete).await.unwrap();
    assert_eq!(confirmed.status(), pb::VisitStatus::Confirmed);
    // Confirming twice is a state error, not a second confirmation.
    assert_eq!(
        precondition_kinds(&cw.confirm(&confirmed).await.unwrap_err()),
        ["VISIT_STATUS"]
    );
}

async fn a_moved_confirmed_visit_needs_confirming_again(backend: Backend) {
    let env = env(backend).await;
    let (family, _plan) = planned(&env).await;
    let mut cw = Client::caseworker(&env);
    let v = cw
        .schedule(visit(&family, at(2027, 3, 2, 17, 0), "staff-1"))
        .await
        .unwrap();
    let confirmed = cw.confirm(&v).await.unwrap();
    let mut moved = confirmed.clone();
    moved.local_start = Some(at(2027, 3, 3, 16, 30));
    let moved = cw.update(moved, &["local_start"]).await.unwrap();
    assert_eq!(moved.status(), pb::VisitStatus::Scheduled);
    assert_eq!(moved.local_start, Some(at(2027, 3, 3, 16, 30)));
    // A stale etag changes nothing.
    let mut stale = confirmed;
    stale.duration_minutes = 60;
    assert_eq!(
        cw.update(stale, &["duration_minutes"])
            .await
            .unwrap_err()
            .code(),
        Code::Aborted
    );
}

async fn an_update_with_bad_input_is_refused_with_field_details_and_changes_nothing(
    backend: Backend,
) {
    let env = env(backend).await;
    let (family, _plan) = planned(&env).await;
    let mut cw = Client::caseworker(&env);
    let v = cw
        .schedule(visit(&family, at(2027, 3, 2, 17, 0), "staff-1"))
        .await
        .unwrap();
    // Every value named in the mask is checked, all at once.
    let mut bad = v.clone();
    bad.local_start = Some(at(2027, 2, 30, 17, 0));
    bad.duration_minutes = 20_000;
    bad.supervision = 99;
    let mut frame = bad.frame.clone().unwrap();
    frame.participants[0].role = 99;
    bad.frame = Some(frame);
    let err = cw
        .update(
            bad,
            &["local_start", "duration_minutes", "supervision", "frame"],
        )
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        [
            "visit.local_start.date",
            "visit.duration_minutes",
            "visit.frame.participants[0].role",
            "visit.supervision"
        ]
    );
    // A stranger is not let into the frame.
    let mut stranger = v.clone();
    let mut frame = stranger.frame.clone().unwrap();
    frame.participants[0].member_id = uuid::Uuid::now_v7().to_string();
    stranger.frame = Some(frame);
    assert_eq!(
        violated_fields(
            &cw.update(stranger, &["frame.participants"])
                .await
                .unwrap_err()
        ),
        ["visit.frame.participants[0].member_id"]
    );
    // An empty mask, or no visit, is refused too.
    assert_eq!(
        violated_fields(&cw.update(v.clone(), &[]).await.unwrap_err()),
        ["update_mask"]
    );
    assert_eq!(cw.get(&v.id).await.unwrap(), v, "nothing changed");
    // Naming only the place changes only the place: the participants sent along are not read.
    let mut place_only = v.clone();
    let mut frame = place_only.frame.clone().unwrap();
    frame.place = pb::Place::Community.into();
    frame.participants[0].member_id = uuid::Uuid::now_v7().to_string();
    place_only.frame = Some(frame);
    let moved = cw.update(place_only, &["frame.place"]).await.unwrap();
    let frame = moved.frame.unwrap();
    assert_eq!(frame.place(), pb::Place::Community);
    assert_eq!(frame.participants, v.frame.clone().unwrap().participants);
}

async fn neither_the_child_nor_the_supervisor_is_double_booked(backend: Backend) {
    let env = env(backend).await;
    let (family, _plan) = planned(&env).await;
    let (other, _plan2) = planned(&env).await;
    let mut cw = Client::caseworker(&env);
    let first = cw
        .schedule(visit(&family, at(2027, 3, 2, 17, 0), "staff-1"))
        .await
        .unwrap();
    // The child is busy 17:00-18:30 (half-open: 18:30 is free).
    let overlap = cw
        .schedule(visit(&family, at(2027, 3, 2, 18, 0), "staff-2"))
        .await
        .unwrap_err();
    assert_eq!(
        preconditions(&overlap),
        [(
            "CHILD_DOUBLE_BOOKED".to_owned(),
            format!("visits/{}", first.id)
        )]
    );
    cw.schedule(visit(&family, at(2027, 3, 2, 18, 30), "staff-2"))
        .await
        .unwrap();
    // Another child, the same supervisor at the same time.
    let err = cw
        .schedule(visit(&other, at(2027, 3, 2, 17, 30), "staff-1"))
        .await
        .unwrap_err();
    assert_eq!(precondition_kinds(&err), ["SUPERVISOR_DOUBLE_BOOKED"]);
    // A cancelled visit frees its time; moving a visit onto a taken time is refused too.
    cw.cancel(&first).await.unwrap();
    let freed = cw
        .schedule(visit(&other, at(2027, 3, 2, 17, 30), "staff-1"))
        .await
        .unwrap();
    let late = cw
        .schedule(visit(&other, at(2027, 3, 2, 20, 0), "staff-3"))
        .await
        .unwrap();
    let mut onto = late;
    onto.local_start = Some(at(2027, 3, 2, 18, 0));
    let err = cw.update(onto, &["local_start"]).await.unwrap_err();
    assert_eq!(
        preconditions(&err),
        [(
            "CHILD_DOUBLE_BOOKED".to_owned(),
            format!("visits/{}", freed.id)
        )]
    );
}

/// `n` schedulers send a visit each at the same moment; returns how many won and the refusals.
async fn race(env: &Env, visits: Vec<pb::Visit>) -> (usize, Vec<tonic::Status>) {
    let mut tasks = Vec::new();
    for v in visits {
        let mut cw = Client::caseworker(env);
        tasks.push(tokio::spawn(async move { cw.schedule(v).await }));
    }
    let (mut won, mut lost) = (0, Vec::new());
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(e) => lost.push(e),
        }
    }
    (won, lost)
}

async fn racing_schedulers_for_one_slot_leave_exactly_one_visit(backend: Backend) {
    let env = env(backend).await;
    let (family, _plan) = planned(&env).await;
    // Both parents have plans, so only the child's turn keeps the schedulers apart.
    let scope = computed(&family, landsby_domain::Step::Safety, None, false);
    let father = family.father_id.clone();
    Client::worker(&env)
        .apply(&family, &father, 1, cpb::Step::Safety, scope)
        .await
        .unwrap();
    let slots: Vec<pb::Visit> = (0..8)
        .map(|i| {
            let mut v = visit(&family, at(2027, 3, 2, 17, i * 5), &format!("staff-{i}"));
            if i % 2 == 1 {
                v.parent_id = father.clone();
                v.frame.as_mut().unwrap().participants[0].member_id = father.clone();
            }
            v
        })
        .collect();
    let (won, lost) = race(&env, slots).await;
    assert_eq!(won, 1, "{lost:?}");
    for e in &lost {
        assert_eq!(precondition_kinds(e), ["CHILD_DOUBLE_BOOKED"]);
    }
    let listed = Client::caseworker(&env)
        .list(pb::ListVisitsRequest {
            case_id: family.case_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.visits.len(), 1);
}

async fn racing_schedulers_for_one_supervisor_leave_exactly_one_visit(backend: Backend) {
    let env = env(backend).await;
    let mut families = Vec::new();
    for _ in 0..4 {
        families.push(planned(&env).await.0);
    }
    let slots: Vec<pb::Visit> = families
        .iter()
        .map(|f| visit(f, at(2027, 3, 2, 17, 0), "staff-7"))
        .collect();
    let (won, lost) = race(&env, slots).await;
    assert_eq!(won, 1, "{lost:?}");
    for e in &lost {
        assert_eq!(precondition_kinds(e), ["SUPERVISOR_DOUBLE_BOOKED"]);
    }
}

/// A visit that began an hour ago (scheduled now, for then), confirmed.
async fn begun(cw: &mut Client, family: &Family) -> pb::Visit {
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Oslo);
    let start = now - chrono::Duration::hours(1);
    use chrono::{Datelike, Timelike};
    let v = cw
        .schedule(visit(
            family,
            at(
                start.year(),
                start.month(),
                start.day(),
                start.hour() as i32,
                start.minute() as i32,
            ),
            &format!("staff-{}", uuid::Uuid::now_v7()),
        ))
        .await
        .unwrap();
    cw.confirm(&v).await.unwrap()
}

async fn a_visit_is_completed_or_a_no_show_only_once_begun_and_confirmed(backend: Backend) {
    let env = env(backend).await;
    let (family, _plan) = planned(&env).await;
    let mut cw = Client::caseworker(&env);
    let future = cw
        .schedule(visit(&family, at(2030, 3, 2, 17, 0), "staff-9"))
        .await
        .unwrap();
    assert_eq!(
        precondition_kinds(&cw.complete(&future, report(false)).await.unwrap_err()),
        ["VISIT_STATUS"],
        "not confirmed"
    );
    let future = cw.confirm(&future).await.unwrap();
    assert_eq!(
        precondition_kinds(&cw.complete(&future, report(false)).await.unwrap_err()),
        ["VISIT_NOT_STARTED"]
    );
    let past = begun(&mut cw, &family).await;
    let mut bad = report(false);
    bad.how_it_went = String::new();
    bad.concern_text = "only with a concern".into();
    let err = cw.complete(&past, bad).await.unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["report.how_it_went", "report.concern_text"]
    );
    let done = cw.complete(&past, report(true)).await.unwrap();
    assert_eq!(done.status(), pb::VisitStatus::Completed);
    let r = done.report.clone().unwrap();
    assert!(r.concern);
    assert_eq!(r.reported_by, "caseworker-1");
    assert_eq!(
        precondition_kinds(&cw.cancel(&done).await.unwrap_err()),
        ["VISIT_STATUS"]
    );
    // A no-show on another that began; the note is optional.
    let other = begun(&mut Client::caseworker(&env), &planned(&env).await.0).await;
    let req = cw.req(pb::RecordNoShowRequest {
        visit_id: other.id.clone(),
        etag: other.etag.clone(),
        note: String::new(),
    });
    let no_show = cw
        .inner
        .record_no_show(req)
        .await
        .unwrap()
        .into_inner()
        .visit
        .unwrap();
    assert_eq!(no_show.status(), pb::VisitStatus::NoShow);
    assert!(no_show.no_show.is_some());
}

async fn visits_are_listed_by_start_with_filters_a_page_at_a_time(backend: Backend) {
    let env = env(backend).await;
    let (family, _plan) = planned(&env).await;
    let mut cw = Client::caseworker(&env);
    let a = cw
        .schedule(visit(&family, at(2027, 3, 9, 17, 0), "staff-1"))
        .await
        .unwrap();
    let b = cw
        .schedule(visit(&family, at(2027, 3, 2, 17, 0), "staff-2"))
        .await
        .unwrap();
    let mut with_foster = visit(&family, at(2027, 3, 16, 17, 0), "staff-1");
    with_foster
        .frame
        .as_mut()
        .unwrap()
        .participants
        .push(pb::Participant {
            member_id: family.foster_id.clone(),
            role: pb::ParticipantRole::FosterParent.into(),
            task: "brings the child".into(),
        });
    let c = cw.schedule(with_foster).await.unwrap();
    cw.cancel(&b).await.unwrap();
    let all = cw
        .list(pb::ListVisitsRequest {
            case_id: family.case_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        ids(&all),
        [b.id.as_str(), a.id.as_str(), c.id.as_str()],
        "by start"
    );
    let by = |f: fn(&mut pb::ListVisitsRequest)| {
        let mut r = pb::ListVisitsRequest {
            case_id: family.case_id.clone(),
            ..Default::default()
        };
        f(&mut r);
        r
    };
    let foster_id = family.foster_id.clone();
    // Staff list one case's visits at a time (need to know).
    let err = cw
        .list(pb::ListVisitsRequest {
            participant_id: foster_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["case_id"]);
    let r = cw
        .list(pb::ListVisitsRequest {
            case_id: family.case_id.clone(),
            participant_id: foster_id,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&r), [c.id.as_str()]);
    let r = cw
        .list(by(|r| r.supervisor = "staff-1".into()))
        .await
        .unwrap();
    assert_eq!(ids(&r), [a.id.as_str(), c.id.as_str()]);
    let r = cw
        .list(by(|r| r.status = pb::VisitStatus::Cancelled.into()))
        .await
        .unwrap();
    assert_eq!(ids(&r), [b.id.as_str()]);
    let r = cw
        .list(pb::ListVisitsRequest {
            case_id: family.case_id.clone(),
            start_after: a.start_time,
            start_before: c.start_time,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        ids(&r),
        [a.id.as_str()],
        "from start_after, up to before start_before"
    );
    // One a page, the same filters on every page.
    let first = cw
        .list(pb::ListVisitsRequest {
            case_id: family.case_id.clone(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(first.visits.len(), 2);
    let second = cw
        .list(pb::ListVisitsRequest {
            case_id: family.case_id.clone(),
            page_size: 2,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&second), [c.id.as_str()]);
    let err = cw
        .list(pb::ListVisitsRequest {
            case_id: family.case_id.clone(),
            supervisor: "staff-1".into(),
            page_size: 2,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["page_token"], "another filter");
    let err = cw
        .list(pb::ListVisitsRequest {
            page_size: -1,
            case_id: "x".into(),
            participant_id: "y".into(),
            status: 42,
            start_after: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: -5,
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        [
            "page_size",
            "case_id",
            "participant_id",
            "start_after",
            "status"
        ]
    );
    // Another agency sees none of them: the case is not there for it.
    let mut bergen = Client::as_role(&env, "cw", OTHER_AGENCY, &[Role::Caseworker]);
    let err = bergen
        .list(pb::ListVisitsRequest {
            case_id: family.case_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

async fn a_completed_visit_with_a_concern_is_in_the_feed_once_with_its_flag(backend: Backend) {
    let env = env(backend).await;
    let (family, _plan) = planned(&env).await;
    let mut cw = Client::caseworker(&env);
    let past = begun(&mut cw, &family).await;
    let done = cw.complete(&past, report(true)).await.unwrap();
    // A retry with the old etag is refused, so the concern cannot be reported twice.
    assert_eq!(
        cw.complete(&past, report(true)).await.unwrap_err().code(),
        Code::Aborted
    );
    let worker = Client::worker(&env);
    let mut feed = worker
        .inner
        .clone()
        .watch_events(worker.req(pb::WatchEventsRequest { after_sequence: 0 }))
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Ok(Some(item)) = tokio::time::timeout(Duration::from_secs(2), feed.next()).await {
        events.push(item.unwrap().event.unwrap());
    }
    let completed: Vec<&pb::VisitCompleted> = events
        .iter()
        .filter_map(|e| match &e.change {
            Some(Change::VisitCompleted(c)) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(completed.len(), 1, "{events:?}");
    assert!(completed[0].concern);
    assert!(completed[0].foster_parents_involved);
    assert_eq!(completed[0].visit_id, done.id);
    assert_eq!(completed[0].parent_id, family.mother_id);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match &e.change {
            Some(Change::PlanChanged(_)) => "plan",
            Some(Change::VisitScheduled(_)) => "scheduled",
            Some(Change::VisitConfirmed(_)) => "confirmed",
            Some(Change::VisitCompleted(_)) => "completed",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["plan", "scheduled", "confirmed", "completed"]);
    assert!(events.windows(2).all(|p| p[0].sequence < p[1].sequence));
    // The feed is the worker's, and shows only its agency.
    let req = cw.req(pb::WatchEventsRequest { after_sequence: 0 });
    assert_eq!(
        cw.inner.watch_events(req).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let bergen = Client::as_role(&env, "landsby-worker", OTHER_AGENCY, &[Role::Service]);
    let mut other = bergen
        .inner
        .clone()
        .watch_events(bergen.req(pb::WatchEventsRequest { after_sequence: 0 }))
        .await
        .unwrap()
        .into_inner();
    assert!(
        tokio::time::timeout(Duration::from_millis(700), other.next())
            .await
            .is_err()
    );
    let req = worker.req(pb::WatchEventsRequest { after_sequence: -1 });
    assert_eq!(
        violated_fields(&worker.inner.clone().watch_events(req).await.unwrap_err()),
        ["after_sequence"]
    );
}

async fn every_visit_rpc_refuses_roles_without_access_and_malformed_ids(backend: Backend) {
    let env = env(backend).await;
    let (family, _plan) = planned(&env).await;
    let mut cw = Client::caseworker(&env);
    let v = cw
        .schedule(visit(&family, at(2027, 3, 2, 17, 0), ""))
        .await
        .unwrap();
    // The worker reads visits but changes none.
    let mut worker = Client::worker(&env);
    assert_eq!(worker.get(&v.id).await.unwrap().id, v.id);
    assert_eq!(
        worker
            .schedule(visit(&family, at(2027, 4, 2, 17, 0), ""))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        worker.confirm(&v).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        worker.cancel(&v).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        worker.complete(&v, report(false)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        worker
            .update(v.clone(), &["duration_minutes"])
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let req = worker.req(pb::RecordNoShowRequest {
        visit_id: v.id.clone(),
        etag: v.etag.clone(),
        note: String::new(),
    });
    assert_eq!(
        worker.inner.record_no_show(req).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    for role in [Role::AgencyAdmin, Role::Auditor] {
        let mut c = Client::as_role(&env, "someone", AGENCY, &[role]);
        assert_eq!(
            c.get(&v.id).await.unwrap_err().code(),
            Code::PermissionDenied
        );
        assert_eq!(
            c.schedule(visit(&family, at(2027, 4, 2, 17, 0), ""))
                .await
                .unwrap_err()
                .code(),
            Code::PermissionDenied
        );
        assert_eq!(
            c.confirm(&v).await.unwrap_err().code(),
            Code::PermissionDenied
        );
        assert_eq!(
            c.cancel(&v).await.unwrap_err().code(),
            Code::PermissionDenied
        );
        assert_eq!(
            c.list(pb::ListVisitsRequest::default())
                .await
                .unwrap_err()
                .code(),
            Code::PermissionDenied
        );
    }
    // Malformed ids and etags, field by field.
    assert_eq!(
        violated_fields(&cw.get("nope").await.unwrap_err()),
        ["visit_id"]
    );
    let bad = pb::Visit {
        id: "nope".into(),
        etag: "x".into(),
        ..Default::default()
    };
    assert_eq!(
        violated_fields(&cw.confirm(&bad).await.unwrap_err()),
        ["visit_id", "etag"]
    );
    assert_eq!(
        violated_fields(&cw.complete(&bad, report(false)).await.unwrap_err()),
        ["visit_id", "etag"]
    );
    let req = cw.req(pb::CancelVisitRequest {
        visit_id: v.id.clone(),
        etag: v.etag.clone(),
        cancellation: Some(pb::Cancellation {
            cancelled_by: 0,
            reason: String::new(),
            ..Default::default()
        }),
    });
    assert_eq!(
        violated_fields(&cw.inner.cancel_visit(req).await.unwrap_err()),
        ["cancellation.cancelled_by", "cancellation.reason"]
    );
    let err = cw.update(bad, &["status"]).await.unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["update_mask.paths[0]", "visit.id", "visit.etag"]
    );
    let req = cw.req(pb::RecordNoShowRequest {
        visit_id: "nope".into(),
        etag: "x".into(),
        note: "n".repeat(1001),
    });
    assert_eq!(
        violated_fields(&cw.inner.record_no_show(req).await.unwrap_err()),
        ["visit_id", "etag", "note"]
    );
    // Audited here, and the reads of the case audited by the case service under the caller.
    let here = landsby_testkit::audit::audit_rows(&env.visitation).await;
    assert!(
        here.iter()
            .any(|r| r.rpc.ends_with("VisitationService/ScheduleVisit")
                && r.subject == "caseworker-1"
                && r.case_id == Some(uuid_of(&family.case_id))
                && r.outcome == "OK")
    );
    assert!(
        here.iter()
            .any(|r| r.rpc.ends_with("VisitationService/ConfirmVisit")
                && r.subject == "landsby-worker"
                && r.outcome == "PERMISSION_DENIED")
    );
    let there = landsby_testkit::audit::audit_rows(&env.case).await;
    assert!(there.iter().any(|r| r.rpc.ends_with("CaseService/GetCase")
        && r.subject == "caseworker-1"
        && r.case_id == Some(uuid_of(&family.case_id))));
    // Another agency's visit is not found, for every change.
    let mut bergen = Client::as_role(&env, "cw", OTHER_AGENCY, &[Role::Caseworker]);
    assert_eq!(bergen.get(&v.id).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(bergen.confirm(&v).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(bergen.cancel(&v).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(
        bergen.complete(&v, report(false)).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        bergen
            .update(v.clone(), &["duration_minutes"])
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let req = bergen.req(pb::RecordNoShowRequest {
        visit_id: v.id.clone(),
        etag: v.etag.clone(),
        note: String::new(),
    });
    assert_eq!(
        bergen.inner.record_no_show(req).await.unwrap_err().code(),
        Code::NotFound
    );
    // A refused change names the visit and its case in its audit row.
    let mut stale = v.clone();
    stale.etag = "\"999\"".into();
    assert_eq!(cw.cancel(&stale).await.unwrap_err().code(), Code::Aborted);
    let rows = landsby_testkit::audit::audit_rows(&env.visitation).await;
    let refused = rows
        .iter()
        .rfind(|r| r.rpc.ends_with("VisitationService/CancelVisit"))
        .unwrap();
    assert_eq!(refused.outcome, "ABORTED");
    assert_eq!(refused.case_id, Some(uuid_of(&family.case_id)));
    assert_eq!(refused.resource_ids, [uuid_of(&v.id)]);
    assert_eq!(
        cw.get(&v.id).await.unwrap().version,
        v.version,
        "no refusal changed anything"
    );
}
