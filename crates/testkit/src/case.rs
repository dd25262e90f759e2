//! Valid cases, village members and board decisions for tests that need a case in the case service,
//! and a client of the case service calling as one person.

#![allow(missing_docs)]

use crate::{AGENCY, TestServer, authed, keys};
use chrono::NaiveDate;
use landsby_domain::Role;
use landsby_proto::case::{self as pb, case_service_client::CaseServiceClient};
use landsby_proto::common as cpb;
use tonic::Status;
use tonic::transport::Channel;

/// A valid fødselsnummer for someone born on `date` (from individual number `start` on).
pub fn national_id(date: NaiveDate, start: u32) -> String {
    landsby_domain::identity::birth_number_for(date, start, false)
        .expect("a usable individual number")
}

pub fn date(y: i32, m: u32, d: u32) -> cpb::Date {
    cpb::Date {
        year: y,
        month: m as i32,
        day: d as i32,
    }
}

pub const BIRTH: (i32, u32, u32) = (2018, 5, 14);

pub fn birth() -> NaiveDate {
    NaiveDate::from_ymd_opt(BIRTH.0, BIRTH.1, BIRTH.2).unwrap()
}

/// A complete, valid case.
pub fn new_case() -> pb::Case {
    pb::Case {
        child: Some(pb::Child {
            given_name: "Emma".into(),
            family_name: "Nordmann".into(),
            birth_date: Some(date(BIRTH.0, BIRTH.1, BIRTH.2)),
            national_id: national_id(birth(), 500),
        }),
        placement: Some(pb::Placement {
            kind: pb::PlacementKind::CareOrder.into(),
            start_date: Some(date(2025, 9, 1)),
            foster_home: Some(pb::FosterHome {
                name: "Fosterhjemmet i Bakkeveien".into(),
                address: Some(cpb::PostalAddress {
                    street: "Bakkeveien 7".into(),
                    postal_code: "0150".into(),
                    city: "Oslo".into(),
                }),
                address_protected: false,
            }),
        }),
        goal: pb::Goal::Reunification.into(),
        assigned_caseworker: "caseworker-1".into(),
        team: crate::TEAM.into(),
        ..Default::default()
    }
}

/// A complete, valid case of another caseworker (`caseworker-2`) in another team (`team-2`): the
/// tests' caseworker and team lead may not open it.
pub fn others_case() -> pb::Case {
    pb::Case {
        assigned_caseworker: "caseworker-2".into(),
        team: "team-2".into(),
        ..new_case()
    }
}

pub fn mother() -> pb::VillageMember {
    pb::VillageMember {
        role: pb::VillageRole::Mother.into(),
        display_name: "Kari Nordmann".into(),
        contact_points: vec![
            cpb::ContactPoint {
                kind: cpb::ContactKind::Email.into(),
                value: "kari@example.no".into(),
            },
            cpb::ContactPoint {
                kind: cpb::ContactKind::Phone.into(),
                value: "91234567".into(),
            },
        ],
        preferred_language: cpb::Language::Nn.into(),
        has_visitation_rights: true,
        ..Default::default()
    }
}

pub fn father() -> pb::VillageMember {
    pb::VillageMember {
        role: pb::VillageRole::Father.into(),
        display_name: "Ola Nordmann".into(),
        has_visitation_rights: true,
        ..Default::default()
    }
}

pub fn foster_parent() -> pb::VillageMember {
    pb::VillageMember {
        role: pb::VillageRole::FosterParent.into(),
        display_name: "Per Fosterfar".into(),
        ..Default::default()
    }
}

pub fn decision(parent_id: &str, secret: bool) -> pb::BoardDecision {
    pb::BoardDecision {
        reference: "25-012345NEM-BVHN".into(),
        decided_on: Some(date(2025, 8, 20)),
        valid_from: Some(date(2025, 9, 1)),
        valid_to: None,
        secret_address: secret,
        floors: vec![pb::VisitationFloor {
            parent_id: parent_id.into(),
            min_visits: 4,
            period: pb::VisitPeriod::Year.into(),
            min_duration_minutes: 120,
            supervision_required: true,
        }],
        ..Default::default()
    }
}

/// A client to a running case service, calling as one person.
pub struct Client {
    pub inner: CaseServiceClient<Channel>,
    pub token: String,
}

impl Client {
    pub fn new(server: &TestServer, token: String) -> Self {
        Self::on(server.channel(), token)
    }

    /// A client of the case service behind `channel` (in this process or another).
    pub fn on(channel: Channel, token: String) -> Self {
        Self {
            inner: CaseServiceClient::new(channel),
            token,
        }
    }

    pub fn as_role(server: &TestServer, subject: &str, agency: &str, roles: &[Role]) -> Self {
        Self::new(server, keys().token(subject, agency, roles))
    }

    pub fn caseworker(server: &TestServer) -> Self {
        Self::as_role(server, "caseworker-1", AGENCY, &[Role::Caseworker])
    }

    /// The lead of the tests' team: opens every case of it, and may reassign them.
    pub fn team_lead(server: &TestServer) -> Self {
        Self::as_role(server, "team-lead-1", AGENCY, &[Role::TeamLead])
    }

    /// A request with the client's token, in the current trace (as a platform that traces sends it).
    pub fn req<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = authed(&self.token, message);
        landsby_platform::telemetry::inject(request.metadata_mut());
        request
    }

    pub async fn create(&mut self, case: pb::Case) -> Result<pb::Case, Status> {
        let req = self.req(pb::CreateCaseRequest {
            request_id: String::new(),
            case: Some(case),
        });
        Ok(self
            .inner
            .create_case(req)
            .await?
            .into_inner()
            .case
            .expect("case"))
    }

    pub async fn get(&mut self, id: &str) -> Result<pb::Case, Status> {
        let req = self.req(pb::GetCaseRequest {
            case_id: id.into(),
            ..Default::default()
        });
        Ok(self
            .inner
            .get_case(req)
            .await?
            .into_inner()
            .case
            .expect("case"))
    }

    /// Closes a case (the child went home).
    pub async fn close(&mut self, id: &str) -> Result<pb::Case, Status> {
        let etag = self.get(id).await?.etag;
        let req = self.req(pb::CloseCaseRequest {
            case_id: id.into(),
            etag,
            reason: pb::CloseReason::Reunified.into(),
        });
        Ok(self
            .inner
            .close_case(req)
            .await?
            .into_inner()
            .case
            .expect("case"))
    }

    pub async fn add_member(
        &mut self,
        case_id: &str,
        member: pb::VillageMember,
    ) -> Result<pb::VillageMember, Status> {
        let req = self.req(pb::AddVillageMemberRequest {
            case_id: case_id.into(),
            request_id: String::new(),
            member: Some(member),
        });
        Ok(self
            .inner
            .add_village_member(req)
            .await?
            .into_inner()
            .member
            .expect("member"))
    }

    pub async fn record(
        &mut self,
        case_id: &str,
        decision: pb::BoardDecision,
    ) -> Result<pb::BoardDecision, Status> {
        let req = self.req(pb::RecordBoardDecisionRequest {
            case_id: case_id.into(),
            request_id: String::new(),
            decision: Some(decision),
        });
        Ok(self
            .inner
            .record_board_decision(req)
            .await?
            .into_inner()
            .decision
            .expect("decision"))
    }

    pub async fn list(
        &mut self,
        req: pb::ListCasesRequest,
    ) -> Result<pb::ListCasesResponse, Status> {
        let req = self.req(req);
        Ok(self.inner.list_cases(req).await?.into_inner())
    }

    pub async fn schedule(
        &mut self,
        case_id: &str,
        r: pb::Review,
    ) -> Result<pb::Review, tonic::Status> {
        let req = self.req(pb::ScheduleReviewRequest {
            case_id: case_id.into(),
            request_id: String::new(),
            review: Some(r),
        });
        Ok(self
            .inner
            .schedule_review(req)
            .await?
            .into_inner()
            .review
            .unwrap())
    }

    pub async fn complete(
        &mut self,
        case_id: &str,
        review: &pb::Review,
        d: pb::StaircaseDecision,
    ) -> Result<(pb::Review, pb::Case), tonic::Status> {
        let req = self.req(pb::CompleteReviewRequest {
            case_id: case_id.into(),
            review_id: review.id.clone(),
            etag: review.etag.clone(),
            decision: Some(d),
            rationale: "the visits have gone well".into(),
            child_view: Some(heard()),
        });
        let r = self.inner.complete_review(req).await?.into_inner();
        Ok((r.review.unwrap(), r.case.unwrap()))
    }

    pub async fn approve(
        &mut self,
        case_id: &str,
        review: &pb::Review,
    ) -> Result<(pb::Review, pb::Case), tonic::Status> {
        let req = self.req(pb::ApproveDecisionRequest {
            case_id: case_id.into(),
            review_id: review.id.clone(),
            etag: review.etag.clone(),
        });
        let r = self.inner.approve_decision(req).await?.into_inner();
        Ok((r.review.unwrap(), r.case.unwrap()))
    }

    /// The case's reviews (up to 50), only those in `status` unless it is unspecified.
    pub async fn reviews(&mut self, case_id: &str, status: pb::ReviewStatus) -> Vec<pb::Review> {
        let req = self.req(pb::ListReviewsRequest {
            case_id: case_id.into(),
            page_size: 50,
            status: status.into(),
            ..Default::default()
        });
        self.inner
            .list_reviews(req)
            .await
            .expect("reviews")
            .into_inner()
            .reviews
    }

    pub async fn readiness(&mut self, case_id: &str) -> Result<pb::Readiness, tonic::Status> {
        let req = self.req(pb::GetReadinessRequest {
            case_id: case_id.into(),
        });
        Ok(self
            .inner
            .get_readiness(req)
            .await?
            .into_inner()
            .readiness
            .unwrap())
    }

    pub async fn facts(
        &mut self,
        case_id: &str,
        sequence: i64,
        visits: Vec<pb::VisitFact>,
    ) -> Result<bool, tonic::Status> {
        let req = self.req(pb::VisitFactsItem {
            case_id: case_id.into(),
            as_of_sequence: sequence,
            frame_complete: true,
            visits,
        });
        Ok(self.sync_visit_facts(req).await?.into_inner().applied)
    }

    /// BatchSyncVisitFacts of one case, answered with that case's result.
    pub async fn sync_visit_facts(
        &mut self,
        req: tonic::Request<pb::VisitFactsItem>,
    ) -> Result<tonic::Response<pb::VisitFactsResult>, tonic::Status> {
        let (meta, ext, item) = req.into_parts();
        let req = tonic::Request::from_parts(
            meta,
            ext,
            pb::BatchSyncVisitFactsRequest { items: vec![item] },
        );
        let (meta, mut answer, ext) = self.inner.batch_sync_visit_facts(req).await?.into_parts();
        let one = answer
            .results
            .pop()
            .ok_or_else(|| tonic::Status::internal("a batch of one answered none"))?;
        Ok(tonic::Response::from_parts(meta, one, ext))
    }

    /// BatchSyncDueReviews of one case, answered with that case's result.
    pub async fn sync_due_reviews(
        &mut self,
        req: tonic::Request<pb::DueReviewsItem>,
    ) -> Result<tonic::Response<pb::DueReviewsResult>, tonic::Status> {
        let (meta, ext, item) = req.into_parts();
        let req = tonic::Request::from_parts(
            meta,
            ext,
            pb::BatchSyncDueReviewsRequest { items: vec![item] },
        );
        let (meta, mut answer, ext) = self.inner.batch_sync_due_reviews(req).await?.into_parts();
        let one = answer
            .results
            .pop()
            .ok_or_else(|| tonic::Status::internal("a batch of one answered none"))?;
        Ok(tonic::Response::from_parts(meta, one, ext))
    }
}

/// A child's view, heard.
pub fn heard() -> pb::ChildView {
    pb::ChildView {
        view: "wants to see mum more often".into(),
        not_obtained_reason: String::new(),
    }
}
