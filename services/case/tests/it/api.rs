//! The case service through its real gRPC API, over loopback, on SQLite and on PostgreSQL: every RPC,
//! with its bad input, wrong roles, other agencies, stale etags and tampered page tokens.

use crate::support::*;
use landsby_domain::Role;
use landsby_platform::auth::Claims;
use landsby_proto::case as pb;
use landsby_proto::common as cpb;
use landsby_testkit::{AGENCY, Backend, OTHER_AGENCY, TEST_AUDIENCE, TEST_ISSUER, keys};
use std::time::Duration;
use tonic::Code;

landsby_testkit::on_both_backends!(
    a_created_case_reads_back_as_created,
    a_retried_create_with_the_same_request_id_creates_one_case,
    concurrent_retries_with_one_request_id_create_one_case,
    a_request_id_reused_for_another_case_is_refused,
    a_bad_national_id_is_refused_and_nothing_is_created,
    a_national_id_that_disagrees_with_the_birth_date_is_refused,
    every_problem_of_a_request_is_reported_at_once,
    unknown_enum_values_are_refused,
    a_new_case_starts_in_step_one,
    list_pages_through_every_case_once_in_creation_order,
    list_filters_by_caseworker_step_goal_and_status,
    a_child_is_found_by_national_id_through_its_hash_within_need_to_know,
    tampered_and_foreign_page_tokens_are_refused,
    update_changes_only_the_fields_in_the_mask,
    a_stale_etag_is_aborted_and_changes_nothing,
    unknown_and_decision_only_fields_in_a_mask_are_refused,
    a_closed_case_can_be_read_but_not_changed,
    the_village_is_added_to_listed_updated_and_removed,
    village_members_are_validated,
    a_board_decision_sets_the_floor_in_force_and_protects_a_secret_address,
    a_secret_address_cannot_be_unprotected_while_the_board_decision_applies,
    a_board_decision_must_name_parents_of_this_village,
    a_parent_named_in_a_board_decision_cannot_be_removed_or_demoted,
    board_decisions_list_newest_first_in_pages,
    a_missing_malformed_or_expired_token_is_unauthenticated,
    a_token_from_another_issuer_or_key_is_unauthenticated,
    another_agencys_case_does_not_exist,
    roles_without_access_are_denied,
    the_worker_may_read_but_not_write,
    every_call_leaves_an_audit_row_and_the_log_cannot_be_changed,
    every_rpc_refuses_roles_without_access_and_malformed_ids_and_changes_nothing,
    a_member_update_names_known_fields_only,
    get_case_with_the_village_returns_every_member_under_one_audit_row,
);

async fn a_created_case_reads_back_as_created(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let created = cw.create(new_case()).await.unwrap();
    assert_eq!(created.agency, AGENCY);
    assert_eq!(created.status(), pb::CaseStatus::Open);
    assert_eq!(
        created.step(),
        pb::Step::Safety,
        "a new case starts in step 1"
    );
    assert_eq!(created.version, 1);
    assert!(!created.etag.is_empty());
    let read = cw.get(&created.id).await.unwrap();
    assert_eq!(read, created);
    let child = read.child.unwrap();
    assert_eq!(child.national_id, national_id(birth(), 500));
    assert_eq!(child.given_name, "Emma");
}

async fn a_retried_create_with_the_same_request_id_creates_one_case(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let request_id = uuid::Uuid::now_v7().to_string();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let req = cw.req(pb::CreateCaseRequest {
            request_id: request_id.clone(),
            case: Some(new_case()),
        });
        ids.push(
            cw.inner
                .create_case(req)
                .await
                .unwrap()
                .into_inner()
                .case
                .unwrap()
                .id,
        );
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    let all = cw.list(pb::ListCasesRequest::default()).await.unwrap();
    assert_eq!(all.cases.len(), 1);
}

async fn concurrent_retries_with_one_request_id_create_one_case(backend: Backend) {
    let server = server(backend).await;
    let cw = Client::caseworker(&server);
    let request_id = uuid::Uuid::now_v7().to_string();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut client = cw.inner.clone();
        let req = cw.req(pb::CreateCaseRequest {
            request_id: request_id.clone(),
            case: Some(new_case()),
        });
        tasks.push(tokio::spawn(async move { client.create_case(req).await }));
    }
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(r) => {
                ids.insert(r.into_inner().case.unwrap().id);
            }
            // A loser of the race may be told to retry; it must never create a second case.
            Err(s) => assert_eq!(s.code(), Code::Unavailable, "{s:?}"),
        }
    }
    assert_eq!(ids.len(), 1);
    let mut cw = cw;
    assert_eq!(
        cw.list(pb::ListCasesRequest::default())
            .await
            .unwrap()
            .cases
            .len(),
        1
    );
}

async fn a_request_id_reused_for_another_case_is_refused(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let request_id = uuid::Uuid::now_v7().to_string();
    let req = cw.req(pb::CreateCaseRequest {
        request_id: request_id.clone(),
        case: Some(new_case()),
    });
    cw.inner.create_case(req).await.unwrap();
    let mut other = new_case();
    other.child.as_mut().unwrap().given_name = "Nora".into();
    let req = cw.req(pb::CreateCaseRequest {
        request_id,
        case: Some(other),
    });
    let err = cw.inner.create_case(req).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["request_id"]);
    assert_eq!(
        cw.list(pb::ListCasesRequest::default())
            .await
            .unwrap()
            .cases
            .len(),
        1
    );
}

async fn a_bad_national_id_is_refused_and_nothing_is_created(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let good = national_id(birth(), 500);
    let mut broken = good.clone().into_bytes();
    broken[10] = b'0' + (broken[10] - b'0' + 1) % 10;
    for bad in [
        String::from_utf8(broken).unwrap(),
        "1234".into(),
        "abcdefghijk".into(),
    ] {
        let mut case = new_case();
        case.child.as_mut().unwrap().national_id = bad.clone();
        let err = cw.create(case).await.unwrap_err();
        assert_eq!(violated_fields(&err), ["case.child.national_id"]);
        assert!(
            !err.message().contains(&bad),
            "the error must not repeat the number"
        );
    }
    assert!(
        cw.list(pb::ListCasesRequest::default())
            .await
            .unwrap()
            .cases
            .is_empty()
    );
}

async fn a_national_id_that_disagrees_with_the_birth_date_is_refused(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let mut case = new_case();
    case.child.as_mut().unwrap().birth_date = Some(date(2018, 5, 15));
    let err = cw.create(case).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["case.child.national_id"]);
    // A D-number for the same date is fine.
    let mut case = new_case();
    let mut d = national_id(birth(), 500).into_bytes();
    d[0] += 4;
    let d = String::from_utf8(d).unwrap();
    if landsby_domain::NationalId::parse(&d).is_ok() {
        case.child.as_mut().unwrap().national_id = d;
        cw.create(case).await.unwrap();
    }
}

async fn every_problem_of_a_request_is_reported_at_once(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let mut case = new_case();
    {
        let child = case.child.as_mut().unwrap();
        child.given_name = "   ".into();
        child.family_name = String::new();
        child.birth_date = Some(date(2018, 2, 30));
    }
    case.placement
        .as_mut()
        .unwrap()
        .foster_home
        .as_mut()
        .unwrap()
        .address
        .as_mut()
        .unwrap()
        .postal_code = "15".into();
    case.assigned_caseworker = String::new();
    let err = cw.create(case).await.unwrap_err();
    let fields = violated_fields(&err);
    for f in [
        "case.child.given_name",
        "case.child.family_name",
        "case.child.birth_date",
        "case.placement.foster_home.address.postal_code",
        "case.assigned_caseworker",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
    }
    let err = cw.create(pb::Case::default()).await.unwrap_err();
    let fields = violated_fields(&err);
    for f in [
        "case.child",
        "case.placement",
        "case.goal",
        "case.assigned_caseworker",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
    }
    let req = cw.req(pb::CreateCaseRequest {
        request_id: "not-a-uuid".into(),
        case: None,
    });
    let fields = violated_fields(&cw.inner.create_case(req).await.unwrap_err());
    assert_eq!(fields, ["request_id", "case"]);
}

async fn unknown_enum_values_are_refused(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let mut case = new_case();
    case.goal = 99;
    case.placement.as_mut().unwrap().kind = 42;
    let fields = violated_fields(&cw.create(case).await.unwrap_err());
    assert_eq!(fields, ["case.placement.kind", "case.goal"]);
    let err = cw
        .list(pb::ListCasesRequest {
            step: 7,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["step"]);
}

async fn a_new_case_starts_in_step_one(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    for step in [pb::Step::Involvement, pb::Step::Responsibility] {
        let mut case = new_case();
        case.step = step.into();
        assert_eq!(
            violated_fields(&cw.create(case).await.unwrap_err()),
            ["case.step"]
        );
    }
    let mut case = new_case();
    case.step = pb::Step::Safety.into();
    assert_eq!(cw.create(case).await.unwrap().step(), pb::Step::Safety);
}

async fn list_pages_through_every_case_once_in_creation_order(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let mut created = Vec::new();
    for _ in 0..7 {
        created.push(cw.create(new_case()).await.unwrap().id);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = cw
            .list(pb::ListCasesRequest {
                page_size: 3,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap();
        pages += 1;
        assert!(page.cases.len() <= 3);
        seen.extend(page.cases.into_iter().map(|c| c.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, created);
    assert_eq!(pages, 3);
    let err = cw
        .list(pb::ListCasesRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["page_size"]);
}

async fn list_filters_by_caseworker_step_goal_and_status(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::team_lead(&server);
    let a = cw.create(new_case()).await.unwrap();
    let mut other = new_case();
    other.assigned_caseworker = "caseworker-2".into();
    other.goal = pb::Goal::LongTermPlacement.into();
    let b = cw.create(other).await.unwrap();
    let ids = |r: pb::ListCasesResponse| r.cases.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(cw
            .list(pb::ListCasesRequest {
                assigned_caseworker: "caseworker-2".into(),
                ..Default::default()
            })
            .await
            .unwrap()),
        [b.id.as_str()]
    );
    assert_eq!(
        ids(cw
            .list(pb::ListCasesRequest {
                step: pb::Step::Involvement.into(),
                ..Default::default()
            })
            .await
            .unwrap()),
        Vec::<String>::new(),
        "every case starts in step 1"
    );
    assert_eq!(
        ids(cw
            .list(pb::ListCasesRequest {
                goal: pb::Goal::LongTermPlacement.into(),
                ..Default::default()
            })
            .await
            .unwrap()),
        [b.id.as_str()]
    );
    let req = cw.req(pb::CloseCaseRequest {
        case_id: a.id.clone(),
        etag: a.etag.clone(),
        reason: pb::CloseReason::Reunified.into(),
    });
    cw.inner.close_case(req).await.unwrap();
    assert_eq!(
        ids(cw
            .list(pb::ListCasesRequest {
                status: pb::CaseStatus::Open.into(),
                ..Default::default()
            })
            .await
            .unwrap()),
        [b.id.as_str()]
    );
    assert_eq!(
        ids(cw
            .list(pb::ListCasesRequest {
                status: pb::CaseStatus::Closed.into(),
                ..Default::default()
            })
            .await
            .unwrap()),
        [a.id.as_str()]
    );
}

async fn tampered_and_foreign_page_tokens_are_refused(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    for _ in 0..3 {
        cw.create(new_case()).await.unwrap();
    }
    let page = cw
        .list(pb::ListCasesRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let token = page.next_page_token;
    assert!(!token.is_empty());
    let mut tampered: Vec<char> = token.chars().collect();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    for bad in [
        tampered,
        "garbage".into(),
        format!("{token}x"),
        token[..token.len() - 2].to_owned(),
    ] {
        let err = cw
            .list(pb::ListCasesRequest {
                page_size: 1,
                page_token: bad,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(violated_fields(&err), ["page_token"]);
    }
    // The same token with other filters, or from another agency, is not this list's token.
    let err = cw
        .list(pb::ListCasesRequest {
            page_size: 1,
            page_token: token.clone(),
            step: pb::Step::Safety.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["page_token"]);
    let mut other = Client::as_role(&server, "cw-bergen", OTHER_AGENCY, &[Role::Caseworker]);
    let err = other
        .list(pb::ListCasesRequest {
            page_size: 1,
            page_token: token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["page_token"]);
}

async fn update_changes_only_the_fields_in_the_mask(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::team_lead(&server);
    let created = cw.create(new_case()).await.unwrap();
    let mut change = created.clone();
    change.child.as_mut().unwrap().given_name = "Emma Sofie".into();
    change.child.as_mut().unwrap().family_name = "Ignored".into();
    change.assigned_caseworker = "caseworker-9".into();
    let req = cw.req(pb::UpdateCaseRequest {
        case: Some(change),
        update_mask: mask(&["child.given_name", "assigned_caseworker"]),
    });
    let updated = cw
        .inner
        .update_case(req)
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(updated.child.as_ref().unwrap().given_name, "Emma Sofie");
    assert_eq!(updated.child.as_ref().unwrap().family_name, "Nordmann");
    assert_eq!(updated.assigned_caseworker, "caseworker-9");
    assert_eq!(updated.version, 2);
    assert_ne!(updated.etag, created.etag);
    assert_eq!(cw.get(&created.id).await.unwrap(), updated);

    // The whole record is checked: a new birth date must still agree with the identity number.
    let mut change = updated.clone();
    change.child.as_mut().unwrap().birth_date = Some(date(2019, 1, 1));
    let req = cw.req(pb::UpdateCaseRequest {
        case: Some(change),
        update_mask: mask(&["child.birth_date"]),
    });
    let err = cw.inner.update_case(req).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["case.child.national_id"]);
    assert_eq!(cw.get(&created.id).await.unwrap(), updated);
}

async fn a_stale_etag_is_aborted_and_changes_nothing(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::team_lead(&server);
    let created = cw.create(new_case()).await.unwrap();
    let mut first = created.clone();
    first.assigned_caseworker = "caseworker-2".into();
    let req = cw.req(pb::UpdateCaseRequest {
        case: Some(first),
        update_mask: mask(&["assigned_caseworker"]),
    });
    let after_first = cw
        .inner
        .update_case(req)
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    let mut second = created.clone(); // still carries the old etag
    second.assigned_caseworker = "caseworker-3".into();
    let req = cw.req(pb::UpdateCaseRequest {
        case: Some(second),
        update_mask: mask(&["assigned_caseworker"]),
    });
    let err = cw.inner.update_case(req).await.unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(cw.get(&created.id).await.unwrap(), after_first);
    let mut no_etag = after_first.clone();
    no_etag.etag = String::new();
    let req = cw.req(pb::UpdateCaseRequest {
        case: Some(no_etag),
        update_mask: mask(&["assigned_caseworker"]),
    });
    assert_eq!(
        violated_fields(&cw.inner.update_case(req).await.unwrap_err()),
        ["case.etag"]
    );
}

async fn unknown_and_decision_only_fields_in_a_mask_are_refused(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let created = cw.create(new_case()).await.unwrap();
    for (paths, field) in [
        (vec!["child.shoe_size"], "update_mask.paths[0]"),
        (vec!["assigned_caseworker", "step"], "update_mask.paths[1]"),
        (vec!["goal"], "update_mask.paths[0]"),
        (vec!["id"], "update_mask.paths[0]"),
        (vec![], "update_mask"),
    ] {
        let req = cw.req(pb::UpdateCaseRequest {
            case: Some(created.clone()),
            update_mask: mask(&paths),
        });
        let err = cw.inner.update_case(req).await.unwrap_err();
        assert_eq!(violated_fields(&err), [field], "{paths:?}");
    }
    assert_eq!(cw.get(&created.id).await.unwrap().version, 1);
}

async fn a_closed_case_can_be_read_but_not_changed(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::team_lead(&server);
    let created = cw.create(new_case()).await.unwrap();
    let req = cw.req(pb::CloseCaseRequest {
        case_id: created.id.clone(),
        etag: created.etag.clone(),
        reason: 0,
    });
    assert_eq!(
        violated_fields(&cw.inner.close_case(req).await.unwrap_err()),
        ["reason"]
    );
    let req = cw.req(pb::CloseCaseRequest {
        case_id: created.id.clone(),
        etag: created.etag.clone(),
        reason: pb::CloseReason::Reunified.into(),
    });
    let closed = cw
        .inner
        .close_case(req)
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(closed.status(), pb::CaseStatus::Closed);
    assert_eq!(closed.close_reason(), pb::CloseReason::Reunified);
    assert!(closed.close_time.is_some());
    assert_eq!(cw.get(&created.id).await.unwrap(), closed);
    let req = cw.req(pb::UpdateCaseRequest {
        case: Some(closed.clone()),
        update_mask: mask(&["assigned_caseworker"]),
    });
    assert_eq!(
        precondition_kinds(&cw.inner.update_case(req).await.unwrap_err()),
        ["CASE_CLOSED"]
    );
    assert_eq!(
        precondition_kinds(&cw.add_member(&created.id, mother()).await.unwrap_err()),
        ["CASE_CLOSED"]
    );
    let req = cw.req(pb::CloseCaseRequest {
        case_id: created.id.clone(),
        etag: closed.etag.clone(),
        reason: pb::CloseReason::Other.into(),
    });
    assert_eq!(
        precondition_kinds(&cw.inner.close_case(req).await.unwrap_err()),
        ["CASE_CLOSED"]
    );
}

async fn the_village_is_added_to_listed_updated_and_removed(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let mum = cw.add_member(&case.id, mother()).await.unwrap();
    assert_eq!(
        mum.affiliation(),
        pb::Affiliation::BirthFamily,
        "the side follows the role"
    );
    assert_eq!(mum.preferred_language(), cpb::Language::Nn);
    assert_eq!(mum.contact_points.len(), 2);
    let foster = cw.add_member(&case.id, foster_parent()).await.unwrap();
    assert_eq!(foster.affiliation(), pb::Affiliation::FosterFamily);
    assert_eq!(
        foster.preferred_language(),
        cpb::Language::Nb,
        "Bokmål when nothing is said"
    );

    // Adding with a request id twice adds once.
    let request_id = uuid::Uuid::now_v7().to_string();
    let mut added = Vec::new();
    for _ in 0..2 {
        let req = cw.req(pb::AddVillageMemberRequest {
            case_id: case.id.clone(),
            request_id: request_id.clone(),
            member: Some(pb::VillageMember {
                role: pb::VillageRole::Grandparent.into(),
                display_name: "Mormor".into(),
                ..Default::default()
            }),
        });
        added.push(
            cw.inner
                .add_village_member(req)
                .await
                .unwrap()
                .into_inner()
                .member
                .unwrap()
                .id,
        );
    }
    assert_eq!(added[0], added[1]);

    let list = |page_token: String| pb::ListVillageMembersRequest {
        case_id: case.id.clone(),
        page_size: 2,
        page_token,
    };
    let first = cw
        .inner
        .list_village_members(cw.req(list(String::new())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        first
            .members
            .iter()
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>(),
        [mum.id.as_str(), foster.id.as_str()]
    );
    let second = cw
        .inner
        .list_village_members(cw.req(list(first.next_page_token)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.members.len(), 1);
    assert!(second.next_page_token.is_empty());

    let mut change = mum.clone();
    change.informed = true;
    change.prepared = true;
    change.display_name = "Kari N.".into();
    let req = cw.req(pb::UpdateVillageMemberRequest {
        member: Some(change),
        update_mask: mask(&["informed", "prepared"]),
    });
    let updated = cw
        .inner
        .update_village_member(req)
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert!(updated.informed && updated.prepared);
    assert_eq!(updated.display_name, "Kari Nordmann", "not in the mask");
    assert_eq!(updated.version, 2);

    let req = cw.req(pb::RemoveVillageMemberRequest {
        case_id: case.id.clone(),
        member_id: foster.id.clone(),
        etag: "\"9\"".into(),
    });
    assert_eq!(
        cw.inner
            .remove_village_member(req)
            .await
            .unwrap_err()
            .code(),
        Code::Aborted
    );
    let req = cw.req(pb::RemoveVillageMemberRequest {
        case_id: case.id.clone(),
        member_id: foster.id.clone(),
        etag: foster.etag.clone(),
    });
    cw.inner.remove_village_member(req).await.unwrap();
    let all = cw
        .inner
        .list_village_members(cw.req(pb::ListVillageMembersRequest {
            case_id: case.id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(all.members.iter().all(|m| m.id != foster.id));
    let req = cw.req(pb::RemoveVillageMemberRequest {
        case_id: case.id.clone(),
        member_id: foster.id.clone(),
        etag: foster.etag,
    });
    assert_eq!(
        cw.inner
            .remove_village_member(req)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    // Every village change moves the case's version.
    assert!(cw.get(&case.id).await.unwrap().version > case.version + 3);
}

async fn village_members_are_validated(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let mut bad = mother();
    bad.role = 0;
    bad.display_name = String::new();
    bad.preferred_language = 77;
    bad.contact_points = vec![
        cpb::ContactPoint {
            kind: cpb::ContactKind::Email.into(),
            value: "not-an-email".into(),
        },
        cpb::ContactPoint {
            kind: cpb::ContactKind::Phone.into(),
            value: "12".into(),
        },
        cpb::ContactPoint {
            kind: 0,
            value: "x".into(),
        },
    ];
    let fields = violated_fields(&cw.add_member(&case.id, bad).await.unwrap_err());
    assert_eq!(
        fields,
        [
            "member.role",
            "member.display_name",
            "member.contact_points[0].value",
            "member.contact_points[1].value",
            "member.contact_points[2].kind",
            "member.preferred_language",
        ]
    );
    let err = cw.add_member("nope", mother()).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["case_id"]);
    let err = cw
        .add_member(&uuid::Uuid::now_v7().to_string(), mother())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

async fn a_board_decision_sets_the_floor_in_force_and_protects_a_secret_address(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    assert!(case.board_decision.is_none());
    let mum = cw.add_member(&case.id, mother()).await.unwrap();
    let recorded = cw.record(&case.id, decision(&mum.id, true)).await.unwrap();
    assert_eq!(recorded.recorded_by, "caseworker-1");
    assert_eq!(recorded.floors[0].min_visits, 4);
    let now = cw.get(&case.id).await.unwrap();
    assert_eq!(
        now.board_decision.as_ref().map(|d| d.id.as_str()),
        Some(recorded.id.as_str())
    );
    assert!(
        now.placement
            .unwrap()
            .foster_home
            .unwrap()
            .address_protected,
        "the board's secret address protects it"
    );
    // A decision that starts in the future is recorded but not yet in force.
    let mut later = decision(&mum.id, true);
    later.valid_from = Some(date(2099, 1, 1));
    later.decided_on = Some(date(2098, 12, 1));
    cw.record(&case.id, later).await.unwrap();
    assert_eq!(
        cw.get(&case.id).await.unwrap().board_decision.map(|d| d.id),
        Some(recorded.id)
    );
}

async fn a_secret_address_cannot_be_unprotected_while_the_board_decision_applies(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let mum = cw.add_member(&case.id, mother()).await.unwrap();
    // A decision that keeps the address secret from a later date protects it already now.
    let mut later = decision(&mum.id, true);
    later.decided_on = Some(date(2098, 12, 1));
    later.valid_from = Some(date(2099, 1, 1));
    cw.record(&case.id, later).await.unwrap();
    let current = cw.get(&case.id).await.unwrap();
    assert!(current.board_decision.is_none(), "not in force yet");
    assert!(
        current
            .placement
            .as_ref()
            .unwrap()
            .foster_home
            .as_ref()
            .unwrap()
            .address_protected
    );
    let mut change = current.clone();
    change
        .placement
        .as_mut()
        .unwrap()
        .foster_home
        .as_mut()
        .unwrap()
        .address_protected = false;
    let req = cw.req(pb::UpdateCaseRequest {
        case: Some(change),
        update_mask: mask(&["placement.foster_home.address_protected"]),
    });
    assert_eq!(
        precondition_kinds(&cw.inner.update_case(req).await.unwrap_err()),
        ["BOARD_SECRET_ADDRESS"]
    );
    assert_eq!(cw.get(&case.id).await.unwrap(), current);
}

async fn a_board_decision_must_name_parents_of_this_village(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let foster = cw.add_member(&case.id, foster_parent()).await.unwrap();
    let stranger = uuid::Uuid::now_v7().to_string();
    let err = cw
        .record(&case.id, decision(&foster.id, false))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["decision.floors[0].parent_id"]);
    let err = cw
        .record(&case.id, decision(&stranger, false))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["decision.floors[0].parent_id"]);
    let mut bad = decision("x", false);
    bad.valid_to = Some(date(2025, 1, 1));
    bad.floors[0].min_visits = -1;
    bad.floors[0].period = 0;
    let fields = violated_fields(&cw.record(&case.id, bad).await.unwrap_err());
    assert_eq!(
        fields,
        [
            "decision.floors[0].parent_id",
            "decision.floors[0].min_visits",
            "decision.floors[0].period",
            "decision.valid_to"
        ]
    );
    let mut none = decision(&foster.id, false);
    none.floors.clear();
    assert_eq!(
        violated_fields(&cw.record(&case.id, none).await.unwrap_err()),
        ["decision.floors"]
    );
    assert!(cw.get(&case.id).await.unwrap().board_decision.is_none());
}

async fn a_parent_named_in_a_board_decision_cannot_be_removed_or_demoted(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let mum = cw.add_member(&case.id, mother()).await.unwrap();
    cw.record(&case.id, decision(&mum.id, false)).await.unwrap();
    let req = cw.req(pb::RemoveVillageMemberRequest {
        case_id: case.id.clone(),
        member_id: mum.id.clone(),
        etag: mum.etag.clone(),
    });
    assert_eq!(
        precondition_kinds(&cw.inner.remove_village_member(req).await.unwrap_err()),
        ["MEMBER_IN_BOARD_DECISION"]
    );
    let mut change = mum.clone();
    change.has_visitation_rights = false;
    let req = cw.req(pb::UpdateVillageMemberRequest {
        member: Some(change),
        update_mask: mask(&["has_visitation_rights"]),
    });
    assert_eq!(
        precondition_kinds(&cw.inner.update_village_member(req).await.unwrap_err()),
        ["MEMBER_IN_BOARD_DECISION"]
    );
}

async fn board_decisions_list_newest_first_in_pages(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let mum = cw.add_member(&case.id, mother()).await.unwrap();
    let mut ids = Vec::new();
    for year in [2023, 2025, 2024] {
        let mut d = decision(&mum.id, false);
        d.decided_on = Some(date(year, 1, 1));
        d.valid_from = Some(date(year, 2, 1));
        ids.push((year, cw.record(&case.id, d).await.unwrap().id));
    }
    ids.sort_by_key(|(year, _)| std::cmp::Reverse(*year));
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let req = cw.req(pb::ListBoardDecisionsRequest {
            case_id: case.id.clone(),
            page_size: 2,
            page_token: token,
        });
        let page = cw
            .inner
            .list_board_decisions(req)
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.decisions.into_iter().map(|d| d.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ids.into_iter().map(|(_, id)| id).collect::<Vec<_>>());
    let req = cw.req(pb::ListBoardDecisionsRequest {
        case_id: case.id.clone(),
        page_size: 2,
        page_token: "x".into(),
    });
    assert_eq!(
        violated_fields(&cw.inner.list_board_decisions(req).await.unwrap_err()),
        ["page_token"]
    );
}

async fn a_missing_malformed_or_expired_token_is_unauthenticated(backend: Backend) {
    let server = server(backend).await;
    let mut client =
        landsby_proto::case::case_service_client::CaseServiceClient::new(server.channel());
    let err = client
        .get_case(pb::GetCaseRequest {
            case_id: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut expired = Claims::new(
        "cw",
        AGENCY,
        &[Role::Caseworker],
        TEST_ISSUER,
        TEST_AUDIENCE,
        Duration::from_secs(1),
    );
    expired.exp = 1_000_000_000; // 2001
    for token in [keys().sign(&expired), "not.a.jwt".into(), String::new()] {
        let c = Client::new(&server, token);
        let err = client
            .get_case(c.req(pb::GetCaseRequest {
                case_id: uuid::Uuid::now_v7().to_string(),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    let mut bad_agency = Claims::new(
        "cw",
        "oslo",
        &[Role::Caseworker],
        TEST_ISSUER,
        TEST_AUDIENCE,
        Duration::from_secs(60),
    );
    bad_agency.agency = "oslo".into();
    let c = Client::new(&server, keys().sign(&bad_agency));
    let err = client
        .list_cases(c.req(pb::ListCasesRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

async fn a_token_from_another_issuer_or_key_is_unauthenticated(backend: Backend) {
    let server = server(backend).await;
    let wrong_issuer = Claims::new(
        "cw",
        AGENCY,
        &[Role::Caseworker],
        "https://evil.example",
        TEST_AUDIENCE,
        Duration::from_secs(60),
    );
    let wrong_audience = Claims::new(
        "cw",
        AGENCY,
        &[Role::Caseworker],
        TEST_ISSUER,
        "other-api",
        Duration::from_secs(60),
    );
    let (private, _) = landsby_platform::auth::generate_p256_pem().unwrap();
    let stranger = landsby_platform::auth::SigningKey::from_pem(private.as_bytes(), None).unwrap();
    let good_claims = Claims::new(
        "cw",
        AGENCY,
        &[Role::Caseworker],
        TEST_ISSUER,
        TEST_AUDIENCE,
        Duration::from_secs(60),
    );
    for token in [
        keys().sign(&wrong_issuer),
        keys().sign(&wrong_audience),
        stranger.sign(&good_claims).unwrap(),
    ] {
        let mut c = Client::new(&server, token);
        let err = c.list(pb::ListCasesRequest::default()).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
}

async fn another_agencys_case_does_not_exist(backend: Backend) {
    let server = server(backend).await;
    let mut oslo = Client::caseworker(&server);
    let case = oslo.create(new_case()).await.unwrap();
    let mum = oslo.add_member(&case.id, mother()).await.unwrap();
    let mut bergen = Client::as_role(&server, "cw-bergen", OTHER_AGENCY, &[Role::Caseworker]);
    assert_eq!(
        bergen.get(&case.id).await.unwrap_err().code(),
        Code::NotFound
    );
    let missing = bergen
        .get(&uuid::Uuid::now_v7().to_string())
        .await
        .unwrap_err();
    let foreign = bergen.get(&case.id).await.unwrap_err();
    assert_eq!(
        missing.message(),
        foreign.message(),
        "a foreign case looks exactly like a missing one"
    );
    assert!(
        bergen
            .list(pb::ListCasesRequest::default())
            .await
            .unwrap()
            .cases
            .is_empty()
    );
    let req = bergen.req(pb::UpdateCaseRequest {
        case: Some(case.clone()),
        update_mask: mask(&["assigned_caseworker"]),
    });
    assert_eq!(
        bergen.inner.update_case(req).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        bergen
            .add_member(&case.id, mother())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        bergen
            .record(&case.id, decision(&mum.id, false))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let req = bergen.req(pb::ListVillageMembersRequest {
        case_id: case.id.clone(),
        ..Default::default()
    });
    assert_eq!(
        bergen
            .inner
            .list_village_members(req)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let req = bergen.req(pb::RemoveVillageMemberRequest {
        case_id: case.id.clone(),
        member_id: mum.id.clone(),
        etag: mum.etag.clone(),
    });
    assert_eq!(
        bergen
            .inner
            .remove_village_member(req)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let req = bergen.req(pb::ListBoardDecisionsRequest {
        case_id: case.id.clone(),
        ..Default::default()
    });
    assert_eq!(
        bergen
            .inner
            .list_board_decisions(req)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let req = bergen.req(pb::CloseCaseRequest {
        case_id: case.id.clone(),
        etag: case.etag.clone(),
        reason: pb::CloseReason::Other.into(),
    });
    assert_eq!(
        bergen.inner.close_case(req).await.unwrap_err().code(),
        Code::NotFound
    );
    // Nothing changed in Oslo.
    assert_eq!(oslo.get(&case.id).await.unwrap().version, case.version + 1);
}

async fn roles_without_access_are_denied(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    for roles in [vec![Role::Auditor], vec![Role::AgencyAdmin], vec![]] {
        let mut c = Client::as_role(&server, "someone", AGENCY, &roles);
        let err = c.get(&case.id).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{roles:?}");
        assert_eq!(
            c.create(new_case()).await.unwrap_err().code(),
            Code::PermissionDenied
        );
        let err = c.list(pb::ListCasesRequest::default()).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
    }
    let mut lead = Client::as_role(&server, "lead", AGENCY, &[Role::TeamLead]);
    assert_eq!(lead.get(&case.id).await.unwrap().id, case.id);
    assert_eq!(
        cw.list(pb::ListCasesRequest::default())
            .await
            .unwrap()
            .cases
            .len(),
        1
    );
}

async fn the_worker_may_read_but_not_write(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let mut worker = Client::as_role(&server, "landsby-worker", AGENCY, &[Role::Service]);
    assert_eq!(worker.get(&case.id).await.unwrap().id, case.id);
    // The case with its village, as the visitation service reads it on the worker's behalf.
    let req = worker.req(pb::GetCaseRequest {
        case_id: case.id.clone(),
        view: pb::CaseView::WithVillage.into(),
    });
    worker.inner.get_case(req).await.unwrap();
    // It reads nothing it does not need: not the village page by page, nor the decisions, reviews
    // or readiness one by one.
    let req = worker.req(pb::ListVillageMembersRequest {
        case_id: case.id.clone(),
        ..Default::default()
    });
    assert_eq!(
        worker
            .inner
            .list_village_members(req)
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let req = worker.req(pb::ListBoardDecisionsRequest {
        case_id: case.id.clone(),
        ..Default::default()
    });
    assert_eq!(
        worker
            .inner
            .list_board_decisions(req)
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let req = worker.req(pb::GetReadinessRequest {
        case_id: case.id.clone(),
    });
    assert_eq!(
        worker.inner.get_readiness(req).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        worker.create(new_case()).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        worker
            .add_member(&case.id, mother())
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
}

async fn every_call_leaves_an_audit_row_and_the_log_cannot_be_changed(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    cw.get(&case.id).await.unwrap();
    let mut auditor = Client::as_role(&server, "auditor-1", AGENCY, &[Role::Auditor]);
    auditor.get(&case.id).await.unwrap_err();
    let mut bergen = Client::as_role(&server, "cw-bergen", OTHER_AGENCY, &[Role::Caseworker]);
    bergen.get(&case.id).await.unwrap_err();
    cw.create(pb::Case::default()).await.unwrap_err();

    let rows = crate::audit_rows(&server).await;
    let expect = [
        (
            "caseworker-1",
            "landsby.case.v1.CaseService/CreateCase",
            Some(case.id.as_str()),
            "OK",
        ),
        (
            "caseworker-1",
            "landsby.case.v1.CaseService/GetCase",
            Some(case.id.as_str()),
            "OK",
        ),
        (
            "auditor-1",
            "landsby.case.v1.CaseService/GetCase",
            None,
            "PERMISSION_DENIED",
        ),
        (
            "cw-bergen",
            "landsby.case.v1.CaseService/GetCase",
            Some(case.id.as_str()),
            "NOT_FOUND",
        ),
        (
            "caseworker-1",
            "landsby.case.v1.CaseService/CreateCase",
            None,
            "INVALID_ARGUMENT",
        ),
    ];
    assert_eq!(rows.len(), expect.len(), "{rows:?}");
    for (row, (subject, rpc, case_id, outcome)) in rows.iter().zip(expect) {
        assert_eq!(row.subject, subject);
        assert_eq!(row.rpc, rpc);
        assert_eq!(
            row.case_id.map(|c| c.to_string()).as_deref(),
            case_id,
            "{row:?}"
        );
        assert_eq!(row.outcome, outcome);
    }
    assert_eq!(rows[3].agency, OTHER_AGENCY);
    assert!(
        crate::try_to_change_audit_log(&server).await.is_err(),
        "the audit log must refuse UPDATE and DELETE"
    );
}

/// Calls an RPC of the client and returns the error it must give.
macro_rules! refused {
    ($client:expr, $rpc:ident, $request:expr) => {{
        let request = $client.req($request);
        $client
            .inner
            .$rpc(request)
            .await
            .expect_err(stringify!($rpc))
    }};
}

async fn every_rpc_refuses_roles_without_access_and_malformed_ids_and_changes_nothing(
    backend: Backend,
) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let mum = cw.add_member(&case.id, mother()).await.unwrap();
    let before = cw.get(&case.id).await.unwrap();
    let id = || case.id.clone();
    let mid = || mum.id.clone();

    let mut auditor = Client::as_role(&server, "auditor-1", AGENCY, &[Role::Auditor]);
    let denied = [
        refused!(
            auditor,
            create_case,
            pb::CreateCaseRequest {
                request_id: String::new(),
                case: Some(new_case())
            }
        ),
        refused!(
            auditor,
            get_case,
            pb::GetCaseRequest {
                case_id: id(),
                ..Default::default()
            }
        ),
        refused!(auditor, list_cases, pb::ListCasesRequest::default()),
        refused!(
            auditor,
            update_case,
            pb::UpdateCaseRequest {
                case: Some(before.clone()),
                update_mask: mask(&["assigned_caseworker"])
            }
        ),
        refused!(
            auditor,
            close_case,
            pb::CloseCaseRequest {
                case_id: id(),
                etag: before.etag.clone(),
                reason: pb::CloseReason::Other.into()
            }
        ),
        refused!(
            auditor,
            add_village_member,
            pb::AddVillageMemberRequest {
                case_id: id(),
                request_id: String::new(),
                member: Some(mother())
            }
        ),
        refused!(
            auditor,
            update_village_member,
            pb::UpdateVillageMemberRequest {
                member: Some(mum.clone()),
                update_mask: mask(&["informed"])
            }
        ),
        refused!(
            auditor,
            remove_village_member,
            pb::RemoveVillageMemberRequest {
                case_id: id(),
                member_id: mid(),
                etag: mum.etag.clone()
            }
        ),
        refused!(
            auditor,
            list_village_members,
            pb::ListVillageMembersRequest {
                case_id: id(),
                ..Default::default()
            }
        ),
        refused!(
            auditor,
            record_board_decision,
            pb::RecordBoardDecisionRequest {
                case_id: id(),
                request_id: String::new(),
                decision: Some(decision(&mum.id, false))
            }
        ),
        refused!(
            auditor,
            list_board_decisions,
            pb::ListBoardDecisionsRequest {
                case_id: id(),
                ..Default::default()
            }
        ),
    ];
    for status in &denied {
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }

    let bad = || "not-a-uuid".to_owned();
    let cases: Vec<(tonic::Status, Vec<&str>)> = vec![
        (
            refused!(
                cw,
                create_case,
                pb::CreateCaseRequest {
                    request_id: bad(),
                    case: None
                }
            ),
            vec!["request_id", "case"],
        ),
        (
            refused!(
                cw,
                get_case,
                pb::GetCaseRequest {
                    case_id: bad(),
                    ..Default::default()
                }
            ),
            vec!["case_id"],
        ),
        (
            refused!(
                cw,
                list_cases,
                pb::ListCasesRequest {
                    page_size: -5,
                    goal: 9,
                    ..Default::default()
                }
            ),
            vec!["goal", "page_size"],
        ),
        (
            refused!(
                cw,
                update_case,
                pb::UpdateCaseRequest {
                    case: Some(pb::Case {
                        id: bad(),
                        ..Default::default()
                    }),
                    update_mask: None
                }
            ),
            vec!["case.id", "case.etag", "update_mask"],
        ),
        (
            refused!(
                cw,
                close_case,
                pb::CloseCaseRequest {
                    case_id: bad(),
                    etag: String::new(),
                    reason: 0
                }
            ),
            vec!["case_id", "reason", "etag"],
        ),
        (
            refused!(
                cw,
                add_village_member,
                pb::AddVillageMemberRequest {
                    case_id: bad(),
                    request_id: bad(),
                    member: None
                }
            ),
            vec!["case_id", "request_id", "member"],
        ),
        (
            refused!(
                cw,
                update_village_member,
                pb::UpdateVillageMemberRequest {
                    member: Some(pb::VillageMember {
                        id: bad(),
                        case_id: bad(),
                        ..Default::default()
                    }),
                    update_mask: None
                }
            ),
            vec!["member.case_id", "member.id", "member.etag", "update_mask"],
        ),
        (
            refused!(
                cw,
                remove_village_member,
                pb::RemoveVillageMemberRequest {
                    case_id: bad(),
                    member_id: bad(),
                    etag: "7".into()
                }
            ),
            vec!["case_id", "member_id", "etag"],
        ),
        (
            refused!(
                cw,
                list_village_members,
                pb::ListVillageMembersRequest {
                    case_id: bad(),
                    page_size: -1,
                    page_token: String::new()
                }
            ),
            vec!["case_id", "page_size"],
        ),
        (
            refused!(
                cw,
                record_board_decision,
                pb::RecordBoardDecisionRequest {
                    case_id: bad(),
                    request_id: String::new(),
                    decision: None
                }
            ),
            vec!["case_id", "decision"],
        ),
        (
            refused!(
                cw,
                list_board_decisions,
                pb::ListBoardDecisionsRequest {
                    case_id: bad(),
                    page_size: -1,
                    page_token: String::new()
                }
            ),
            vec!["case_id", "page_size"],
        ),
    ];
    for (status, fields) in cases {
        assert_eq!(violated_fields(&status), fields, "{status:?}");
    }
    assert_eq!(
        cw.get(&case.id).await.unwrap(),
        before,
        "refused calls change nothing"
    );
    assert_eq!(
        cw.list(pb::ListCasesRequest::default())
            .await
            .unwrap()
            .cases
            .len(),
        1
    );
}

async fn a_member_update_names_known_fields_only(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let mum = cw.add_member(&case.id, mother()).await.unwrap();
    for (paths, field) in [
        (vec!["nickname"], "update_mask.paths[0]"),
        (vec!["informed", "case_id"], "update_mask.paths[1]"),
        (vec![], "update_mask"),
    ] {
        let req = cw.req(pb::UpdateVillageMemberRequest {
            member: Some(mum.clone()),
            update_mask: mask(&paths),
        });
        let err = cw.inner.update_village_member(req).await.unwrap_err();
        assert_eq!(violated_fields(&err), [field], "{paths:?}");
    }
    let mut change = mum.clone();
    change.role = pb::VillageRole::SupportPerson.into();
    change.has_visitation_rights = false;
    let req = cw.req(pb::UpdateVillageMemberRequest {
        member: Some(change),
        update_mask: mask(&["role", "has_visitation_rights"]),
    });
    let updated = cw
        .inner
        .update_village_member(req)
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(updated.role(), pb::VillageRole::SupportPerson);
    assert_eq!(updated.affiliation(), pb::Affiliation::BirthFamily);
}

async fn a_child_is_found_by_national_id_through_its_hash_within_need_to_know(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let emma = national_id(birth(), 500);
    let other = national_id(birth(), 510);
    let mine = cw.create(new_case()).await.unwrap().id;
    // A second case of the same child (an earlier placement, closed), and another child's case.
    let again = cw.create(new_case()).await.unwrap().id;
    let mut theirs = new_case();
    theirs.child.as_mut().unwrap().national_id = other.clone();
    let theirs = cw.create(theirs).await.unwrap().id;
    // The same child, but not caseworker-1's case: need to know hides it.
    let hidden = cw.create(others_case()).await.unwrap().id;
    let by = |nin: &str| pb::ListCasesRequest {
        child_national_id: nin.into(),
        ..Default::default()
    };
    let ids = |r: pb::ListCasesResponse| {
        let mut ids: Vec<String> = r.cases.into_iter().map(|c| c.id).collect();
        ids.sort();
        ids
    };
    let mut expected = vec![mine.clone(), again];
    expected.sort();
    assert_eq!(ids(cw.list(by(&emma)).await.unwrap()), expected);
    // Spaces around it are trimmed, as on create.
    assert_eq!(
        ids(cw.list(by(&format!(" {emma} "))).await.unwrap()),
        expected
    );
    assert_eq!(ids(cw.list(by(&other)).await.unwrap()), [theirs]);
    // caseworker-2 finds only their own case of the child.
    let mut cw2 = Client::as_role(&server, "caseworker-2", AGENCY, &[Role::Caseworker]);
    assert_eq!(ids(cw2.list(by(&emma)).await.unwrap()), [hidden]);
    // Another agency finds nothing.
    let mut bergen = Client::as_role(&server, "caseworker-1", OTHER_AGENCY, &[Role::Caseworker]);
    assert!(bergen.list(by(&emma)).await.unwrap().cases.is_empty());
    // A number that is not one, named and never repeated.
    let mut broken = emma.clone();
    broken.replace_range(10..11, if broken.ends_with('0') { "1" } else { "0" });
    for bad in [broken.as_str(), "1234", "abcdefghijk"] {
        let err = cw.list(by(bad)).await.unwrap_err();
        assert_eq!(violated_fields(&err), ["child_national_id"], "{bad}");
        assert!(!format!("{err:?}").contains(bad), "the number is repeated");
    }
    // Its audit rows carry case ids, never the number.
    let rows = landsby_testkit::audit::audit_rows(&server).await;
    assert!(rows.iter().any(|r| {
        r.rpc.ends_with("/ListCases")
            && r.resource_ids
                .contains(&uuid::Uuid::parse_str(&mine).unwrap())
    }));
}

async fn get_case_with_the_village_returns_every_member_under_one_audit_row(backend: Backend) {
    let server = server(backend).await;
    let mut cw = Client::caseworker(&server);
    let case = cw.create(new_case()).await.unwrap();
    let mum = cw.add_member(&case.id, mother()).await.unwrap();
    let foster = cw.add_member(&case.id, foster_parent()).await.unwrap();
    let get = |view: i32| pb::GetCaseRequest {
        case_id: case.id.clone(),
        view,
    };
    let read = async |c: &mut Client, view: i32| {
        let req = c.req(get(view));
        c.inner.get_case(req).await.map(|r| r.into_inner())
    };

    // The case alone, unless the village is asked for.
    for view in [pb::CaseView::Unspecified, pb::CaseView::Basic] {
        let answer = read(&mut cw, view.into()).await.unwrap();
        assert_eq!(answer.case.unwrap().id, case.id);
        assert!(answer.village.is_empty(), "{view:?}");
    }
    let answer = read(&mut cw, pb::CaseView::WithVillage.into())
        .await
        .unwrap();
    assert_eq!(answer.case.unwrap().id, case.id);
    let mut got: Vec<&str> = answer.village.iter().map(|m| m.id.as_str()).collect();
    let mut want = vec![mum.id.as_str(), foster.id.as_str()];
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    // One audit row for the read, naming every member it returned.
    let rows = crate::audit_rows(&server).await;
    let row = rows.last().unwrap();
    assert_eq!(row.rpc, "landsby.case.v1.CaseService/GetCase");
    assert_eq!(row.outcome, "OK");
    let mut named: Vec<String> = row.resource_ids.iter().map(|id| id.to_string()).collect();
    named.sort_unstable();
    assert_eq!(named, want);

    // Without need to know, the village is no more visible than the case.
    let mut other = Client::as_role(&server, "caseworker-2", AGENCY, &[Role::Caseworker]);
    let err = read(&mut other, pb::CaseView::WithVillage.into())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let mut bergen = Client::as_role(&server, "cw-bergen", OTHER_AGENCY, &[Role::Caseworker]);
    let err = read(&mut bergen, pb::CaseView::WithVillage.into())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    // An unknown view is refused with the field named, with a bad id beside it.
    let err = read(&mut cw, 99).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["view"]);
    let req = cw.req(pb::GetCaseRequest {
        case_id: "not-a-uuid".into(),
        view: 99,
    });
    let err = cw.inner.get_case(req).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["case_id", "view"]);

    // A village larger than one answer carries is refused, never cut short: 1,999 copies of the
    // foster parent make 2,001 members.
    let copies: Vec<uuid::Uuid> = (0..1999).map(|_| uuid::Uuid::now_v7()).collect();
    let values: Vec<String> = (1..=copies.len()).map(|i| format!("(${i})")).collect();
    let copy = format!(
        "INSERT INTO village_members (id, case_id, role, affiliation, display_name, \
         contact_points, preferred_language, involved, informed, prepared, \
         has_visitation_rights, version, created_at, updated_at, removed_at) \
         SELECT v.column1, case_id, role, affiliation, display_name, contact_points, \
         preferred_language, involved, informed, prepared, has_visitation_rights, version, \
         created_at, updated_at, removed_at FROM village_members, (VALUES {}) AS v WHERE id = ${}",
        values.join(", "),
        copies.len() + 1
    );
    let foster_id = uuid::Uuid::parse_str(&foster.id).unwrap();
    let copy = || sqlx::AssertSqlSafe(copy.clone());
    let inserted = match server.db.pool() {
        landsby_platform::db::DbPool::Postgres(p) => {
            let q = copies.iter().fold(sqlx::query(copy()), |q, id| q.bind(*id));
            q.bind(foster_id).execute(&p).await.unwrap().rows_affected()
        }
        landsby_platform::db::DbPool::Sqlite(p) => {
            let q = copies.iter().fold(sqlx::query(copy()), |q, id| q.bind(*id));
            q.bind(foster_id).execute(&p).await.unwrap().rows_affected()
        }
    };
    assert_eq!(inserted, 1999);
    let err = read(&mut cw, pb::CaseView::WithVillage.into())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(precondition_kinds(&err), ["VILLAGE_TOO_LARGE"]);
    // The case alone still reads.
    read(&mut cw, pb::CaseView::Basic.into()).await.unwrap();
}
