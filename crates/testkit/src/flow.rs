//! The running suite driven as its users would: a caseworker's case with a village, readiness,
//! a review that moves the step, visits; and reading what the worker did (plans, notifications, its
//! jobs). Works on services in this process or in other processes: everything takes channels and
//! an [`Issuer`] of tokens (the test issuer, or a data directory's dev key for `landsby up`).

use crate::case::{Client as CaseClient, date, foster_parent, mother, new_case};
use crate::{AGENCY, authed};
use landsby_domain::Role;
use landsby_platform::auth::{Claims, DEV_ISSUER, SigningKey};
use landsby_proto::case as cpb;
use landsby_proto::notification::{
    self as npb, notification_service_client::NotificationServiceClient,
};
use landsby_proto::visitation::{self as vpb, visitation_service_client::VisitationServiceClient};
use landsby_proto::worker::{self as wpb, worker_admin_service_client::WorkerAdminServiceClient};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

/// Evaluates `$check` (an expression giving an Option, awaited inside) until it gives Some, for up
/// to 60 s; panics naming `$what` otherwise.
#[macro_export]
macro_rules! eventually {
    ($what:expr, $check:expr) => {{
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Some(v) = $check {
                break v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {}",
                $what
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }};
}

/// Who signs the tests' tokens.
pub trait Issuer: Send + Sync {
    /// A token for `subject` in `agency` with `roles`, valid for an hour.
    fn token(&self, subject: &str, agency: &str, roles: &[Role]) -> String;
}

/// The test issuer ([`crate::keys`]), whose public key the services under test trust.
pub struct TestIssuer;

impl Issuer for TestIssuer {
    fn token(&self, subject: &str, agency: &str, roles: &[Role]) -> String {
        crate::keys().token(subject, agency, roles)
    }
}

/// The dev key of a data directory, as `landsby up` accepts it.
pub struct DevIssuer(pub SigningKey);

impl Issuer for DevIssuer {
    fn token(&self, subject: &str, agency: &str, roles: &[Role]) -> String {
        let claims = Claims {
            teams: vec![crate::TEAM.to_owned()],
            ..Claims::new(
                subject,
                agency,
                roles,
                DEV_ISSUER,
                "landsby",
                Duration::from_secs(3600),
            )
        };
        self.0.sign(&claims).expect("sign")
    }
}

/// Where the suite's four services are, and who signs tokens for them.
#[derive(Clone)]
pub struct Suite {
    pub case: Channel,
    pub visitation: Channel,
    pub notification: Channel,
    pub worker: Channel,
    pub issuer: Arc<dyn Issuer>,
}

impl Suite {
    /// A client of the case service as `subject` with `roles` in [`AGENCY`].
    pub fn cases(&self, subject: &str, roles: &[Role]) -> CaseClient {
        CaseClient::on(self.case.clone(), self.issuer.token(subject, AGENCY, roles))
    }

    /// The caseworker of every case here, `caseworker-1`.
    pub fn caseworker(&self) -> CaseClient {
        self.cases("caseworker-1", &[Role::Caseworker])
    }

    /// A client of the visitation service as `caseworker-1`.
    pub fn visits(&self) -> Visits {
        Visits {
            inner: VisitationServiceClient::new(self.visitation.clone()),
            token: self
                .issuer
                .token("caseworker-1", AGENCY, &[Role::Caseworker]),
        }
    }

    /// A reader of the notification service as `caseworker-1`.
    pub fn notices(&self) -> Notices {
        Notices {
            inner: NotificationServiceClient::new(self.notification.clone()),
            token: self
                .issuer
                .token("caseworker-1", AGENCY, &[Role::Caseworker]),
        }
    }

    /// A client of the worker's admin API as an agency administrator of [`AGENCY`].
    pub fn admin(&self) -> Admin {
        self.admin_as(AGENCY, &[Role::AgencyAdmin])
    }

    /// A client of the worker's admin API as someone of `agency` with `roles`.
    pub fn admin_as(&self, agency: &str, roles: &[Role]) -> Admin {
        Admin {
            inner: WorkerAdminServiceClient::new(self.worker.clone()),
            token: self.issuer.token("admin-1", agency, roles),
        }
    }
}

/// A client of the visitation service.
pub struct Visits {
    pub inner: VisitationServiceClient<Channel>,
    pub token: String,
}

impl Visits {
    pub fn req<T>(&self, m: T) -> tonic::Request<T> {
        authed(&self.token, m)
    }

    pub async fn plans(&mut self, case_id: &str) -> Vec<vpb::VisitationPlan> {
        let req = self.req(vpb::ListVisitationPlansRequest {
            case_id: case_id.into(),
            page_size: 50,
            page_token: String::new(),
        });
        self.inner
            .list_visitation_plans(req)
            .await
            .unwrap()
            .into_inner()
            .plans
    }

    pub async fn schedule(&mut self, visit: vpb::Visit) -> vpb::Visit {
        let req = self.req(vpb::ScheduleVisitRequest {
            request_id: String::new(),
            visit: Some(visit),
        });
        self.inner
            .schedule_visit(req)
            .await
            .unwrap()
            .into_inner()
            .visit
            .unwrap()
    }

    pub async fn confirm(&mut self, v: &vpb::Visit) -> vpb::Visit {
        let req = self.req(vpb::ConfirmVisitRequest {
            visit_id: v.id.clone(),
            etag: v.etag.clone(),
        });
        self.inner
            .confirm_visit(req)
            .await
            .unwrap()
            .into_inner()
            .visit
            .unwrap()
    }

    pub async fn cancel(&mut self, v: &vpb::Visit) -> vpb::Visit {
        let req = self.req(vpb::CancelVisitRequest {
            visit_id: v.id.clone(),
            etag: v.etag.clone(),
            cancellation: Some(vpb::Cancellation {
                cancelled_by: vpb::CancelledBy::Parent.into(),
                reason: "the mother is ill".into(),
                ..Default::default()
            }),
        });
        self.inner
            .cancel_visit(req)
            .await
            .unwrap()
            .into_inner()
            .visit
            .unwrap()
    }

    pub async fn complete(&mut self, v: &vpb::Visit, concern: bool) -> vpb::Visit {
        let req = self.req(vpb::CompleteVisitRequest {
            visit_id: v.id.clone(),
            etag: v.etag.clone(),
            report: Some(report(concern)),
        });
        self.inner
            .complete_visit(req)
            .await
            .unwrap()
            .into_inner()
            .visit
            .unwrap()
    }
}

/// A visit's report: the foster parents involved before and after; with `concern`, one raised.
pub fn report(concern: bool) -> vpb::VisitReport {
    vpb::VisitReport {
        how_it_went: "calm, played together".into(),
        child_reactions: "tired afterwards".into(),
        parenting_tasks_practised: vec!["bedtime routines".into()],
        foster_parents: Some(vpb::FosterParentInvolvement {
            before: true,
            during: false,
            after: true,
        }),
        concern,
        concern_text: if concern {
            "the mother was agitated at the end".into()
        } else {
            String::new()
        },
        ..Default::default()
    }
}

/// A visit of `parent` at an Oslo wall-clock time, 60 minutes at the agency's premises.
pub fn visit(case_id: &str, parent: &str, start: chrono::NaiveDateTime) -> vpb::Visit {
    use chrono::{Datelike, Timelike};
    vpb::Visit {
        case_id: case_id.into(),
        parent_id: parent.into(),
        local_start: Some(landsby_proto::common::LocalDateTime {
            date: Some(date(start.year(), start.month(), start.day())),
            time: Some(landsby_proto::common::TimeOfDay {
                hours: start.hour() as i32,
                minutes: start.minute() as i32,
            }),
        }),
        duration_minutes: 60,
        frame: Some(vpb::Frame {
            place: vpb::Place::AgencyPremises.into(),
            place_description: "samværsrommet, 2. etasje".into(),
            participants: vec![vpb::Participant {
                member_id: parent.into(),
                role: vpb::ParticipantRole::Parent.into(),
                task: "brings a snack and a book".into(),
            }],
            activity: "drawing and a snack".into(),
            supervisor: "supervisor-1".into(),
        }),
        supervision: vpb::Supervision::AgencySupervised.into(),
        ..Default::default()
    }
}

/// A reader of the notification service.
pub struct Notices {
    pub inner: NotificationServiceClient<Channel>,
    pub token: String,
}

impl Notices {
    /// Every notification of the case.
    pub async fn of_case(&mut self, case_id: &str) -> Vec<npb::Notification> {
        let mut all = Vec::new();
        let mut page_token = String::new();
        loop {
            let req = authed(
                &self.token,
                npb::ListNotificationsRequest {
                    page_size: 500,
                    page_token,
                    case_id: case_id.into(),
                    ..Default::default()
                },
            );
            let r = self
                .inner
                .list_notifications(req)
                .await
                .unwrap()
                .into_inner();
            all.extend(r.notifications);
            if r.next_page_token.is_empty() {
                return all;
            }
            page_token = r.next_page_token;
        }
    }

    /// (recipient id, kind) of each notification of the case, sorted.
    pub async fn summary(&mut self, case_id: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .of_case(case_id)
            .await
            .into_iter()
            .map(|n| {
                let r = n.recipient.unwrap_or_default();
                let who = if r.member_id.is_empty() {
                    r.staff_subject
                } else {
                    r.member_id
                };
                (who, n.kind)
            })
            .collect();
        out.sort();
        out
    }
}

/// A client of the worker's admin API.
pub struct Admin {
    pub inner: WorkerAdminServiceClient<Channel>,
    pub token: String,
}

impl Admin {
    pub fn req<T>(&self, m: T) -> tonic::Request<T> {
        authed(&self.token, m)
    }

    pub async fn jobs(&mut self, status: wpb::JobStatus) -> Vec<wpb::Job> {
        let mut all = Vec::new();
        let mut page_token = String::new();
        loop {
            let req = self.req(wpb::ListJobsRequest {
                status: status.into(),
                page_size: 500,
                page_token,
            });
            let r = self.inner.list_jobs(req).await.unwrap().into_inner();
            all.extend(r.jobs);
            if r.next_page_token.is_empty() {
                return all;
            }
            page_token = r.next_page_token;
        }
    }

    /// Waits (up to a minute) until no job is pending, running or failed (to be retried), five
    /// looks in a row 100 ms apart (a feed may be about to queue the jobs of what just happened).
    pub async fn settled(&mut self) {
        self.settled_within(std::time::Duration::from_secs(60))
            .await;
    }

    /// [`Admin::settled`], waiting up to `limit`.
    pub async fn settled_within(&mut self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        let mut quiet = 0;
        while quiet < 5 {
            let busy = self.jobs(wpb::JobStatus::Pending).await.len()
                + self.jobs(wpb::JobStatus::Running).await.len()
                + self.jobs(wpb::JobStatus::Failed).await.len();
            quiet = if busy == 0 { quiet + 1 } else { 0 };
            assert!(
                tokio::time::Instant::now() < deadline,
                "the worker's queue never settled"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// Three completed visits of `parent` with the foster parents there and no concern, from now on:
/// the facts that make a case at step 1 ready to move up, as the worker would sync them.
pub fn ready_visits(parent: &str) -> Vec<cpb::VisitFact> {
    let since = chrono::Utc::now() + chrono::Duration::seconds(1);
    (0..3)
        .map(|i| cpb::VisitFact {
            visit_id: uuid::Uuid::now_v7().to_string(),
            parent_id: parent.to_owned(),
            start_time: Some(landsby_platform::validate::timestamp_to_proto(
                since + chrono::Duration::minutes(i),
            )),
            outcome: cpb::VisitFactOutcome::Completed.into(),
            concern: false,
            foster_parents_involved: true,
        })
        .collect()
}

/// A case with a mother (visitation rights), a foster parent and a school contact (no notices),
/// assigned to caseworker-1.
pub struct Family {
    pub case: cpb::Case,
    pub mother_id: String,
    pub foster_id: String,
    pub school_id: String,
    pub cases: CaseClient,
}

impl Suite {
    /// A family; with `secret`, the foster home's address is secret. Returns once the worker has
    /// made the mother's first plan.
    pub async fn family(&self, secret: bool) -> Family {
        let mut cases = self.caseworker();
        let mut c = new_case();
        if let Some(home) = c.placement.as_mut().and_then(|p| p.foster_home.as_mut()) {
            home.address_protected = secret;
        }
        let case = cases.create(c).await.unwrap();
        let mother_id = cases.add_member(&case.id, mother()).await.unwrap().id;
        let mut foster = foster_parent();
        foster.contact_points = vec![landsby_proto::common::ContactPoint {
            kind: landsby_proto::common::ContactKind::Phone.into(),
            value: "98765432".into(),
        }];
        let foster_id = cases.add_member(&case.id, foster).await.unwrap().id;
        let school = cpb::VillageMember {
            role: cpb::VillageRole::School.into(),
            display_name: "Kontaktlærer".into(),
            ..Default::default()
        };
        let school_id = cases.add_member(&case.id, school).await.unwrap().id;
        // The worker makes the mother's plan from the first computed scope.
        let mut visits = self.visits();
        eventually!("the mother's first plan", {
            let plans = visits.plans(&case.id).await;
            plans.iter().any(|p| p.parent_id == mother_id).then_some(())
        });
        let case = cases.get(&case.id).await.unwrap();
        Family {
            case,
            mother_id,
            foster_id,
            school_id,
            cases,
        }
    }

    /// The case service's readiness facts for step 1 → 2 as an earlier system would have left them:
    /// three completed visits without concerns since the case entered step 1, the frame complete.
    /// (Real visits cannot be completed before they begin; three in a row take hours.) The feed
    /// position is far ahead of the worker's, so its own syncs do not replace them.
    pub async fn seed_readiness(&self, f: &Family) {
        let mut worker = self.cases("landsby-worker", &[Role::Service]);
        let visits = ready_visits(&f.mother_id);
        assert!(worker.facts(&f.case.id, 1_000_000, visits).await.unwrap());
    }

    /// Completes a step review with ADVANCE and has the team lead approve it: the case moves to step 2.
    pub async fn advance(&self, f: &mut Family) -> cpb::Case {
        let review = f
            .cases
            .schedule(
                &f.case.id,
                cpb::Review {
                    kind: cpb::ReviewKind::StepReview.into(),
                    due_date: Some(landsby_platform::validate::date_to_proto(
                        landsby_domain::time::oslo_date(chrono::Utc::now()),
                    )),
                    note: "step review".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let (review, _) = f
            .cases
            .complete(
                &f.case.id,
                &review,
                cpb::StaircaseDecision {
                    kind: cpb::DecisionKind::Advance.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let mut lead = self.cases("team-lead-1", &[Role::TeamLead]);
        let (_, case) = lead.approve(&f.case.id, &review).await.unwrap();
        assert_eq!(case.step(), cpb::Step::Involvement);
        case
    }
}
