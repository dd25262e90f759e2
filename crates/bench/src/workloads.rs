//! What a caseworker platform does, as load: reads of cases, plans, visit lists and reviews;
//! visits scheduled, confirmed and completed; reviews scheduled and completed.

use crate::load::{Client, Rng};
use landsby_proto::case::{self as cpb, case_service_client::CaseServiceClient};
use landsby_proto::visitation::{self as vpb, visitation_service_client::VisitationServiceClient};
use landsby_testkit::authed;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tonic::transport::Channel;

/// A seeded case: its id and the mother's (a parent with a visitation plan).
#[derive(Debug, Clone)]
pub struct Family {
    pub case_id: String,
    pub mother_id: String,
}

/// The seeded cases, and for each the next free visit slot: every visit gets its own two hours,
/// counted from `first_slot`, so none overlaps another of the same parent.
pub struct Seeded {
    pub families: Vec<Family>,
    slots: Vec<AtomicU32>,
    first_slot: chrono::NaiveDateTime,
}

impl Seeded {
    pub fn new(families: Vec<Family>) -> Arc<Self> {
        // Half a year back: the visits have begun, so they can be completed.
        let first = chrono::Utc::now().date_naive() - chrono::Days::new(183);
        Arc::new(Self {
            slots: families.iter().map(|_| AtomicU32::new(0)).collect(),
            families,
            first_slot: first.and_hms_opt(8, 0, 0).unwrap_or_default(),
        })
    }

    pub fn case_ids(&self) -> Vec<String> {
        self.families.iter().map(|f| f.case_id.clone()).collect()
    }

    fn next_slot(&self, family: usize) -> chrono::NaiveDateTime {
        let n = self.slots[family].fetch_add(1, Ordering::Relaxed);
        self.first_slot + chrono::Duration::hours(2 * i64::from(n))
    }
}

/// What one client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// GetCase only.
    GetCase,
    /// ScheduleVisit only.
    ScheduleVisit,
    /// The realistic mix.
    Mix,
}

/// A caseworker platform's client of the case and visitation services.
pub struct Platform {
    kind: Kind,
    token: String,
    cases: CaseServiceClient<Channel>,
    visits: VisitationServiceClient<Channel>,
    seeded: Arc<Seeded>,
    rng: Rng,
    /// Visits this client scheduled and has not confirmed yet, and those confirmed.
    scheduled: Vec<vpb::Visit>,
    confirmed: Vec<vpb::Visit>,
}

impl Platform {
    pub fn new(
        kind: Kind,
        token: String,
        case: Channel,
        visitation: Channel,
        seeded: Arc<Seeded>,
        seed: u64,
    ) -> Self {
        Self {
            kind,
            token,
            cases: CaseServiceClient::new(case),
            visits: VisitationServiceClient::new(visitation),
            seeded,
            rng: Rng::new(seed),
            scheduled: Vec::new(),
            confirmed: Vec::new(),
        }
    }

    fn family(&mut self) -> (usize, Family) {
        let i = self.rng.below(self.seeded.families.len());
        (i, self.seeded.families[i].clone())
    }

    async fn get_case(&mut self) -> (&'static str, Result<(), tonic::Code>) {
        let (_, f) = self.family();
        let r = self
            .cases
            .get_case(authed(
                &self.token,
                cpb::GetCaseRequest {
                    case_id: f.case_id,
                    ..Default::default()
                },
            ))
            .await;
        ("GetCase", r.map(|_| ()).map_err(|s| s.code()))
    }

    async fn schedule_visit(&mut self) -> (&'static str, Result<(), tonic::Code>) {
        let (i, f) = self.family();
        let start = self.seeded.next_slot(i);
        let mut visit = landsby_testkit::flow::visit(&f.case_id, &f.mother_id, start);
        // Each family's visits have a supervisor of their own: the slots of two families overlap.
        if let Some(frame) = visit.frame.as_mut() {
            frame.supervisor = format!("supervisor-{i}");
        }
        let r = self
            .visits
            .schedule_visit(authed(
                &self.token,
                vpb::ScheduleVisitRequest {
                    request_id: uuid::Uuid::now_v7().to_string(),
                    visit: Some(visit),
                },
            ))
            .await;
        let r = r.map(|a| {
            if let Some(v) = a.into_inner().visit {
                self.scheduled.push(v);
            }
        });
        ("ScheduleVisit", r.map_err(|s| s.code()))
    }

    async fn confirm_visit(&mut self) -> (&'static str, Result<(), tonic::Code>) {
        let Some(v) = self.scheduled.pop() else {
            return self.schedule_visit().await;
        };
        let r = self
            .visits
            .confirm_visit(authed(
                &self.token,
                vpb::ConfirmVisitRequest {
                    visit_id: v.id,
                    etag: v.etag,
                },
            ))
            .await;
        let r = r.map(|a| {
            if let Some(v) = a.into_inner().visit {
                self.confirmed.push(v);
            }
        });
        ("ConfirmVisit", r.map_err(|s| s.code()))
    }

    async fn complete_visit(&mut self) -> (&'static str, Result<(), tonic::Code>) {
        let Some(v) = self.confirmed.pop() else {
            return self.confirm_visit().await;
        };
        let r = self
            .visits
            .complete_visit(authed(
                &self.token,
                vpb::CompleteVisitRequest {
                    visit_id: v.id,
                    etag: v.etag,
                    report: Some(landsby_testkit::flow::report(false)),
                },
            ))
            .await;
        ("CompleteVisit", r.map(|_| ()).map_err(|s| s.code()))
    }

    async fn list_plans(&mut self) -> (&'static str, Result<(), tonic::Code>) {
        let (_, f) = self.family();
        let r = self
            .visits
            .list_visitation_plans(authed(
                &self.token,
                vpb::ListVisitationPlansRequest {
                    case_id: f.case_id,
                    page_size: 50,
                    page_token: String::new(),
                },
            ))
            .await;
        ("ListVisitationPlans", r.map(|_| ()).map_err(|s| s.code()))
    }

    async fn list_visits(&mut self) -> (&'static str, Result<(), tonic::Code>) {
        let (_, f) = self.family();
        let r = self
            .visits
            .list_visits(authed(
                &self.token,
                vpb::ListVisitsRequest {
                    case_id: f.case_id,
                    page_size: 20,
                    ..Default::default()
                },
            ))
            .await;
        ("ListVisits", r.map(|_| ()).map_err(|s| s.code()))
    }

    async fn list_reviews(&mut self) -> (&'static str, Result<(), tonic::Code>) {
        let (_, f) = self.family();
        let r = self
            .cases
            .list_reviews(authed(
                &self.token,
                cpb::ListReviewsRequest {
                    case_id: f.case_id,
                    page_size: 50,
                    ..Default::default()
                },
            ))
            .await;
        ("ListReviews", r.map(|_| ()).map_err(|s| s.code()))
    }

    /// A follow-up review scheduled for today and completed with HOLD (the case stays in its
    /// step): two calls, each counted under its own name; the completion is what is returned.
    async fn complete_review(&mut self) -> (&'static str, Result<(), tonic::Code>) {
        let (_, f) = self.family();
        let today = landsby_domain::time::oslo_date(chrono::Utc::now());
        let scheduled = self
            .cases
            .schedule_review(authed(
                &self.token,
                cpb::ScheduleReviewRequest {
                    case_id: f.case_id.clone(),
                    request_id: String::new(),
                    review: Some(cpb::Review {
                        kind: cpb::ReviewKind::FollowUpVisit.into(),
                        due_date: Some(landsby_platform::validate::date_to_proto(today)),
                        note: "follow-up visit in the foster home".into(),
                        ..Default::default()
                    }),
                },
            ))
            .await;
        let review = match scheduled.map(|r| r.into_inner().review) {
            Ok(Some(r)) => r,
            Ok(None) => return ("ScheduleReview", Err(tonic::Code::Internal)),
            Err(s) => return ("ScheduleReview", Err(s.code())),
        };
        let r = self
            .cases
            .complete_review(authed(
                &self.token,
                cpb::CompleteReviewRequest {
                    case_id: f.case_id,
                    review_id: review.id,
                    etag: review.etag,
                    decision: Some(cpb::StaircaseDecision {
                        kind: cpb::DecisionKind::Hold.into(),
                        ..Default::default()
                    }),
                    rationale: "the child is settled; the visits go on as planned".into(),
                    child_view: Some(landsby_testkit::case::heard()),
                },
            ))
            .await;
        ("CompleteReview", r.map(|_| ()).map_err(|s| s.code()))
    }
}

impl Client for Platform {
    async fn call(&mut self) -> (&'static str, Result<(), tonic::Code>) {
        match self.kind {
            Kind::GetCase => self.get_case().await,
            Kind::ScheduleVisit => self.schedule_visit().await,
            // Out of 100 calls: most are reads (the case, its plans, visits and reviews), a fifth
            // move visits along, a few complete a review.
            Kind::Mix => match self.rng.below(100) {
                0..30 => self.get_case().await,
                30..45 => self.list_plans().await,
                45..60 => self.list_visits().await,
                60..70 => self.list_reviews().await,
                70..82 => self.schedule_visit().await,
                82..89 => self.confirm_visit().await,
                89..95 => self.complete_visit().await,
                _ => self.complete_review().await,
            },
        }
    }
}
