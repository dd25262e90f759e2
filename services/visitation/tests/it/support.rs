//! A running case service and a visitation service that reads it, families in the case service,
//! computed scopes as the worker sends them, and clients calling as one person.

use chrono::NaiveDate;
use landsby_domain::Role;
use landsby_domain::scope::{self, ScopeInput};
use landsby_proto::case as cpb;
use landsby_proto::common;
use landsby_proto::visitation::{self as pb, visitation_service_client::VisitationServiceClient};
pub use landsby_testkit::case::{
    Client as CaseClient, date, decision, father, foster_parent, mother, new_case,
};
pub use landsby_testkit::status::*;
use landsby_testkit::{AGENCY, Backend, ServingStatus, TestDb, TestServer, authed, keys};
use tonic::Status;
use tonic::transport::Channel;

/// A case service and a visitation service that reads it, each on its own database.
pub struct Env {
    pub case: TestServer,
    pub visitation: TestServer,
}

pub async fn env(backend: Backend) -> Env {
    let case = TestServer::start(landsby_case::SERVICE, backend).await;
    let url = format!("https://{}", case.addr);
    let db = TestDb::new(backend).await;
    let visitation =
        TestServer::start_with(landsby_visitation::SERVICE, db, |c| c.endpoints.case = url).await;
    visitation.wait_for(ServingStatus::Serving).await;
    Env { case, visitation }
}

/// The day (Europe/Oslo) [`Client::apply`] stamps a computed scope with, the day [`computed`]
/// computes on.
pub const COMPUTED_ON: (i32, u32, u32) = (2026, 11, 23);

/// A client of the visitation service, calling as one person.
pub struct Client {
    pub inner: VisitationServiceClient<Channel>,
    pub token: String,
}

impl Client {
    pub fn as_role(env: &Env, subject: &str, agency: &str, roles: &[Role]) -> Self {
        Self::on(&env.visitation, subject, agency, roles)
    }

    /// A client of the visitation service `server`.
    pub fn on(server: &TestServer, subject: &str, agency: &str, roles: &[Role]) -> Self {
        Self {
            inner: VisitationServiceClient::new(server.channel()),
            token: keys().token(subject, agency, roles),
        }
    }

    pub fn caseworker(env: &Env) -> Self {
        Self::as_role(env, "caseworker-1", AGENCY, &[Role::Caseworker])
    }

    pub fn worker(env: &Env) -> Self {
        Self::as_role(env, "landsby-worker", AGENCY, &[Role::Service])
    }

    pub fn req<T>(&self, message: T) -> tonic::Request<T> {
        authed(&self.token, message)
    }

    /// A computed scope as the worker sends it, computed on [`COMPUTED_ON`].
    pub async fn apply(
        &mut self,
        family: &Family,
        parent_id: &str,
        case_version: i64,
        step: cpb::Step,
        scope: pb::Scope,
    ) -> Result<pb::ComputedScopeResult, Status> {
        let on = Some(date(COMPUTED_ON.0, COMPUTED_ON.1, COMPUTED_ON.2));
        self.apply_on(family, parent_id, (case_version, on), step, scope)
            .await
    }

    /// A computed scope as the worker sends it, stamped with the case version and the day (None:
    /// no day).
    pub async fn apply_on(
        &mut self,
        family: &Family,
        parent_id: &str,
        stamp: (i64, Option<common::Date>),
        step: cpb::Step,
        scope: pb::Scope,
    ) -> Result<pb::ComputedScopeResult, Status> {
        let req = self.req(pb::BatchApplyComputedScopesRequest {
            items: vec![item(family, parent_id, stamp, step, scope)],
        });
        let mut results = self
            .inner
            .batch_apply_computed_scopes(req)
            .await?
            .into_inner()
            .results;
        results
            .pop()
            .ok_or_else(|| Status::internal("a batch of one answered none"))
    }

    pub async fn plan(&mut self, id: &str) -> Result<pb::VisitationPlan, Status> {
        let req = self.req(pb::GetVisitationPlanRequest { plan_id: id.into() });
        Ok(self
            .inner
            .get_visitation_plan(req)
            .await?
            .into_inner()
            .plan
            .expect("plan"))
    }

    pub async fn adjust(
        &mut self,
        plan: &pb::VisitationPlan,
        scope: pb::Scope,
        paths: &[&str],
    ) -> Result<pb::VisitationPlan, Status> {
        let req = self.req(pb::AdjustVisitationPlanRequest {
            plan_id: plan.id.clone(),
            etag: plan.etag.clone(),
            scope: Some(scope),
            update_mask: mask(paths),
            rationale: "the child asked for it".into(),
        });
        Ok(self
            .inner
            .adjust_visitation_plan(req)
            .await?
            .into_inner()
            .plan
            .expect("plan"))
    }

    pub async fn schedule(&mut self, visit: pb::Visit) -> Result<pb::Visit, Status> {
        let req = self.req(pb::ScheduleVisitRequest {
            request_id: String::new(),
            visit: Some(visit),
        });
        Ok(self
            .inner
            .schedule_visit(req)
            .await?
            .into_inner()
            .visit
            .expect("visit"))
    }

    pub async fn get(&mut self, id: &str) -> Result<pb::Visit, Status> {
        let req = self.req(pb::GetVisitRequest {
            visit_id: id.into(),
        });
        Ok(self
            .inner
            .get_visit(req)
            .await?
            .into_inner()
            .visit
            .expect("visit"))
    }

    pub async fn confirm(&mut self, visit: &pb::Visit) -> Result<pb::Visit, Status> {
        let req = self.req(pb::ConfirmVisitRequest {
            visit_id: visit.id.clone(),
            etag: visit.etag.clone(),
        });
        Ok(self
            .inner
            .confirm_visit(req)
            .await?
            .into_inner()
            .visit
            .expect("visit"))
    }

    pub async fn update(&mut self, visit: pb::Visit, paths: &[&str]) -> Result<pb::Visit, Status> {
        let req = self.req(pb::UpdateVisitRequest {
            visit: Some(visit),
            update_mask: mask(paths),
        });
        Ok(self
            .inner
            .update_visit(req)
            .await?
            .into_inner()
            .visit
            .expect("visit"))
    }

    pub async fn cancel(&mut self, visit: &pb::Visit) -> Result<pb::Visit, Status> {
        let req = self.req(pb::CancelVisitRequest {
            visit_id: visit.id.clone(),
            etag: visit.etag.clone(),
            cancellation: Some(pb::Cancellation {
                cancelled_by: pb::CancelledBy::Parent.into(),
                reason: "the mother is ill".into(),
                ..Default::default()
            }),
        });
        Ok(self
            .inner
            .cancel_visit(req)
            .await?
            .into_inner()
            .visit
            .expect("visit"))
    }

    pub async fn complete(
        &mut self,
        visit: &pb::Visit,
        report: pb::VisitReport,
    ) -> Result<pb::Visit, Status> {
        let req = self.req(pb::CompleteVisitRequest {
            visit_id: visit.id.clone(),
            etag: visit.etag.clone(),
            report: Some(report),
        });
        Ok(self
            .inner
            .complete_visit(req)
            .await?
            .into_inner()
            .visit
            .expect("visit"))
    }

    pub async fn list(
        &mut self,
        req: pb::ListVisitsRequest,
    ) -> Result<pb::ListVisitsResponse, Status> {
        let req = self.req(req);
        Ok(self.inner.list_visits(req).await?.into_inner())
    }
}

/// A case in the case service: a child, a mother with visitation rights, a father without a plan,
/// a foster parent.
pub struct Family {
    pub case_id: String,
    pub mother_id: String,
    pub father_id: String,
    pub foster_id: String,
    pub goal: cpb::Goal,
    pub cases: CaseClient,
}

/// A family; with `floor`, a board decision for the mother (min visits a month, minutes,
/// supervised) and, with `secret`, a secret address.
pub async fn family(env: &Env, floor: Option<(i32, i32, bool)>, secret: bool) -> Family {
    let mut cases = CaseClient::caseworker(&env.case);
    let case = cases.create(new_case()).await.unwrap();
    let mother = cases.add_member(&case.id, mother()).await.unwrap();
    let father = cases.add_member(&case.id, father()).await.unwrap();
    let foster = cases.add_member(&case.id, foster_parent()).await.unwrap();
    if floor.is_some() || secret {
        let (visits, minutes, supervised) = floor.unwrap_or((0, 0, false));
        let mut d = decision(&mother.id, secret);
        d.floors[0].min_visits = visits;
        d.floors[0].period = cpb::VisitPeriod::Month.into();
        d.floors[0].min_duration_minutes = minutes;
        d.floors[0].supervision_required = supervised;
        cases.record(&case.id, d).await.unwrap();
    }
    Family {
        case_id: case.id,
        mother_id: mother.id,
        father_id: father.id,
        foster_id: foster.id,
        goal: cpb::Goal::Reunification,
        cases,
    }
}

pub fn uuid_of(raw: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(raw).unwrap()
}

/// The scope the staircase engine computes for `step`, for the family's mother, as the worker sends it.
/// One parent's computed scope as the worker sends it, stamped with the case version and the day.
pub fn item(
    family: &Family,
    parent_id: &str,
    (case_version, computed_on): (i64, Option<common::Date>),
    step: cpb::Step,
    scope: pb::Scope,
) -> pb::ComputedScopeItem {
    let goal = if step == cpb::Step::Responsibility {
        cpb::Goal::Reunification
    } else {
        family.goal
    };
    pb::ComputedScopeItem {
        case_id: family.case_id.clone(),
        parent_id: parent_id.into(),
        computed_from: Some(pb::ComputedFrom {
            case_version,
            policy_version: "2026.1".into(),
            step: step.into(),
            goal: goal.into(),
            computed_on,
        }),
        scope: Some(scope),
    }
}

pub fn computed(
    family: &Family,
    step: landsby_domain::Step,
    floor: Option<(u32, u32, bool)>,
    secret: bool,
) -> pb::Scope {
    let floor = floor.map(
        |(visits, minutes, supervised)| landsby_domain::VisitationFloor {
            parent_id: uuid_of(&family.mother_id),
            min_visits: visits,
            period: landsby_domain::VisitPeriod::Month,
            min_duration_minutes: minutes,
            supervision_required: supervised,
        },
    );
    let s = scope::compute(
        &ScopeInput {
            step,
            goal: landsby_domain::Goal::Reunification,
            floor: floor.as_ref(),
            secret_address: secret,
            child_birth_date: NaiveDate::from_ymd_opt(2018, 5, 14).unwrap(),
            today: NaiveDate::from_ymd_opt(COMPUTED_ON.0, COMPUTED_ON.1, COMPUTED_ON.2).unwrap(),
            recent_visits: &[],
            current: None,
            parenting_goals: &["bedtime routines".to_owned()],
        },
        &landsby_domain::Policy::default(),
    );
    landsby_visitation::api::convert::scope_to(&s)
}

/// A family whose mother has a plan for step 1 (agency-supervised, agency premises and community).
pub async fn planned(env: &Env) -> (Family, pb::VisitationPlan) {
    let family = family(env, None, false).await;
    let scope = computed(&family, landsby_domain::Step::Safety, None, false);
    let mother = family.mother_id.clone();
    let plan = Client::worker(env)
        .apply(&family, &mother, 1, cpb::Step::Safety, scope)
        .await
        .unwrap()
        .plan
        .unwrap();
    (family, plan)
}

/// A wall-clock time in Oslo.
pub fn at(y: i32, m: u32, d: u32, h: i32, min: i32) -> common::LocalDateTime {
    common::LocalDateTime {
        date: Some(date(y, m, d)),
        time: Some(common::TimeOfDay {
            hours: h,
            minutes: min,
        }),
    }
}

/// A complete frame for a visit with `parent` at the agency's premises, supervised by `supervisor`.
pub fn frame(parent: &str, supervisor: &str) -> pb::Frame {
    pb::Frame {
        place: pb::Place::AgencyPremises.into(),
        place_description: "samværsrommet, 2. etasje".into(),
        participants: vec![pb::Participant {
            member_id: parent.into(),
            role: pb::ParticipantRole::Parent.into(),
            task: "brings a snack and a book".into(),
        }],
        activity: "drawing and a snack".into(),
        supervisor: supervisor.into(),
    }
}

/// A visit of the family's mother at `start`, 90 minutes, with a complete frame.
pub fn visit(family: &Family, start: common::LocalDateTime, supervisor: &str) -> pb::Visit {
    pb::Visit {
        case_id: family.case_id.clone(),
        parent_id: family.mother_id.clone(),
        local_start: Some(start),
        duration_minutes: 90,
        frame: Some(frame(&family.mother_id, supervisor)),
        ..Default::default()
    }
}

/// A report after a visit.
pub use landsby_testkit::flow::report;
