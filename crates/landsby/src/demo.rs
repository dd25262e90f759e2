//! `landsby demo`: a sample case driven through the staircase against a running suite, with a
//! timeline of what the system did by itself at each step.
//!
//! The demo is a client like any caseworker platform: it calls the public gRPC APIs with dev tokens
//! (a caseworker, a team lead, an agency administrator to watch the worker's queue) and changes
//! nothing behind the services' backs. Visits are real visits: scheduled, confirmed and completed.
//! A visit counts towards readiness once it has begun after the case entered its step, so before
//! each step's visits the demo waits for the next whole minute (visits start on whole minutes).

use chrono::{DateTime, Duration as Span, DurationRound, Utc};
use landsby_domain::time::{oslo_date, oslo_local};
use landsby_platform::validate::date_to_proto;
use landsby_proto::case::{self as cpb, case_service_client::CaseServiceClient};
use landsby_proto::common;
use landsby_proto::notification::{
    self as npb, notification_service_client::NotificationServiceClient,
};
use landsby_proto::visitation::{self as vpb, visitation_service_client::VisitationServiceClient};
use landsby_proto::worker::{self as wpb, worker_admin_service_client::WorkerAdminServiceClient};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// The longest the demo waits for the worker to follow one step.
const WORKER_WAIT: Duration = Duration::from_secs(90);

/// The four services' channels.
pub struct Channels {
    pub case: Channel,
    pub visitation: Channel,
    pub notification: Channel,
    pub worker: Channel,
}

/// The team of the demo's case; the demo's tokens belong to it.
pub const TEAM: &str = "demo-team";

/// Who the demo calls as: each a dev token of the same agency.
pub struct Tokens {
    /// The caseworker the case is assigned to; its subject is `caseworker_subject`.
    pub caseworker: String,
    pub caseworker_subject: String,
    /// A team lead, who approves step decisions.
    pub team_lead: String,
    /// An agency administrator, who watches the worker's queue.
    pub admin: String,
}

type Result<T> = std::result::Result<T, String>;

/// A request carrying `token`.
fn req<T>(token: &str, message: T) -> Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| "the token is not a valid header value".to_owned())?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

/// The answer of a call, or what went wrong in words.
async fn ask<T>(
    what: &str,
    call: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T> {
    call.await
        .map(tonic::Response::into_inner)
        .map_err(|s| format!("{what}: {:?}: {}", s.code(), s.message()))
}

fn some<T>(value: Option<T>, what: &str) -> Result<T> {
    value.ok_or_else(|| format!("the answer had no {what}"))
}

/// `SUPERVISION_AGENCY_SUPERVISED` → `agency supervised`.
fn words(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .to_lowercase()
        .replace('_', " ")
}

/// `step 2 (involvement)`.
fn step(s: cpb::Step) -> String {
    format!("step {} ({})", s as i32, words(s.as_str_name(), "STEP_"))
}

fn period(p: i32) -> String {
    cpb::VisitPeriod::try_from(p)
        .map(|p| words(p.as_str_name(), "VISIT_PERIOD_"))
        .unwrap_or_else(|_| "?".into())
}

/// Each value of a scope in words, by field name.
fn values(s: &vpb::Scope) -> Vec<(&'static str, String)> {
    let frequency = |f: &Option<vpb::Frequency>| {
        f.as_ref()
            .map(|f| format!("{} per {}", f.count, period(f.period)))
            .unwrap_or_default()
    };
    let places = s
        .places
        .iter()
        .map(|p| {
            vpb::Place::try_from(*p)
                .map(|p| words(p.as_str_name(), "PLACE_"))
                .unwrap_or_else(|_| "?".into())
        })
        .collect::<Vec<_>>()
        .join(", ");
    vec![
        ("frequency", frequency(&s.frequency)),
        ("duration_minutes", format!("{} min", s.duration_minutes)),
        (
            "supervision",
            vpb::Supervision::try_from(s.supervision)
                .map(|v| words(v.as_str_name(), "SUPERVISION_"))
                .unwrap_or_else(|_| "?".into()),
        ),
        ("places", places),
        ("overnights", frequency(&s.overnights)),
        ("activities", s.activities.join("; ")),
        ("foster_parents_role", s.foster_parents_role.clone()),
    ]
}

/// Why a value is what it is: the rule that decided it, in words.
fn why(s: &vpb::Scope, field: &str) -> String {
    s.explanations
        .iter()
        .find(|e| e.field == field)
        .and_then(|e| e.reasons.last())
        .map(|r| format!("{}: {}", r.rule, r.text))
        .unwrap_or_default()
}

fn member(role: cpb::VillageRole, name: &str, rights: bool, email: &str) -> cpb::VillageMember {
    cpb::VillageMember {
        role: role.into(),
        display_name: name.into(),
        has_visitation_rights: rights,
        contact_points: if email.is_empty() {
            Vec::new()
        } else {
            vec![common::ContactPoint {
                kind: common::ContactKind::Email.into(),
                value: email.into(),
            }]
        },
        ..Default::default()
    }
}

/// The demo's state: the clients, the case, and what it has shown so far.
struct Demo {
    cases: CaseServiceClient<Channel>,
    visits: VisitationServiceClient<Channel>,
    notices: NotificationServiceClient<Channel>,
    worker: WorkerAdminServiceClient<Channel>,
    tokens: Tokens,
    started: Instant,
    case: cpb::Case,
    /// Member id → "Name (role)", and staff subjects.
    names: BTreeMap<String, String>,
    parents: Vec<String>,
    foster_id: String,
    /// The scope last shown for each parent.
    scopes: BTreeMap<String, vpb::Scope>,
    reviews_seen: BTreeSet<String>,
    notices_seen: BTreeSet<String>,
    /// When the case last entered a step (an upper bound: taken after the answer came).
    step_began: DateTime<Utc>,
}

/// Runs the demo against the suite behind `channels`, printing the timeline.
pub async fn run(channels: Channels, tokens: Tokens) -> Result<()> {
    let mut demo = Demo {
        cases: CaseServiceClient::new(channels.case),
        visits: VisitationServiceClient::new(channels.visitation),
        notices: NotificationServiceClient::new(channels.notification),
        worker: WorkerAdminServiceClient::new(channels.worker),
        names: BTreeMap::from([(
            tokens.caseworker_subject.clone(),
            format!("{} (caseworker)", tokens.caseworker_subject),
        )]),
        tokens,
        started: Instant::now(),
        case: cpb::Case::default(),
        parents: Vec::new(),
        foster_id: String::new(),
        scopes: BTreeMap::new(),
        reviews_seen: BTreeSet::new(),
        notices_seen: BTreeSet::new(),
        step_began: Utc::now(),
    };
    demo.create().await?;
    demo.follow("the village's first plans").await?;

    demo.title("Step 1, safety: three visits with the mother");
    let mother = demo.parents[0].clone();
    demo.visit_series(&mother, 3, false).await?;
    demo.follow("the completed visits").await?;
    demo.readiness().await?;
    demo.advance("the visits went well and the mother kept to the frame")
        .await?;
    demo.follow("the step change to 2, involvement").await?;

    demo.title("Step 2, involvement: parenting goals, a family group conference, a reunification plan, four visits");
    demo.prepare_for_responsibility().await?;
    demo.visit_series(&mother, 4, true).await?;
    demo.follow("the completed visits").await?;
    demo.readiness().await?;
    demo.advance("the mother takes on care tasks and the foster parents support it")
        .await?;
    demo.follow("the step change to 3, responsibility").await?;

    demo.title("Step 3, responsibility: care tasks move from the foster parents to the parents");
    demo.transfer_care().await?;
    demo.follow("the care-task transfer").await?;

    demo.inboxes().await
}

impl Demo {
    fn title(&self, text: &str) {
        println!();
        println!("== {text}");
    }

    fn say(&self, text: &str) {
        println!("[{:>6.1} s] {text}", self.started.elapsed().as_secs_f64());
    }

    fn name(&self, id: &str) -> String {
        self.names.get(id).cloned().unwrap_or_else(|| id.to_owned())
    }

    async fn create(&mut self) -> Result<()> {
        self.title(
            "A new case: a girl of seven in foster care under a care order, goal reunification",
        );
        let today = oslo_date(Utc::now());
        let birth = today
            .checked_sub_months(chrono::Months::new(7 * 12 + 3))
            .ok_or("no birth date")?;
        let national_id = landsby_domain::identity::birth_number_for(birth, 400, false)
            .ok_or("no sample national id")?;
        let case = cpb::Case {
            child: Some(cpb::Child {
                given_name: "Emma".into(),
                family_name: "Demo".into(),
                birth_date: Some(date_to_proto(birth)),
                national_id,
            }),
            placement: Some(cpb::Placement {
                kind: cpb::PlacementKind::CareOrder.into(),
                start_date: Some(date_to_proto(today - Span::days(200))),
                foster_home: Some(cpb::FosterHome {
                    name: "Fosterhjemmet i Eksempelveien".into(),
                    address: Some(common::PostalAddress {
                        street: "Eksempelveien 1".into(),
                        postal_code: "0150".into(),
                        city: "Oslo".into(),
                    }),
                    address_protected: false,
                }),
            }),
            goal: cpb::Goal::Reunification.into(),
            assigned_caseworker: self.tokens.caseworker_subject.clone(),
            team: TEAM.into(),
            ..Default::default()
        };
        let r = req(
            &self.tokens.caseworker,
            cpb::CreateCaseRequest {
                request_id: String::new(),
                case: Some(case),
            },
        )?;
        self.case = some(
            ask("CreateCase", self.cases.create_case(r)).await?.case,
            "case",
        )?;
        self.step_began = Utc::now();
        self.say(&format!(
            "The caseworker created case {} (step 1, safety).",
            self.case.id
        ));

        let village = [
            (
                member(
                    cpb::VillageRole::Mother,
                    "Kari Demo",
                    true,
                    "kari@example.no",
                ),
                "mother",
            ),
            (
                member(cpb::VillageRole::Father, "Ola Demo", true, "ola@example.no"),
                "father",
            ),
            (
                member(
                    cpb::VillageRole::FosterParent,
                    "Per Fosterfar",
                    false,
                    "per@example.no",
                ),
                "foster parent",
            ),
            (
                member(
                    cpb::VillageRole::Grandparent,
                    "Mormor Demo",
                    false,
                    "mormor@example.no",
                ),
                "grandparent",
            ),
            (
                member(cpb::VillageRole::School, "Kontaktlærer", false, ""),
                "school",
            ),
        ];
        for (m, role) in village {
            let name = m.display_name.clone();
            let rights = m.has_visitation_rights;
            let foster = m.role() == cpb::VillageRole::FosterParent;
            let r = req(
                &self.tokens.caseworker,
                cpb::AddVillageMemberRequest {
                    case_id: self.case.id.clone(),
                    request_id: String::new(),
                    member: Some(m),
                },
            )?;
            let added = some(
                ask("AddVillageMember", self.cases.add_village_member(r))
                    .await?
                    .member,
                "member",
            )?;
            self.names
                .insert(added.id.clone(), format!("{name} ({role})"));
            if rights {
                self.parents.push(added.id.clone());
            }
            if foster {
                self.foster_id = added.id.clone();
            }
        }
        self.say("The village: mother and father (both with visitation rights), a foster parent, the grandmother, the school.");

        let mother = some(self.parents.first().cloned(), "mother")?;
        let decision = cpb::BoardDecision {
            reference: "DEMO-BVHN".into(),
            decided_on: Some(date_to_proto(today - Span::days(210))),
            valid_from: Some(date_to_proto(today - Span::days(200))),
            valid_to: None,
            secret_address: true,
            floors: vec![cpb::VisitationFloor {
                parent_id: mother,
                min_visits: 6,
                period: cpb::VisitPeriod::Year.into(),
                min_duration_minutes: 120,
                supervision_required: true,
            }],
            ..Default::default()
        };
        let r = req(
            &self.tokens.caseworker,
            cpb::RecordBoardDecisionRequest {
                case_id: self.case.id.clone(),
                request_id: String::new(),
                decision: Some(decision),
            },
        )?;
        ask("RecordBoardDecision", self.cases.record_board_decision(r)).await?;
        self.say("The county board's decision: the mother at least 6 visits a year of 120 minutes, supervised; the foster home's address is secret.");
        Ok(())
    }

    async fn get_case(&mut self) -> Result<cpb::Case> {
        let r = req(
            &self.tokens.caseworker,
            cpb::GetCaseRequest {
                case_id: self.case.id.clone(),
                ..Default::default()
            },
        )?;
        some(ask("GetCase", self.cases.get_case(r)).await?.case, "case")
    }

    async fn plans(&mut self) -> Result<Vec<vpb::VisitationPlan>> {
        let r = req(
            &self.tokens.caseworker,
            vpb::ListVisitationPlansRequest {
                case_id: self.case.id.clone(),
                page_size: 50,
                page_token: String::new(),
            },
        )?;
        Ok(
            ask("ListVisitationPlans", self.visits.list_visitation_plans(r))
                .await?
                .plans,
        )
    }

    /// Jobs the worker has still to do (pending, running, or failed and to be retried).
    async fn busy(&mut self) -> Result<usize> {
        let mut n = 0;
        for status in [
            wpb::JobStatus::Pending,
            wpb::JobStatus::Running,
            wpb::JobStatus::Failed,
        ] {
            let r = req(
                &self.tokens.admin,
                wpb::ListJobsRequest {
                    status: status.into(),
                    page_size: 500,
                    page_token: String::new(),
                },
            )?;
            n += ask("ListJobs", self.worker.list_jobs(r)).await?.jobs.len();
        }
        Ok(n)
    }

    /// Waits until every parent's plan was computed from the case as it is now and the worker's
    /// queue is quiet, then shows what changed: scopes, reviews, notifications.
    async fn follow(&mut self, what: &str) -> Result<()> {
        let case = self.get_case().await?;
        let deadline = Instant::now() + WORKER_WAIT;
        let mut quiet = 0;
        let plans = loop {
            let plans = self.plans().await?;
            let current = self.parents.iter().all(|p| {
                plans.iter().any(|plan| {
                    plan.parent_id == *p
                        && plan
                            .computed_from
                            .as_ref()
                            .is_some_and(|c| c.case_version >= case.version)
                })
            });
            quiet = if current && self.busy().await? == 0 {
                quiet + 1
            } else {
                0
            };
            if quiet >= 3 {
                break plans;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the worker did not follow {what} within {} s: is landsby-worker running?",
                    WORKER_WAIT.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        self.case = case;
        self.say(&format!("The worker followed {what}. By itself it:"));
        self.show_scopes(&plans);
        self.show_reviews().await?;
        self.show_notifications().await
    }

    fn show_scopes(&mut self, plans: &[vpb::VisitationPlan]) {
        for plan in plans {
            let Some(scope) = plan.scope.as_ref() else {
                continue;
            };
            let who = self.name(&plan.parent_id);
            match self.scopes.get(&plan.parent_id) {
                None => {
                    println!("  - made the visitation plan of {who}:");
                    for (field, value) in values(scope) {
                        println!("      {field:<20} {value}");
                        println!("      {:<20}   why: {}", "", why(scope, field));
                    }
                }
                Some(before) => {
                    let old = values(before);
                    let changed: Vec<_> = values(scope)
                        .into_iter()
                        .zip(old)
                        .filter(|((_, new), (_, old))| new != old)
                        .collect();
                    if changed.is_empty() {
                        println!("  - kept the scope of {who} as it was");
                    } else {
                        println!("  - changed the scope of {who}:");
                        for ((field, new), (_, old)) in changed {
                            println!("      {field:<20} {old}  ->  {new}");
                            println!("      {:<20}   why: {}", "", why(scope, field));
                        }
                    }
                }
            }
            self.scopes.insert(plan.parent_id.clone(), scope.clone());
        }
    }

    async fn show_reviews(&mut self) -> Result<()> {
        let r = req(
            &self.tokens.caseworker,
            cpb::ListReviewsRequest {
                case_id: self.case.id.clone(),
                page_size: 500,
                status: cpb::ReviewStatus::Scheduled.into(),
                ..Default::default()
            },
        )?;
        let reviews = ask("ListReviews", self.cases.list_reviews(r))
            .await?
            .reviews;
        let new: Vec<_> = reviews
            .iter()
            .filter(|r| !r.computed_key.is_empty() && !self.reviews_seen.contains(&r.id))
            .collect();
        if !new.is_empty() {
            println!("  - scheduled reviews:");
        }
        for r in new {
            let due = r
                .due_date
                .as_ref()
                .map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
                .unwrap_or_default();
            println!(
                "      {due}  {:<18} {}",
                words(r.kind().as_str_name(), "REVIEW_KIND_"),
                r.note
            );
        }
        self.reviews_seen = reviews.into_iter().map(|r| r.id).collect();
        Ok(())
    }

    async fn all_notifications(&mut self) -> Result<Vec<npb::Notification>> {
        let mut all = Vec::new();
        let mut page_token = String::new();
        loop {
            let r = req(
                &self.tokens.caseworker,
                npb::ListNotificationsRequest {
                    page_size: 500,
                    page_token,
                    case_id: self.case.id.clone(),
                    ..Default::default()
                },
            )?;
            let page = ask("ListNotifications", self.notices.list_notifications(r)).await?;
            all.extend(page.notifications);
            if page.next_page_token.is_empty() {
                all.reverse(); // oldest first
                return Ok(all);
            }
            page_token = page.next_page_token;
        }
    }

    fn recipient(&self, n: &npb::Notification) -> String {
        let r = n.recipient.clone().unwrap_or_default();
        if r.member_id.is_empty() {
            self.name(&r.staff_subject)
        } else {
            self.name(&r.member_id)
        }
    }

    async fn show_notifications(&mut self) -> Result<()> {
        let all = self.all_notifications().await?;
        let mut by_recipient: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for n in all.iter().filter(|n| !self.notices_seen.contains(&n.id)) {
            let redacted = if n.redacted {
                " [the secret address withheld]"
            } else {
                ""
            };
            by_recipient
                .entry(self.recipient(n))
                .or_default()
                .push(format!("{}: \"{}\"{redacted}", n.kind, n.subject));
        }
        if by_recipient.is_empty() {
            println!("  - sent no notifications");
        } else {
            println!("  - notified:");
        }
        for (who, lines) in by_recipient {
            println!("      {who}");
            for line in lines {
                println!("          {line}");
            }
        }
        self.notices_seen.extend(all.into_iter().map(|n| n.id));
        Ok(())
    }

    /// `n` visits of `parent` one after the other, each scheduled, confirmed and completed. They
    /// start on the first whole minute after the case entered its step, and the demo waits for it.
    async fn visit_series(&mut self, parent: &str, n: usize, foster_involved: bool) -> Result<()> {
        let start = self
            .step_began
            .duration_trunc(Span::minutes(1))
            .map_err(|e| e.to_string())?
            + Span::minutes(1);
        let wait = (start - Utc::now()).to_std().unwrap_or_default();
        if !wait.is_zero() {
            self.say(&format!(
                "(waiting {} s: a visit counts once it has begun, after the step began)",
                wait.as_secs() + 1
            ));
            tokio::time::sleep(wait + Duration::from_millis(500)).await;
        }
        let who = self.name(parent);
        for i in 1..=n {
            let visit = self.sample_visit(parent, start, foster_involved);
            let r = req(
                &self.tokens.caseworker,
                vpb::ScheduleVisitRequest {
                    request_id: String::new(),
                    visit: Some(visit),
                },
            )?;
            let v = some(
                ask("ScheduleVisit", self.visits.schedule_visit(r))
                    .await?
                    .visit,
                "visit",
            )?;
            let r = req(
                &self.tokens.caseworker,
                vpb::ConfirmVisitRequest {
                    visit_id: v.id.clone(),
                    etag: v.etag.clone(),
                },
            )?;
            let v = some(
                ask("ConfirmVisit", self.visits.confirm_visit(r))
                    .await?
                    .visit,
                "visit",
            )?;
            let report = vpb::VisitReport {
                how_it_went: "calm; they drew together and shared a snack".into(),
                child_reactions: "happy, a little tired afterwards".into(),
                parenting_tasks_practised: vec!["predictable routines".into()],
                foster_parents: Some(vpb::FosterParentInvolvement {
                    before: foster_involved,
                    during: false,
                    after: foster_involved,
                }),
                concern: false,
                ..Default::default()
            };
            let r = req(
                &self.tokens.caseworker,
                vpb::CompleteVisitRequest {
                    visit_id: v.id.clone(),
                    etag: v.etag.clone(),
                    report: Some(report),
                },
            )?;
            ask("CompleteVisit", self.visits.complete_visit(r)).await?;
            self.say(&format!(
                "Visit {i} of {n} with {who}: scheduled, confirmed, completed without concerns."
            ));
        }
        Ok(())
    }

    fn sample_visit(&self, parent: &str, start: DateTime<Utc>, foster: bool) -> vpb::Visit {
        use chrono::Timelike;
        let local = oslo_local(start);
        let mut participants = vec![vpb::Participant {
            member_id: parent.into(),
            role: vpb::ParticipantRole::Parent.into(),
            task: "brings a snack and a book".into(),
        }];
        if foster {
            participants.push(vpb::Participant {
                member_id: self.foster_id.clone(),
                role: vpb::ParticipantRole::FosterParent.into(),
                task: "prepares the child before and talks with her after".into(),
            });
        }
        vpb::Visit {
            case_id: self.case.id.clone(),
            parent_id: parent.into(),
            local_start: Some(common::LocalDateTime {
                date: Some(date_to_proto(local.date())),
                time: Some(common::TimeOfDay {
                    hours: local.hour() as i32,
                    minutes: local.minute() as i32,
                }),
            }),
            duration_minutes: 60,
            frame: Some(vpb::Frame {
                place: vpb::Place::AgencyPremises.into(),
                place_description: "the visiting room, second floor".into(),
                participants,
                activity: "drawing and a snack".into(),
                supervisor: "demo-supervisor".into(),
            }),
            supervision: vpb::Supervision::AgencySupervised.into(),
            ..Default::default()
        }
    }

    async fn readiness(&mut self) -> Result<()> {
        let r = req(
            &self.tokens.caseworker,
            cpb::GetReadinessRequest {
                case_id: self.case.id.clone(),
            },
        )?;
        let readiness = some(
            ask("GetReadiness", self.cases.get_readiness(r))
                .await?
                .readiness,
            "readiness",
        )?;
        self.say(&format!(
            "Readiness for {}: {}",
            step(readiness.next_step()),
            if readiness.ready {
                "ready"
            } else {
                "what is still missing is marked [ ]"
            }
        ));
        for c in &readiness.conditions {
            println!(
                "      [{}] {:<40} {}",
                if c.met { "x" } else { " " },
                c.key,
                c.reason
            );
        }
        // The child's view comes with the decision itself; the review refuses an advance that
        // is still missing something, naming it.
        Ok(())
    }

    /// A step review decided ADVANCE by the caseworker and approved by the team lead.
    async fn advance(&mut self, rationale: &str) -> Result<()> {
        let r = req(
            &self.tokens.caseworker,
            cpb::ScheduleReviewRequest {
                case_id: self.case.id.clone(),
                request_id: String::new(),
                review: Some(cpb::Review {
                    kind: cpb::ReviewKind::StepReview.into(),
                    due_date: Some(date_to_proto(oslo_date(Utc::now()))),
                    note: "step review".into(),
                    ..Default::default()
                }),
            },
        )?;
        let review = some(
            ask("ScheduleReview", self.cases.schedule_review(r))
                .await?
                .review,
            "review",
        )?;
        let r = req(
            &self.tokens.caseworker,
            cpb::CompleteReviewRequest {
                case_id: self.case.id.clone(),
                review_id: review.id.clone(),
                etag: review.etag.clone(),
                decision: Some(cpb::StaircaseDecision {
                    kind: cpb::DecisionKind::Advance.into(),
                    ..Default::default()
                }),
                rationale: rationale.into(),
                child_view: Some(cpb::ChildView {
                    view: "wants to see mum more, and to have her at football".into(),
                    not_obtained_reason: String::new(),
                }),
            },
        )?;
        let review = some(
            ask("CompleteReview", self.cases.complete_review(r))
                .await?
                .review,
            "review",
        )?;
        self.say("The caseworker completed a step review: advance, with the child's view. It waits for the team lead.");
        let r = req(
            &self.tokens.team_lead,
            cpb::ApproveDecisionRequest {
                case_id: self.case.id.clone(),
                review_id: review.id.clone(),
                etag: review.etag.clone(),
            },
        )?;
        let case = some(
            ask("ApproveDecision", self.cases.approve_decision(r))
                .await?
                .case,
            "case",
        )?;
        self.step_began = Utc::now();
        self.say(&format!(
            "The team lead approved: the case is in {}.",
            step(case.step())
        ));
        self.case = case;
        Ok(())
    }

    async fn prepare_for_responsibility(&mut self) -> Result<()> {
        let r = req(
            &self.tokens.caseworker,
            cpb::AddFollowUpGoalRequest {
                case_id: self.case.id.clone(),
                request_id: String::new(),
                goal: Some(cpb::FollowUpGoal {
                    description: "predictable bedtime routines".into(),
                    ..Default::default()
                }),
            },
        )?;
        ask("AddFollowUpGoal", self.cases.add_follow_up_goal(r)).await?;
        self.say("Parenting goal in the follow-up plan: predictable bedtime routines.");

        let today = oslo_date(Utc::now());
        let mut invited = self.parents.clone();
        invited.push(self.foster_id.clone());
        let r = req(
            &self.tokens.caseworker,
            cpb::ScheduleFamilyGroupConferenceRequest {
                case_id: self.case.id.clone(),
                request_id: String::new(),
                conference: Some(cpb::FamilyGroupConference {
                    planned_date: Some(date_to_proto(today)),
                    coordinator: "an independent coordinator".into(),
                    participant_ids: invited,
                    ..Default::default()
                }),
            },
        )?;
        let conference = some(
            ask(
                "ScheduleFamilyGroupConference",
                self.cases.schedule_family_group_conference(r),
            )
            .await?
            .conference,
            "conference",
        )?;
        let r = req(
            &self.tokens.caseworker,
            cpb::RecordConferenceOutcomeRequest {
                case_id: self.case.id.clone(),
                conference_id: conference.id.clone(),
                etag: conference.etag.clone(),
                held_on: Some(date_to_proto(today)),
                actions: vec![cpb::ConferenceAction {
                    owner: "the grandmother".into(),
                    what: "picks Emma up from school on Wednesdays".into(),
                    due_date: Some(date_to_proto(today + Span::days(30))),
                }],
            },
        )?;
        ask(
            "RecordConferenceOutcome",
            self.cases.record_conference_outcome(r),
        )
        .await?;
        self.say("A family group conference was held; the family's plan: the grandmother picks Emma up on Wednesdays.");

        for (kind, what) in [
            (
                cpb::CareTaskKind::SchoolFollowUp,
                "homework and school messages",
            ),
            (cpb::CareTaskKind::LeisureActivities, "football on Tuesdays"),
            (cpb::CareTaskKind::Bedtime, "bedtime on visit days"),
        ] {
            let r = req(
                &self.tokens.caseworker,
                cpb::AddCareTaskRequest {
                    case_id: self.case.id.clone(),
                    request_id: String::new(),
                    task: Some(cpb::CareTask {
                        kind: kind.into(),
                        description: what.into(),
                        ..Default::default()
                    }),
                },
            )?;
            ask("AddCareTask", self.cases.add_care_task(r)).await?;
        }
        self.say("The reunification plan: three care tasks, all with the foster parents for now.");
        Ok(())
    }

    /// Moves every care task one holder towards the parents, twice: foster parents → shared →
    /// parents.
    async fn transfer_care(&mut self) -> Result<()> {
        for to in [cpb::CareTaskHolder::Shared, cpb::CareTaskHolder::Parents] {
            let r = req(
                &self.tokens.caseworker,
                cpb::ListCareTasksRequest {
                    case_id: self.case.id.clone(),
                },
            )?;
            let tasks = ask("ListCareTasks", self.cases.list_care_tasks(r))
                .await?
                .tasks;
            let mut progress = None;
            for task in tasks {
                let r = req(
                    &self.tokens.caseworker,
                    cpb::MoveCareTaskRequest {
                        case_id: self.case.id.clone(),
                        task_id: task.id.clone(),
                        etag: task.etag.clone(),
                        to: to.into(),
                    },
                )?;
                ask("MoveCareTask", self.cases.move_care_task(r)).await?;
                let r = req(
                    &self.tokens.caseworker,
                    cpb::ListCareTasksRequest {
                        case_id: self.case.id.clone(),
                    },
                )?;
                progress = ask("ListCareTasks", self.cases.list_care_tasks(r))
                    .await?
                    .progress;
                let p = progress.unwrap_or_default();
                self.say(&format!(
                    "Moved \"{}\" to {}: {}% of the care is with the parents.",
                    task.description,
                    words(to.as_str_name(), "CARE_TASK_HOLDER_"),
                    p.percent_with_parents
                ));
            }
            let p = progress.unwrap_or_default();
            println!(
                "      care tasks: {} with the foster parents, {} shared, {} with the parents",
                p.foster_parents, p.shared, p.parents
            );
        }
        Ok(())
    }

    /// What each member (and the caseworker) has in their inbox at the end.
    async fn inboxes(&mut self) -> Result<()> {
        self.title("What each person received in all");
        let all = self.all_notifications().await?;
        let mut by_recipient: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for n in &all {
            *by_recipient
                .entry(self.recipient(n))
                .or_default()
                .entry(n.kind.clone())
                .or_default() += 1;
        }
        for (who, kinds) in &by_recipient {
            let total: usize = kinds.values().sum();
            let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} x{n}")).collect();
            println!("  {who:<32} {total:>3}: {}", kinds.join(", "));
        }
        let unnotified: Vec<String> = self
            .names
            .iter()
            .filter(|(_, name)| !by_recipient.contains_key(*name))
            .map(|(_, name)| name.clone())
            .collect();
        if !unnotified.is_empty() {
            println!("  nothing for: {}", unnotified.join(", "));
        }
        println!();
        println!(
            "Done in {:.0} s: case {} is in {} with the care moved to the parents.",
            self.started.elapsed().as_secs_f64(),
            self.case.id,
            step(self.case.step())
        );
        Ok(())
    }
}
