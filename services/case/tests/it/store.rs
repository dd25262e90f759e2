//! The store conformance suite: the same tests on SQLite and on PostgreSQL, against the store trait.

use chrono::NaiveDate;
use landsby_case::model::{
    Address, CaseChange, CaseFilter, Child, FosterHome, Idempotency, MemberFields,
    NewBoardDecision, NewCase, Placement,
};
use landsby_case::store::{self, Store};
use landsby_domain::{
    Affiliation, AgencyId, CaseStatus, Goal, Language, NationalId, PlacementKind, Role, Step,
    VillageRole, VisitPeriod, VisitationFloor,
};
use landsby_platform::audit::AuditEntry;
use landsby_platform::validate::now;
use landsby_platform::{ApiError, Caller};
use landsby_testkit::{Backend, TestDb};
use std::sync::Arc;
use uuid::Uuid;

landsby_testkit::on_both_backends!(
    a_case_is_stored_and_read_back_whole,
    cases_of_one_agency_are_invisible_to_another,
    listing_filters_and_continues_after_a_cursor,
    an_update_with_a_stale_version_changes_nothing,
    a_failed_rule_rolls_the_whole_change_back_with_its_audit_row,
    a_replayed_request_returns_the_first_result_and_a_different_one_is_refused,
    members_are_added_changed_and_removed_with_their_versions,
    decisions_are_stored_with_their_floors_and_listed_newest_first,
    migrations_are_idempotent,
    a_retry_after_the_case_closed_gets_the_first_answer,
    an_identity_number_is_stored_sealed_with_its_keyed_hash,
);

async fn an_identity_number_is_stored_sealed_with_its_keyed_hash(backend: Backend) {
    let (db, store) = open(backend).await;
    let a = agency();
    let case = store
        .create_case(&a, new_case("cw"), None, audit(&a))
        .await
        .unwrap();
    let nin = case.child.national_id.clone().unwrap();
    let sql = "SELECT child_national_id, child_national_id_hash FROM cases";
    let (stored, hash): (Option<String>, Option<String>) = match db.pool() {
        landsby_platform::db::DbPool::Postgres(p) => {
            sqlx::query_as(sql).fetch_one(&p).await.unwrap()
        }
        landsby_platform::db::DbPool::Sqlite(p) => sqlx::query_as(sql).fetch_one(&p).await.unwrap(),
    };
    let stored = stored.unwrap();
    assert!(stored.starts_with("enc1:"), "{stored}");
    assert!(!stored.contains(nin.expose()));
    let protector = landsby_platform::pii::protector().unwrap();
    assert_eq!(hash.unwrap(), protector.lookup_hash(nin.expose()));
    // Read back whole, and written again on a change.
    let read = read_case(&store, &a, case.id).await.unwrap();
    assert_eq!(read.child.national_id, Some(nin));
}

/// A case as GetCase reads it (the caseworker's need to know aside).
async fn read_case(
    store: &Arc<dyn Store>,
    agency: &AgencyId,
    id: Uuid,
) -> Option<landsby_case::model::CaseRecord> {
    store
        .get_case(agency, id, "cw", now())
        .await
        .unwrap()
        .map(|(_, case)| case)
}

async fn open(backend: Backend) -> (TestDb, Arc<dyn Store>) {
    landsby_testkit::install_personal_data_keys();
    let db = TestDb::new(backend).await;
    let pool = db.pool();
    pool.migrate(&landsby_case::MIGRATIONS).await.unwrap();
    let feed = landsby_platform::outbox::Feed::new(pool.clone());
    (db, store::open(pool, feed))
}

fn case_updated() -> landsby_proto::case::case_event::Change {
    landsby_proto::case::case_event::Change::CaseUpdated(Default::default())
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

fn new_case(worker: &str) -> NewCase {
    let birth = crate::support::birth();
    NewCase {
        child: Child {
            given_name: "Emma".into(),
            family_name: "Nordmann".into(),
            birth_date: birth,
            national_id: Some(NationalId::parse(&crate::support::national_id(birth, 500)).unwrap()),
        },
        placement: Placement {
            kind: PlacementKind::CareOrder,
            start_date: NaiveDate::from_ymd_opt(2025, 9, 1).unwrap(),
            foster_home: FosterHome {
                name: String::new(),
                address: Address {
                    street: "Bakkeveien 7".into(),
                    postal_code: "0150".into(),
                    city: "Oslo".into(),
                },
                address_protected: false,
            },
        },
        goal: Goal::Reunification,
        step: Step::Safety,
        assigned_caseworker: worker.into(),
        team: "team-1".into(),
        co_caseworker: None,
    }
}

fn parent() -> MemberFields {
    MemberFields {
        role: VillageRole::Father,
        affiliation: Affiliation::BirthFamily,
        display_name: "Ola".into(),
        contact_points: vec![],
        preferred_language: Language::En,
        involved: true,
        informed: false,
        prepared: false,
        has_visitation_rights: true,
    }
}

fn decision(parent: Uuid, from: (i32, u32, u32)) -> NewBoardDecision {
    let from = NaiveDate::from_ymd_opt(from.0, from.1, from.2).unwrap();
    NewBoardDecision {
        reference: "ref".into(),
        decided_on: from,
        valid_from: from,
        valid_to: None,
        secret_address: false,
        floors: vec![VisitationFloor {
            parent_id: parent,
            min_visits: 2,
            period: VisitPeriod::Month,
            min_duration_minutes: 90,
            supervision_required: false,
        }],
    }
}

async fn a_case_is_stored_and_read_back_whole(backend: Backend) {
    let (_db, store) = open(backend).await;
    let a = agency();
    let created = store
        .create_case(&a, new_case("cw"), None, audit(&a))
        .await
        .unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(created.status, CaseStatus::Open);
    let read = read_case(&store, &a, created.id).await.unwrap();
    assert_eq!(read, created);
    // GetCase's one read carries what need to know decides on, as case_access tells it.
    let at = now();
    let (access, _) = store
        .get_case(&a, created.id, "cw", at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Some(access),
        store.case_access(&a, created.id, "cw", at).await.unwrap()
    );
    assert!(read_case(&store, &a, Uuid::now_v7()).await.is_none());
}

async fn cases_of_one_agency_are_invisible_to_another(backend: Backend) {
    let (_db, store) = open(backend).await;
    let (oslo, bergen) = (agency(), AgencyId::parse("4601").unwrap());
    let case = store
        .create_case(&oslo, new_case("cw"), None, audit(&oslo))
        .await
        .unwrap();
    assert!(read_case(&store, &bergen, case.id).await.is_none());
    // Read by id alone, the agency compared after: another agency's access is none.
    let now = chrono::Utc::now();
    assert!(
        store
            .case_access(&bergen, case.id, "cw", now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .case_access(&oslo, case.id, "cw", now)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .list_cases(&bergen, &CaseFilter::default(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_members(&bergen, case.id, None, 10)
            .await
            .unwrap()
            .is_none()
    );
    let change: CaseChange = Box::new(|c| {
        c.assigned_caseworker = "thief".into();
        Ok(())
    });
    let err = store
        .update_case(&bergen, case.id, 1, change, case_updated(), audit(&bergen))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::NotFound { .. }));
}

async fn listing_filters_and_continues_after_a_cursor(backend: Backend) {
    let (_db, store) = open(backend).await;
    let a = agency();
    let mut ids = Vec::new();
    for i in 0..5 {
        let worker = if i % 2 == 0 { "even" } else { "odd" };
        ids.push(
            store
                .create_case(&a, new_case(worker), None, audit(&a))
                .await
                .unwrap()
                .id,
        );
    }
    let all = store
        .list_cases(&a, &CaseFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(all.iter().map(|c| c.id).collect::<Vec<_>>(), ids);
    let after = store
        .list_cases(&a, &CaseFilter::default(), Some(ids[1]), 2)
        .await
        .unwrap();
    assert_eq!(after.iter().map(|c| c.id).collect::<Vec<_>>(), &ids[2..4]);
    let filter = CaseFilter {
        assigned_caseworker: Some("odd".into()),
        ..Default::default()
    };
    let odd = store.list_cases(&a, &filter, None, 10).await.unwrap();
    assert_eq!(
        odd.iter().map(|c| c.id).collect::<Vec<_>>(),
        [ids[1], ids[3]]
    );
    let filter = CaseFilter {
        step: Some(Step::Involvement),
        ..Default::default()
    };
    assert!(
        store
            .list_cases(&a, &filter, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn an_update_with_a_stale_version_changes_nothing(backend: Backend) {
    let (_db, store) = open(backend).await;
    let a = agency();
    let case = store
        .create_case(&a, new_case("cw"), None, audit(&a))
        .await
        .unwrap();
    let change = |name: &'static str| -> CaseChange {
        Box::new(move |c| {
            c.assigned_caseworker = name.into();
            Ok(())
        })
    };
    let updated = store
        .update_case(&a, case.id, 1, change("second"), case_updated(), audit(&a))
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    let err = store
        .update_case(&a, case.id, 1, change("third"), case_updated(), audit(&a))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::StaleEtag { .. }));
    assert_eq!(read_case(&store, &a, case.id).await.unwrap(), updated);
}

async fn a_failed_rule_rolls_the_whole_change_back_with_its_audit_row(backend: Backend) {
    landsby_testkit::install_personal_data_keys();
    let db = TestDb::new(backend).await;
    let pool = db.pool();
    pool.migrate(&landsby_case::MIGRATIONS).await.unwrap();
    let store = store::open(
        pool.clone(),
        landsby_platform::outbox::Feed::new(pool.clone()),
    );
    let a = agency();
    let case = store
        .create_case(&a, new_case("cw"), None, audit(&a))
        .await
        .unwrap();
    let rows_before = crate::audit_rows_of(&pool).await.len();
    let change: CaseChange = Box::new(|c| {
        c.assigned_caseworker = "half-done".into();
        Err(ApiError::precondition("TEST", "x", "refused"))
    });
    store
        .update_case(&a, case.id, 1, change, case_updated(), audit(&a))
        .await
        .unwrap_err();
    assert_eq!(read_case(&store, &a, case.id).await.unwrap(), case);
    assert_eq!(
        crate::audit_rows_of(&pool).await.len(),
        rows_before,
        "no audit row for a change that did not happen"
    );
}

async fn a_replayed_request_returns_the_first_result_and_a_different_one_is_refused(
    backend: Backend,
) {
    let (_db, store) = open(backend).await;
    let a = agency();
    let idem = |fingerprint: &str| Idempotency {
        operation: "CreateCase",
        request_id: Uuid::from_u128(42),
        fingerprint: fingerprint.into(),
    };
    let first = store
        .create_case(&a, new_case("cw"), Some(idem("f1")), audit(&a))
        .await
        .unwrap();
    let again = store
        .create_case(&a, new_case("cw"), Some(idem("f1")), audit(&a))
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    let err = store
        .create_case(&a, new_case("other"), Some(idem("f2")), audit(&a))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::InvalidArgument(_)));
    // The same request id in another agency is another request.
    let bergen = AgencyId::parse("4601").unwrap();
    let theirs = store
        .create_case(&bergen, new_case("cw"), Some(idem("f1")), audit(&bergen))
        .await
        .unwrap();
    assert_ne!(theirs.id, first.id);
    assert_eq!(
        store
            .list_cases(&a, &CaseFilter::default(), None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn members_are_added_changed_and_removed_with_their_versions(backend: Backend) {
    let (_db, store) = open(backend).await;
    let a = agency();
    let case = store
        .create_case(&a, new_case("cw"), None, audit(&a))
        .await
        .unwrap();
    let member = store
        .add_member(&a, case.id, parent(), None, audit(&a))
        .await
        .unwrap();
    assert_eq!(member.version, 1);
    let changed = store
        .update_member(
            &a,
            case.id,
            member.id,
            1,
            Box::new(|_, m| {
                m.fields.informed = true;
                Ok(())
            }),
            audit(&a),
        )
        .await
        .unwrap();
    assert_eq!(changed.version, 2);
    assert!(changed.fields.informed);
    let listed = store
        .list_members(&a, case.id, None, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listed, vec![changed.clone()]);
    let err = store
        .remove_member(&a, case.id, member.id, 1, audit(&a))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::StaleEtag { .. }));
    store
        .remove_member(&a, case.id, member.id, 2, audit(&a))
        .await
        .unwrap();
    assert!(
        store
            .list_members(&a, case.id, None, 10)
            .await
            .unwrap()
            .unwrap()
            .is_empty()
    );
    assert_eq!(read_case(&store, &a, case.id).await.unwrap().version, 4);
}

async fn decisions_are_stored_with_their_floors_and_listed_newest_first(backend: Backend) {
    let (_db, store) = open(backend).await;
    let a = agency();
    let case = store
        .create_case(&a, new_case("cw"), None, audit(&a))
        .await
        .unwrap();
    let dad = store
        .add_member(&a, case.id, parent(), None, audit(&a))
        .await
        .unwrap();
    let old = store
        .record_decision(&a, case.id, decision(dad.id, (2024, 1, 1)), None, audit(&a))
        .await
        .unwrap();
    let mut secret = decision(dad.id, (2025, 1, 1));
    secret.secret_address = true;
    let new = store
        .record_decision(&a, case.id, secret, None, audit(&a))
        .await
        .unwrap();
    let listed = store
        .list_decisions(&a, case.id, None, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listed, vec![new.clone(), old.clone()]);
    let rest = store
        .list_decisions(&a, case.id, Some((new.decision.valid_from, new.id)), 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest, vec![old]);
    let now = read_case(&store, &a, case.id).await.unwrap();
    assert!(now.placement.foster_home.address_protected);
    let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    assert_eq!(now.decision_in_force(today).map(|d| d.id), Some(new.id));
    let err = store
        .record_decision(
            &a,
            case.id,
            decision(Uuid::now_v7(), (2025, 1, 1)),
            None,
            audit(&a),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::InvalidArgument(_)));
}

async fn migrations_are_idempotent(backend: Backend) {
    let db = TestDb::new(backend).await;
    let pool = db.pool();
    pool.migrate(&landsby_case::MIGRATIONS).await.unwrap();
    pool.migrate(&landsby_case::MIGRATIONS).await.unwrap();
}

async fn a_retry_after_the_case_closed_gets_the_first_answer(backend: Backend) {
    let (_db, store) = open(backend).await;
    let a = agency();
    let case = store
        .create_case(&a, new_case("cw"), None, audit(&a))
        .await
        .unwrap();
    let idem = |op: &'static str| Idempotency {
        operation: op,
        request_id: Uuid::from_u128(7),
        fingerprint: "f".into(),
    };
    let member = store
        .add_member(
            &a,
            case.id,
            parent(),
            Some(idem("AddVillageMember")),
            audit(&a),
        )
        .await
        .unwrap();
    let recorded = store
        .record_decision(
            &a,
            case.id,
            decision(member.id, (2025, 1, 1)),
            Some(idem("RecordBoardDecision")),
            audit(&a),
        )
        .await
        .unwrap();
    let version = read_case(&store, &a, case.id).await.unwrap().version;
    let close: CaseChange = Box::new(|c| {
        c.status = CaseStatus::Closed;
        c.closed_at = Some(c.updated_at);
        Ok(())
    });
    store
        .update_case(&a, case.id, version, close, case_updated(), audit(&a))
        .await
        .unwrap();
    let again = store
        .add_member(
            &a,
            case.id,
            parent(),
            Some(idem("AddVillageMember")),
            audit(&a),
        )
        .await
        .unwrap();
    assert_eq!(again, member);
    let again = store
        .record_decision(
            &a,
            case.id,
            decision(member.id, (2025, 1, 1)),
            Some(idem("RecordBoardDecision")),
            audit(&a),
        )
        .await
        .unwrap();
    assert_eq!(again, recorded);
    // A new request on the closed case is refused.
    let err = store
        .add_member(&a, case.id, parent(), None, audit(&a))
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::FailedPrecondition(_)));
}
