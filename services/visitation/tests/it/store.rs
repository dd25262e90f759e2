//! The store conformance suite: the same tests on SQLite and on PostgreSQL, against the store trait.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use landsby_domain::scope::{self, ScopeInput};
use landsby_domain::{AgencyId, Goal, Role, Step};
use landsby_platform::ApiError;
use landsby_platform::audit::AuditEntry;
use landsby_platform::validate::now;
use landsby_platform::{Caller, db::DbPool};
use landsby_testkit::audit::{audit_rows_of, event_kinds_of};
use landsby_testkit::{Backend, TestDb};
use landsby_visitation::model::plans::{ComputedFrom, NewComputed};
use landsby_visitation::model::{Frame, Idempotency, NewVisit, VisitStatus};
use landsby_visitation::store::{self, PlanChange, Store, VisitChange, VisitFilter};
use std::sync::Arc;
use uuid::Uuid;

landsby_testkit::on_both_backends!(
    migrations_are_idempotent,
    a_plan_is_created_and_replaced_only_by_a_newer_stamp_with_its_versions,
    computed_scopes_of_many_parents_go_in_force_together_or_not_at_all,
    a_refused_change_leaves_no_trace,
    the_child_and_the_supervisor_are_booked_once_and_inactive_visits_hold_no_time,
    a_stale_version_is_aborted,
    a_replayed_schedule_returns_the_first_visit,
    every_change_commits_with_one_audit_row_and_its_events,
);

async fn open(backend: Backend) -> (TestDb, DbPool, Arc<dyn Store>) {
    let db = TestDb::new(backend).await;
    let pool = db.pool();
    pool.migrate(&landsby_visitation::MIGRATIONS).await.unwrap();
    let feed = landsby_platform::outbox::Feed::new(pool.clone());
    let store = store::open(pool.clone(), feed);
    (db, pool, store)
}

fn agency() -> AgencyId {
    AgencyId::parse("0301").unwrap()
}

fn audit(agency: &AgencyId) -> AuditEntry {
    let caller = Caller {
        subject: "cw".into(),
        agency: agency.clone(),
        roles: vec![Role::Caseworker],
        teams: vec![],
    };
    AuditEntry::new(&caller, "test/Call", now())
}

fn computed(case_id: Uuid, parent_id: Uuid, case_version: i64, step: Step) -> NewComputed {
    let scope = scope::compute(
        &ScopeInput {
            step,
            goal: Goal::Reunification,
            floor: None,
            secret_address: false,
            child_birth_date: NaiveDate::from_ymd_opt(2018, 5, 14).unwrap(),
            today: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            recent_visits: &[],
            current: None,
            parenting_goals: &[],
        },
        &landsby_domain::Policy::default(),
    );
    NewComputed {
        case_id,
        parent_id,
        computed_from: ComputedFrom {
            case_version,
            policy_version: "2026.1".into(),
            step,
            goal: Goal::Reunification,
            computed_on: NaiveDate::from_ymd_opt(2026, 11, 23),
        },
        scope,
        floor: None,
        secret_address: false,
    }
}

fn instant(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 3, 2, h, 0, 0).unwrap()
}

fn new_visit(
    case_id: Uuid,
    parent_id: Uuid,
    start_hour: u32,
    supervisor: Option<&str>,
) -> NewVisit {
    let start = instant(start_hour);
    NewVisit {
        id: Uuid::now_v7(),
        agency: agency(),
        case_id,
        parent_id,
        start,
        local_start: start.naive_utc(),
        duration_minutes: 90,
        end: start + Duration::minutes(90),
        frame: Frame {
            supervisor: supervisor.map(str::to_owned),
            ..Frame::default()
        },
        supervision: None,
        at: now(),
    }
}

/// A case with a plan for one parent.
async fn planned(store: &Arc<dyn Store>) -> (Uuid, Uuid) {
    let (case_id, parent_id) = (Uuid::now_v7(), Uuid::now_v7());
    let a = agency();
    store
        .apply_computed(
            &a,
            vec![computed(case_id, parent_id, 1, Step::Safety)],
            audit(&a),
        )
        .await
        .unwrap();
    (case_id, parent_id)
}

fn kind(err: &ApiError) -> String {
    match err {
        ApiError::FailedPrecondition(v) => v[0].kind.clone(),
        other => panic!("expected a precondition, got {other:?}"),
    }
}

async fn migrations_are_idempotent(backend: Backend) {
    let (_db, pool, _store) = open(backend).await;
    pool.migrate(&landsby_visitation::MIGRATIONS).await.unwrap();
}

async fn a_plan_is_created_and_replaced_only_by_a_newer_stamp_with_its_versions(backend: Backend) {
    let (_db, _pool, store) = open(backend).await;
    let a = agency();
    let (case_id, parent_id) = (Uuid::now_v7(), Uuid::now_v7());
    let first = store
        .apply_computed(
            &a,
            vec![computed(case_id, parent_id, 2, Step::Safety)],
            audit(&a),
        )
        .await
        .unwrap()
        .remove(0);
    assert!(first.applied);
    let stale = store
        .apply_computed(
            &a,
            vec![computed(case_id, parent_id, 2, Step::Involvement)],
            audit(&a),
        )
        .await
        .unwrap()
        .remove(0);
    assert!(!stale.applied);
    assert_eq!(stale.plan, first.plan);
    let newer = store
        .apply_computed(
            &a,
            vec![computed(case_id, parent_id, 3, Step::Involvement)],
            audit(&a),
        )
        .await
        .unwrap()
        .remove(0);
    assert!(newer.applied);
    assert_eq!(newer.plan.id, first.plan.id);
    let read = store.get_plan(&a, first.plan.id).await.unwrap().unwrap();
    assert_eq!(read, newer.plan, "what was written is what is read");
    let (_, versions) = store
        .list_scope_versions(&a, first.plan.id, None, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [2, 1]
    );
    let (_, older) = store
        .list_scope_versions(&a, first.plan.id, Some(2), 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(older.len(), 1);
    // Another agency has no such plan.
    let bergen = AgencyId::parse("4601").unwrap();
    assert!(
        store
            .get_plan(&bergen, first.plan.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .list_scope_versions(&bergen, first.plan.id, None, 10)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.list_plans(&a, case_id, None, 10).await.unwrap().len(),
        1
    );
}

async fn a_refused_change_leaves_no_trace(backend: Backend) {
    let (_db, pool, store) = open(backend).await;
    let a = agency();
    let (case_id, parent_id) = planned(&store).await;
    let plan = store
        .list_plans(&a, case_id, None, 1)
        .await
        .unwrap()
        .remove(0);
    let (rows, events) = (
        audit_rows_of(&pool).await.len(),
        event_kinds_of(&pool).await,
    );
    let change: PlanChange = Box::new(|p| {
        p.secret_address = true;
        Err(ApiError::precondition("TEST", "x", "refused"))
    });
    store
        .adjust_plan(&a, plan.id, plan.version, change, audit(&a))
        .await
        .unwrap_err();
    let visit = store
        .schedule_visit(
            &a,
            new_visit(case_id, parent_id, 16, None),
            false,
            None,
            audit(&a),
        )
        .await
        .unwrap();
    let (rows, events) = (rows + 1, events.len() + 1);
    let change: VisitChange = Box::new(|v, _| {
        v.status = VisitStatus::Cancelled;
        Err(ApiError::precondition("TEST", "x", "refused"))
    });
    store
        .change_visit(&a, visit.id, visit.version, change, audit(&a))
        .await
        .unwrap_err();
    assert_eq!(store.get_plan(&a, plan.id).await.unwrap().unwrap(), plan);
    assert_eq!(store.get_visit(&a, visit.id).await.unwrap().unwrap(), visit);
    assert_eq!(audit_rows_of(&pool).await.len(), rows);
    assert_eq!(event_kinds_of(&pool).await.len(), events);
}

async fn the_child_and_the_supervisor_are_booked_once_and_inactive_visits_hold_no_time(
    backend: Backend,
) {
    let (_db, _pool, store) = open(backend).await;
    let a = agency();
    let (case_id, parent_id) = planned(&store).await;
    let (other_case, other_parent) = planned(&store).await;
    let first = store
        .schedule_visit(
            &a,
            new_visit(case_id, parent_id, 16, Some("s1")),
            false,
            None,
            audit(&a),
        )
        .await
        .unwrap();
    let err = store
        .schedule_visit(
            &a,
            new_visit(case_id, parent_id, 17, None),
            false,
            None,
            audit(&a),
        )
        .await
        .unwrap_err();
    assert_eq!(kind(&err), "CHILD_DOUBLE_BOOKED");
    let err = store
        .schedule_visit(
            &a,
            new_visit(other_case, other_parent, 17, Some("s1")),
            false,
            None,
            audit(&a),
        )
        .await
        .unwrap_err();
    assert_eq!(kind(&err), "SUPERVISOR_DOUBLE_BOOKED");
    let cancel: VisitChange = Box::new(|v, _| {
        v.status = VisitStatus::Cancelled;
        Ok(vec![])
    });
    store
        .change_visit(&a, first.id, first.version, cancel, audit(&a))
        .await
        .unwrap();
    store
        .schedule_visit(
            &a,
            new_visit(other_case, other_parent, 17, Some("s1")),
            false,
            None,
            audit(&a),
        )
        .await
        .unwrap();
    let busy = store
        .busy(&a, case_id, instant(0), instant(23))
        .await
        .unwrap();
    assert!(busy.is_empty(), "a cancelled visit holds no time");
    let listed = store
        .list_visits(
            &a,
            &VisitFilter {
                supervisor: Some("s1".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
}

async fn a_stale_version_is_aborted(backend: Backend) {
    let (_db, _pool, store) = open(backend).await;
    let a = agency();
    let (case_id, parent_id) = planned(&store).await;
    let visit = store
        .schedule_visit(
            &a,
            new_visit(case_id, parent_id, 16, None),
            false,
            None,
            audit(&a),
        )
        .await
        .unwrap();
    let noop: VisitChange = Box::new(|_, _| Ok(vec![]));
    let err = store
        .change_visit(&a, visit.id, visit.version + 1, noop, audit(&a))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::StaleEtag { .. }), "{err:?}");
    let plan = store
        .list_plans(&a, case_id, None, 1)
        .await
        .unwrap()
        .remove(0);
    let noop: PlanChange = Box::new(|_| Ok(()));
    let err = store
        .adjust_plan(&a, plan.id, plan.version + 1, noop, audit(&a))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::StaleEtag { .. }), "{err:?}");
}

async fn a_replayed_schedule_returns_the_first_visit(backend: Backend) {
    let (_db, _pool, store) = open(backend).await;
    let a = agency();
    let (case_id, parent_id) = planned(&store).await;
    let idem = |fingerprint: &str| Idempotency {
        operation: "ScheduleVisit",
        request_id: Uuid::from_u128(7),
        fingerprint: fingerprint.into(),
    };
    let first = store
        .schedule_visit(
            &a,
            new_visit(case_id, parent_id, 16, None),
            false,
            Some(idem("f")),
            audit(&a),
        )
        .await
        .unwrap();
    let again = store
        .schedule_visit(
            &a,
            new_visit(case_id, parent_id, 16, None),
            false,
            Some(idem("f")),
            audit(&a),
        )
        .await
        .unwrap();
    assert_eq!(again, first);
    let err = store
        .schedule_visit(
            &a,
            new_visit(case_id, parent_id, 20, None),
            false,
            Some(idem("g")),
            audit(&a),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::InvalidArgument(_)));
}

async fn computed_scopes_of_many_parents_go_in_force_together_or_not_at_all(backend: Backend) {
    let (_db, pool, store) = open(backend).await;
    let a = agency();
    let cases: Vec<(Uuid, Uuid)> = (0..3).map(|_| (Uuid::now_v7(), Uuid::now_v7())).collect();
    let news = |version: i64| -> Vec<NewComputed> {
        cases
            .iter()
            .map(|(c, p)| computed(*c, *p, version, Step::Safety))
            .collect()
    };
    // One item below its board's floor: refused, and nothing of the others is kept.
    let mut refused = news(1);
    refused[1].floor = Some(landsby_domain::VisitationFloor {
        parent_id: cases[1].1,
        min_visits: 300,
        period: landsby_domain::VisitPeriod::Month,
        min_duration_minutes: 15,
        supervision_required: false,
    });
    let err = store
        .apply_computed(&a, refused, audit(&a))
        .await
        .unwrap_err();
    assert_eq!(kind(&err), "COMPUTED_SCOPE_BREACHES_THE_LAW");
    for (c, _) in &cases {
        assert!(store.list_plans(&a, *c, None, 10).await.unwrap().is_empty());
    }
    assert!(audit_rows_of(&pool).await.is_empty());
    // All three in one transaction, answered in the order given, one audit row and one event each.
    let first = store.apply_computed(&a, news(1), audit(&a)).await.unwrap();
    assert_eq!(first.len(), 3);
    for (applied, (c, p)) in first.iter().zip(&cases) {
        assert!(applied.applied);
        assert_eq!((applied.plan.case_id, applied.plan.parent_id), (*c, *p));
    }
    let rows = audit_rows_of(&pool).await;
    let mut audited: Vec<_> = rows.iter().map(|r| r.case_id).collect();
    audited.sort();
    let mut expected: Vec<_> = cases.iter().map(|(c, _)| Some(*c)).collect();
    expected.sort();
    assert_eq!(audited, expected);
    assert_eq!(event_kinds_of(&pool).await, ["plan_changed"; 3]);
    // The same stamps again: nothing applied, nothing new.
    let again = store.apply_computed(&a, news(1), audit(&a)).await.unwrap();
    assert!(again.iter().all(|x| !x.applied));
    assert_eq!(event_kinds_of(&pool).await.len(), 3);
}

async fn every_change_commits_with_one_audit_row_and_its_events(backend: Backend) {
    let (_db, pool, store) = open(backend).await;
    let a = agency();
    let (case_id, parent_id) = planned(&store).await;
    let visit = store
        .schedule_visit(
            &a,
            new_visit(case_id, parent_id, 16, None),
            false,
            None,
            audit(&a),
        )
        .await
        .unwrap();
    let noop: VisitChange = Box::new(|_, _| Ok(vec![]));
    store
        .change_visit(&a, visit.id, visit.version, noop, audit(&a))
        .await
        .unwrap();
    assert_eq!(
        event_kinds_of(&pool).await,
        ["plan_changed", "visit_scheduled"]
    );
    let rows = audit_rows_of(&pool).await;
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r.case_id == Some(case_id) && r.outcome == "OK")
    );
}
