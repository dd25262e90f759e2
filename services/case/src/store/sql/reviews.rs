//! [`ReviewStore`]: reviews and their decisions, readiness facts, and the worker's derived data.

use super::CaseChange;
use super::{SqlCaseStore, limit, not_found, update_cases};
use crate::model::{
    ConferenceAction, ContactPoint, DecisionStatus, Idempotency, NewReview, ReviewFilter,
    ReviewOutcome, ReviewRecord, ReviewStatus, Settle, Standing,
};
use crate::store::rows::{
    CareTaskRow, CaseRow, ConferenceRow, CountsRow, DecisionRow, FloorJson, GoalRow, MemberRow,
    ReviewRow, VisitFactRow, review_columns,
};
use crate::store::{DueReviewsSync, ReviewCursor, ReviewStore, VisitFactsSync};
use chrono::{DateTime, NaiveDate, Utc};
use landsby_domain::AgencyId;
use landsby_domain::policy::newer_stamp;
use landsby_domain::readiness::Facts;
use landsby_platform::ApiError;
use landsby_platform::audit::{self, AuditEntry};
use landsby_platform::db::{Dialect, placeholders, value_rows};
use landsby_platform::idempotency::{self, Claim, ClaimRow};
use landsby_proto::case::{self as pb, case_event::Change as EventChange};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Encode, Executor, FromRow, IntoArguments, Type};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

const OTHER_PENDING_DECISION: &str = concat!(
    "SELECT ",
    review_columns!(),
    " FROM reviews WHERE case_id = $1 AND decision_status = $2 AND id <> $3 ORDER BY id LIMIT 1"
);
const LIST_REVIEWS: &str = concat!(
    "SELECT ",
    review_columns!(),
    " FROM reviews WHERE case_id = $1 AND ($2 IS NULL OR due_date < $2) \
     AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR due_date > $4 OR (due_date = $4 AND id > $5)) \
     ORDER BY due_date, id LIMIT $6"
);
/// Followed by one placeholder per case, then [`COMPUTED_REVIEWS_END`].
const COMPUTED_REVIEWS: &str = concat!(
    "SELECT ",
    review_columns!(),
    " FROM reviews WHERE computed_key IS NOT NULL AND status IN ('scheduled', 'completed') \
     AND case_id IN ("
);
const COMPUTED_REVIEWS_END: &str = ") ORDER BY case_id, due_date, id";
const INSERT_STEP_HISTORY: &str = "INSERT INTO step_history \
    (id, case_id, review_id, from_step, to_step, from_goal, to_goal, decided_by, approved_by, changed_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
/// Followed by one placeholder per case and `)`.
const DELETE_VISIT_FACTS: &str = "DELETE FROM visit_facts WHERE case_id IN (";
/// Followed by one group of [`VISIT_FACT_COLUMNS`] placeholders per visit.
const INSERT_VISIT_FACTS: &str = "INSERT INTO visit_facts \
    (case_id, visit_id, parent_id, started_at, outcome, concern, foster_parents_involved) VALUES ";
const VISIT_FACT_COLUMNS: usize = 7;
/// Visit facts inserted by one statement (well under either database's parameter limit).
const VISIT_FACTS_CHUNK: usize = 500;
/// Where the due reviews were last computed from: the case id and the stamp's three values.
const SET_DUE_REVIEWS_STAMP: &str = "due_reviews_case_version = v.column2, \
    due_reviews_policy_version = v.column3, due_reviews_computed_on = v.column4";
/// The visit facts' position and what moves with them: the case id and four values.
const SET_VISIT_FACTS: &str = "visit_facts_sequence = v.column2, frame_complete = v.column3, \
    version = v.column4, updated_at = v.column5";
/// Cases one narrow update writes (well under either database's parameter limit).
const CASES_CHUNK: usize = 500;

fn reviews_changed(ids: &[Uuid]) -> EventChange {
    EventChange::ReviewsChanged(pb::ReviewsChanged {
        review_ids: ids.iter().map(Uuid::to_string).collect(),
    })
}

#[async_trait::async_trait]
impl<DB> ReviewStore for SqlCaseStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> Uuid: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
    for<'q> NaiveDate: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Uuid>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<NaiveDate>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB> + Type<DB>,
    for<'q> Json<Vec<ContactPoint>>: Encode<'q, DB> + Type<DB>,
    for<'q> Json<Vec<FloorJson>>: Encode<'q, DB> + Type<DB>,
    for<'q> Json<Vec<Uuid>>: Encode<'q, DB> + Type<DB>,
    for<'q> Json<Vec<ConferenceAction>>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Json<ReviewOutcome>>: Encode<'q, DB> + Type<DB>,
    for<'r> CaseRow: FromRow<'r, DB::Row>,
    for<'r> MemberRow: FromRow<'r, DB::Row>,
    for<'r> DecisionRow: FromRow<'r, DB::Row>,
    for<'r> ClaimRow: FromRow<'r, DB::Row>,
    for<'r> ReviewRow: FromRow<'r, DB::Row>,
    for<'r> GoalRow: FromRow<'r, DB::Row>,
    for<'r> CareTaskRow: FromRow<'r, DB::Row>,
    for<'r> ConferenceRow: FromRow<'r, DB::Row>,
    for<'r> VisitFactRow: FromRow<'r, DB::Row>,
    for<'r> CountsRow: FromRow<'r, DB::Row>,
{
    async fn schedule_review(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        new: NewReview,
        idempotency: Option<Idempotency>,
        mut audit: AuditEntry,
    ) -> Result<ReviewRecord, ApiError> {
        audit.case_id = Some(case_id);
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let mut case = Self::locked_case(&mut tx, agency, case_id).await?;
        let id = Uuid::now_v7();
        if let Some(idem) = &idempotency
            && let Claim::Replay(existing) =
                idempotency::claim::<DB>(&mut tx, agency.as_str(), idem, id, audit.at).await?
        {
            let review = Self::load_review(&mut tx, case_id, existing, false)
                .await?
                .ok_or_else(|| ApiError::internal("a remembered request names a missing review"))?;
            audit.resource_ids = vec![review.id];
            audit::append(&mut *tx, &audit).await?;
            tx.commit().await?;
            return Ok(review);
        }
        crate::model::ensure_open(&case)?;
        let review = ReviewRecord {
            id,
            case_id,
            kind: new.kind,
            due_date: new.due_date,
            status: ReviewStatus::Scheduled,
            note: new.note,
            computed_key: None,
            outcome: None,
            decision_status: None,
            version: 1,
            created_at: audit.at,
            updated_at: audit.at,
        };
        Self::insert_reviews(&mut tx, std::slice::from_ref(&review)).await?;
        Self::bump(&mut tx, &mut case, audit.at).await?;
        audit.resource_ids = vec![id];
        self.commit_change(tx, &case, &audit, vec![reviews_changed(&[id])])
            .await?;
        Ok(review)
    }

    async fn list_reviews(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        filter: &ReviewFilter,
        after: Option<ReviewCursor>,
        n: usize,
    ) -> Result<Option<Vec<ReviewRecord>>, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_READ).await?;
        if !Self::case_exists(&mut tx, agency, case_id).await? {
            return Ok(None);
        }
        let rows: Vec<ReviewRow> = sqlx::query_as(LIST_REVIEWS)
            .bind(case_id)
            .bind(filter.due_before)
            .bind(filter.status.map(|s| s.as_str().to_owned()))
            .bind(after.map(|(due, _)| due))
            .bind(after.map(|(_, id)| id))
            .bind(limit(n))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.into_iter()
            .map(ReviewRow::into_record)
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    async fn settle_review(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
        review_id: Uuid,
        expected_version: i64,
        settle: Settle,
        mut audit: AuditEntry,
    ) -> Result<(ReviewRecord, crate::model::CaseRecord), ApiError> {
        audit.case_id = Some(case_id);
        audit.resource_ids = vec![review_id];
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        let mut case = Self::open_case_for_change(&mut tx, agency, case_id).await?;
        let mut review = Self::load_review(&mut tx, case_id, review_id, true)
            .await?
            .ok_or_else(|| not_found("review"))?;
        if review.version != expected_version {
            return Err(ApiError::StaleEtag { resource: "review" });
        }
        let facts = Self::facts_of(&mut tx, &case).await?;
        let other_pending: Option<ReviewRow> = sqlx::query_as(OTHER_PENDING_DECISION)
            .bind(case_id)
            .bind(DecisionStatus::PendingApproval.as_str().to_owned())
            .bind(review_id)
            .fetch_optional(&mut *tx)
            .await?;
        let settlement = settle(&Standing {
            case: &case,
            review: &review,
            facts: &facts,
            other_pending: other_pending.map(|r| r.id),
        })?;
        let decision = settlement.outcome.decision;
        let (decided_by, approved_by) = (
            settlement.outcome.decided_by.clone(),
            settlement.outcome.reviewed_by.clone(),
        );
        review.outcome = Some(settlement.outcome);
        review.decision_status = Some(settlement.status);
        review.status = ReviewStatus::Completed;
        review.version += 1;
        review.updated_at = audit.at;
        Self::save_review(&mut tx, &review).await?;

        let from = case.position();
        let mut events = Vec::new();
        if let Some(to) = settlement.apply {
            case.step = to.step;
            case.goal = to.goal;
            if to.step != from.step {
                case.step_since = audit.at;
                events.push(EventChange::StepChanged(pb::StepChanged {
                    from: crate::api::convert::step_to(from.step).into(),
                    to: crate::api::convert::step_to(to.step).into(),
                    review_id: review_id.to_string(),
                }));
            }
            if to.goal != from.goal {
                events.push(EventChange::GoalChanged(pb::GoalChanged {
                    from: crate::api::convert::goal_to(from.goal).into(),
                    to: crate::api::convert::goal_to(to.goal).into(),
                    review_id: review_id.to_string(),
                }));
            }
            sqlx::query(INSERT_STEP_HISTORY)
                .bind(Uuid::now_v7())
                .bind(case_id)
                .bind(review_id)
                .bind(from.step.as_str().to_owned())
                .bind(to.step.as_str().to_owned())
                .bind(from.goal.as_str().to_owned())
                .bind(to.goal.as_str().to_owned())
                .bind(decided_by)
                .bind(approved_by)
                .bind(audit.at)
                .execute(&mut *tx)
                .await?;
        }
        case.version += 1;
        case.updated_at = audit.at;
        Self::save_case(&mut tx, &case).await?;
        let completed = EventChange::ReviewCompleted(pb::ReviewCompleted {
            review_id: review_id.to_string(),
            decision: crate::api::convert::decision_kind_to(decision).into(),
            decision_status: crate::api::convert::decision_status_to(settlement.status).into(),
        });
        events.insert(0, completed);
        self.commit_change(tx, &case, &audit, events).await?;
        Ok((review, case))
    }

    async fn readiness_facts(
        &self,
        agency: &AgencyId,
        case_id: Uuid,
    ) -> Result<Option<(crate::model::CaseRecord, Facts)>, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_READ).await?;
        let Some(case) = Self::load_case(&mut tx, agency, case_id, false).await? else {
            return Ok(None);
        };
        let facts = Self::facts_of(&mut tx, &case).await?;
        tx.commit().await?;
        Ok(Some((case, facts)))
    }

    async fn sync_due_reviews(
        &self,
        agency: &AgencyId,
        items: Vec<DueReviewsSync>,
        audit: AuditEntry,
    ) -> Result<Vec<(bool, Vec<ReviewRecord>)>, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        // Set-based: the cases locked and their computed reviews read with one statement each, the
        // new reviews inserted and the stamps moved with one each; only a changed review alone.
        let ids = case_ids(&items, |item| item.case_id);
        let mut cases = Self::locked_cases(&mut tx, agency, &ids).await?;
        let rows: Vec<ReviewRow> =
            Self::rows_of_cases(&mut tx, COMPUTED_REVIEWS, &ids, COMPUTED_REVIEWS_END).await?;
        let mut computed: HashMap<Uuid, Vec<ReviewRecord>> = HashMap::new();
        for row in rows {
            let review = row.into_record()?;
            computed.entry(review.case_id).or_default().push(review);
        }
        let mut out = Vec::with_capacity(items.len());
        let mut changes = Vec::with_capacity(items.len());
        let mut inserted: Vec<ReviewRecord> = Vec::new();
        let mut stamped: Vec<(Uuid, i64, String, NaiveDate)> = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            let DueReviewsSync {
                case_id,
                stamp,
                reviews,
            } = item;
            let mut case = cases.remove(&case_id).ok_or_else(|| not_found("case"))?;
            if stamp.0 > case.version {
                return Err(ApiError::invalid(
                    format!("items[{index}].case_version"),
                    "is newer than the case: compute from a version the case has had",
                ));
            }
            let existing = computed.remove(&case_id).unwrap_or_default();
            let applies = case.status == landsby_domain::CaseStatus::Open
                && newer_stamp(
                    stamp.0,
                    &stamp.1,
                    Some(stamp.2),
                    case.due_reviews_stamp
                        .as_ref()
                        .map(|(v, p, on)| (*v, p.as_str(), *on)),
                );
            let mut changed = Vec::new();
            let mut scheduled: Vec<ReviewRecord> = Vec::new();
            if applies {
                let wanted: HashMap<&str, &NewReview> = reviews
                    .iter()
                    .filter_map(|r| r.computed_key.as_deref().map(|k| (k, r)))
                    .collect();
                let mut seen: HashMap<String, ()> = HashMap::new();
                for mut review in existing {
                    let Some(key) = review.computed_key.clone() else {
                        continue;
                    };
                    seen.insert(key.clone(), ());
                    if review.status != ReviewStatus::Scheduled {
                        continue; // done: history, never replaced
                    }
                    match wanted.get(key.as_str()) {
                        Some(new) => {
                            if (review.kind, review.due_date, &review.note)
                                != (new.kind, new.due_date, &new.note)
                            {
                                review.kind = new.kind;
                                review.due_date = new.due_date;
                                review.note = new.note.clone();
                                review.version += 1;
                                review.updated_at = audit.at;
                                Self::save_review(&mut tx, &review).await?;
                                changed.push(review.id);
                            }
                            scheduled.push(review);
                        }
                        None => {
                            review.status = ReviewStatus::Replaced;
                            review.version += 1;
                            review.updated_at = audit.at;
                            Self::save_review(&mut tx, &review).await?;
                            changed.push(review.id);
                        }
                    }
                }
                for new in &reviews {
                    let Some(key) = new.computed_key.clone() else {
                        continue;
                    };
                    if seen.contains_key(&key) {
                        continue;
                    }
                    seen.insert(key.clone(), ());
                    let review = ReviewRecord {
                        id: Uuid::now_v7(),
                        case_id,
                        kind: new.kind,
                        due_date: new.due_date,
                        status: ReviewStatus::Scheduled,
                        note: new.note.clone(),
                        computed_key: Some(key),
                        outcome: None,
                        decision_status: None,
                        version: 1,
                        created_at: audit.at,
                        updated_at: audit.at,
                    };
                    changed.push(review.id);
                    inserted.push(review.clone());
                    scheduled.push(review);
                }
                // Derived data: the stamp moves, the case's version does not.
                let (version, policy, on) = stamp;
                stamped.push((case_id, version, policy.clone(), on));
                case.due_reviews_stamp = Some((version, policy, Some(on)));
            } else {
                scheduled = existing
                    .into_iter()
                    .filter(|r| r.status == ReviewStatus::Scheduled)
                    .collect();
            }
            scheduled.sort_by_key(|r| (r.due_date, r.id));
            let events = if changed.is_empty() {
                Vec::new()
            } else {
                vec![reviews_changed(&changed)]
            };
            out.push((applies, scheduled));
            changes.push(CaseChange {
                case,
                events,
                resources: changed,
            });
        }
        Self::insert_reviews(&mut tx, &inserted).await?;
        for chunk in stamped.chunks(CASES_CHUNK) {
            let mut query = sqlx::query(AssertSqlSafe(update_cases(
                SET_DUE_REVIEWS_STAMP,
                chunk.len(),
                4,
            )));
            for (case_id, version, policy, on) in chunk {
                query = query
                    .bind(*case_id)
                    .bind(*version)
                    .bind(policy.clone())
                    .bind(*on);
            }
            query.execute(&mut *tx).await?;
        }
        self.commit_cases(tx, &changes, &audit).await?;
        Ok(out)
    }

    async fn sync_visit_facts(
        &self,
        agency: &AgencyId,
        items: Vec<VisitFactsSync>,
        audit: AuditEntry,
    ) -> Result<Vec<bool>, ApiError> {
        let mut tx = landsby_platform::db::begin(&self.pool, DB::BEGIN_WRITE).await?;
        // Set-based: the cases locked and the facts they had read with one statement each; the
        // replaced facts deleted, the new inserted and the positions moved with one each.
        let ids = case_ids(&items, |item| item.case_id);
        let mut cases = Self::locked_cases(&mut tx, agency, &ids).await?;
        let newer = |case: &crate::model::CaseRecord, sequence: i64| {
            case.visit_facts_sequence
                .is_none_or(|known| sequence > known)
        };
        // Facts as of a later position with the frame as known may say what is already known.
        let compared: Vec<Uuid> = items
            .iter()
            .filter(|item| {
                cases.get(&item.case_id).is_some_and(|case| {
                    newer(case, item.sequence) && item.frame_complete == case.frame_complete
                })
            })
            .map(|item| item.case_id)
            .collect();
        let mut known = Self::visit_facts_of(&mut tx, &compared).await?;
        let mut out = Vec::with_capacity(items.len());
        let mut changes = Vec::with_capacity(items.len());
        let mut replaced: Vec<Uuid> = Vec::new();
        let mut facts: Vec<(Uuid, crate::model::VisitFact)> = Vec::new();
        let mut moved: HashSet<Uuid> = HashSet::new();
        for item in items {
            let VisitFactsSync {
                case_id,
                sequence,
                frame_complete,
                visits,
            } = item;
            let mut case = cases.remove(&case_id).ok_or_else(|| not_found("case"))?;
            let newer = newer(&case, sequence);
            // Facts that say what is already known move only the position: no new version (a
            // caseworker's etag stays good), no event (nothing follows from them).
            let same = newer && frame_complete == case.frame_complete && {
                let mut known = known.remove(&case_id).unwrap_or_default();
                let mut given = visits.clone();
                known.sort_by_key(|v| (v.start, v.visit_id));
                given.sort_by_key(|v| (v.start, v.visit_id));
                known == given
            };
            let applies = newer && !same;
            let mut events = Vec::new();
            if newer {
                case.visit_facts_sequence = Some(sequence);
                moved.insert(case_id);
            }
            if applies {
                replaced.push(case_id);
                facts.extend(visits.into_iter().map(|v| (case_id, v)));
                case.frame_complete = frame_complete;
                // Readiness and the due reviews (an early review after a concern) follow from the
                // visit facts, so the case's version moves: a due-review stamp from before is older.
                case.version += 1;
                case.updated_at = audit.at;
                events.push(EventChange::CaseUpdated(pb::CaseUpdated {
                    paths: vec!["visit_facts".to_owned()],
                }));
            }
            out.push(applies);
            changes.push(CaseChange {
                case,
                events,
                resources: Vec::new(),
            });
        }
        if !replaced.is_empty() {
            let sql = format!("{DELETE_VISIT_FACTS}{})", placeholders(1, replaced.len()));
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for case_id in &replaced {
                query = query.bind(*case_id);
            }
            query.execute(&mut *tx).await?;
        }
        for chunk in facts.chunks(VISIT_FACTS_CHUNK) {
            let sql = format!(
                "{INSERT_VISIT_FACTS}{}",
                value_rows(1, chunk.len(), VISIT_FACT_COLUMNS)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (case_id, v) in chunk {
                query = query
                    .bind(*case_id)
                    .bind(v.visit_id)
                    .bind(v.parent_id)
                    .bind(v.start)
                    .bind(v.outcome.as_str().to_owned())
                    .bind(v.concern)
                    .bind(v.foster_parents_involved);
            }
            query.execute(&mut *tx).await?;
        }
        let moved: Vec<&crate::model::CaseRecord> = changes
            .iter()
            .map(|change| &change.case)
            .filter(|case| moved.contains(&case.id))
            .collect();
        for chunk in moved.chunks(CASES_CHUNK) {
            let mut query =
                sqlx::query(AssertSqlSafe(update_cases(SET_VISIT_FACTS, chunk.len(), 5)));
            for case in chunk {
                query = query
                    .bind(case.id)
                    .bind(case.visit_facts_sequence)
                    .bind(case.frame_complete)
                    .bind(case.version)
                    .bind(case.updated_at);
            }
            query.execute(&mut *tx).await?;
        }
        self.commit_cases(tx, &changes, &audit).await?;
        Ok(out)
    }
}

/// The cases of `items`, in id order and each once.
fn case_ids<T>(items: &[T], case_id: impl Fn(&T) -> Uuid) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = items.iter().map(case_id).collect();
    ids.sort();
    ids.dedup();
    ids
}
