//! The policy engine's hot paths, which every sweep runs once per open case and every decision
//! once: scope computed for a parent (each step, with a board floor, with a secret address), scope
//! checked against the floor, readiness assessed, the due reviews computed, and the policy file
//! parsed (at start and on reload).
//!
//! `cargo bench -p landsby-domain --bench policy` (add `-- --warm-up-time 1 --measurement-time 3`
//! for a quicker run). Figures in docs/performance.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDate;
use criterion::{Criterion, criterion_group, criterion_main};
use landsby_domain::due::{ConcernFact, ConferenceFact, DueInput, SecretAddressFact, due_reviews};
use landsby_domain::policy::DEFAULT_POLICY;
use landsby_domain::readiness::{ConferenceState, Facts, assess};
use landsby_domain::scope::{CancelledBy, OutcomeKind, ScopeInput, VisitOutcome, check, compute};
use landsby_domain::{Goal, Policy, Step, VisitPeriod, VisitationFloor};
use std::hint::black_box;
use uuid::Uuid;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a date")
}

/// A year of fortnightly visits, a few cancelled or missed, one with a concern.
fn recent_visits(today: NaiveDate) -> Vec<VisitOutcome> {
    (1..=26)
        .map(|i| VisitOutcome {
            on: today - chrono::Days::new(14 * i),
            kind: match i % 9 {
                3 => OutcomeKind::Cancelled {
                    by: CancelledBy::Parent,
                },
                5 => OutcomeKind::NoShow,
                7 => OutcomeKind::Completed { concern: true },
                _ => OutcomeKind::Completed { concern: false },
            },
        })
        .collect()
}

fn scope(c: &mut Criterion) {
    let policy = Policy::parse(DEFAULT_POLICY).expect("the default policy");
    let today = day(2026, 11, 23);
    let visits = recent_visits(today);
    let goals = vec!["Leggetid".to_owned(), "Måltider".to_owned()];
    let floor = VisitationFloor {
        parent_id: Uuid::from_u128(7),
        min_visits: 6,
        period: VisitPeriod::Year,
        min_duration_minutes: 120,
        supervision_required: true,
    };
    let input = |step, floor, secret_address| ScopeInput {
        step,
        goal: Goal::Reunification,
        floor,
        secret_address,
        child_birth_date: day(2022, 3, 14),
        today,
        recent_visits: &visits,
        current: None,
        parenting_goals: &goals,
    };
    let mut group = c.benchmark_group("scope::compute");
    for (name, step) in [
        ("step 1", Step::Safety),
        ("step 2", Step::Involvement),
        ("step 3", Step::Responsibility),
    ] {
        let i = input(step, None, false);
        group.bench_function(name, |b| b.iter(|| compute(black_box(&i), &policy)));
    }
    let floored = input(Step::Safety, Some(&floor), false);
    group.bench_function("step 1, board floor", |b| {
        b.iter(|| compute(black_box(&floored), &policy))
    });
    let secret = input(Step::Involvement, Some(&floor), true);
    group.bench_function("step 2, floor and secret address", |b| {
        b.iter(|| compute(black_box(&secret), &policy))
    });
    group.finish();

    let values = compute(&secret, &policy).values();
    c.bench_function("scope::check (floor, secret address)", |b| {
        b.iter(|| check(black_box(&values), Some(&floor), true))
    });
}

fn readiness(c: &mut Criterion) {
    let policy = Policy::parse(DEFAULT_POLICY).expect("the default policy");
    let facts = Facts {
        frame_complete: true,
        completed_visits_without_concerns: 8,
        visits_with_foster_parent_involvement: 3,
        active_parenting_goals: 2,
        conference: ConferenceState::Held,
        reunification_plan_tasks: 4,
        child_view_recorded: true,
    };
    c.bench_function("readiness::assess (step 2 to 3)", |b| {
        b.iter(|| {
            assess(
                Step::Involvement,
                Goal::Reunification,
                black_box(&facts),
                &policy.readiness,
            )
        })
    });
}

fn due(c: &mut Criterion) {
    let policy = Policy::parse(DEFAULT_POLICY).expect("the default policy");
    let today = day(2026, 11, 23);
    let follow_ups: Vec<NaiveDate> = (1..=4).map(|i| today - chrono::Days::new(90 * i)).collect();
    let conferences = [ConferenceFact {
        id: Uuid::from_u128(1),
        held_on: Some(day(2026, 6, 2)),
        follow_up_done: false,
    }];
    let concerns = [ConcernFact {
        visit_id: Uuid::from_u128(2),
        on: day(2026, 11, 2),
        reviewed: false,
    }];
    let secret = [SecretAddressFact {
        decision_id: Uuid::from_u128(3),
        valid_from: day(2025, 9, 1),
        valid_to: None,
        last_renewed: Some(day(2026, 2, 1)),
    }];
    let input = DueInput {
        today,
        step: Step::Involvement,
        step_since: day(2026, 5, 4),
        last_step_review: Some(day(2026, 8, 10)),
        plan_established: Some(day(2025, 10, 1)),
        last_plan_evaluation: Some(day(2026, 4, 1)),
        placed_since: Some(day(2025, 9, 1)),
        follow_up_visits: &follow_ups,
        follow_up_reduction: None,
        conferences: &conferences,
        concerns: &concerns,
        secret_address_decisions: &secret,
    };
    c.bench_function(
        "due::due_reviews (conference, concern, secret address)",
        |b| b.iter(|| due_reviews(black_box(&input), &policy.reviews)),
    );
}

fn parse(c: &mut Criterion) {
    c.bench_function("Policy::parse (the default policy file)", |b| {
        b.iter(|| Policy::parse(black_box(DEFAULT_POLICY)))
    });
}

criterion_group!(benches, scope, readiness, due, parse);
criterion_main!(benches);
