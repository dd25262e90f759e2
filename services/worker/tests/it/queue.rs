//! The worker's queue guards and its own tables, on both databases: a job pushed twice is queued
//! once; a job whose worker process is lost is taken up again with the attempt counted and is DEAD
//! once its attempts are spent (apalis's own re-enqueue would loop for ever); feed leases; sweeps
//! and their batches.

use landsby_platform::db::DbPool;
use landsby_testkit::{AGENCY, Backend, TestDb, on_both_backends};
use landsby_worker::jobs::Job;
use landsby_worker::queue::{Advance, Also, Queue, StatusFilter};
use landsby_worker::store::{self, BatchCounts};
use std::time::Duration;
use uuid::Uuid;

on_both_backends!(
    a_job_pushed_twice_is_queued_once,
    a_job_whose_process_is_lost_runs_again_until_its_attempts_are_spent,
    a_pending_job_with_its_attempts_spent_is_dead_and_retry_revives_it,
    the_cursor_moves_only_with_the_lease_and_with_the_jobs,
    one_process_follows_a_feed_at_a_time,
    one_sweep_runs_at_a_time_and_a_tick_is_swept_once,
    a_batch_done_twice_counts_once_and_the_last_batch_finishes_the_sweep,
    batches_finishing_at_once_and_the_plan_still_finish_the_sweep,
    retention_removes_old_done_and_dead_jobs_and_nothing_else,
);

async fn migrated(backend: Backend) -> (TestDb, DbPool) {
    let db = TestDb::new(backend).await;
    let pool = db.pool();
    pool.migrate(&landsby_worker::MIGRATIONS).await.unwrap();
    (db, pool)
}

fn recompute(case_id: Uuid) -> Job {
    Job::RecomputeCase {
        agency: AGENCY.into(),
        case_id,
        step: None,
    }
}

/// Marks the job as held by a worker process last seen long ago, as after a kill -9.
async fn held_by_a_lost_process(pool: &DbPool, id: &str) {
    match pool {
        DbPool::Sqlite(p) => {
            sqlx::query(
                "INSERT INTO Workers (id, worker_type, storage_name, layers, last_seen, started_at) \
                 VALUES ('lost', 'landsby.worker', 'SqliteStorage', '', strftime('%s','now') - 600, \
                 strftime('%s','now') - 900) ON CONFLICT (id) DO NOTHING",
            )
            .execute(p)
            .await
            .unwrap();
            sqlx::query("UPDATE Jobs SET status = 'Running', lock_by = 'lost', lock_at = strftime('%s','now') WHERE id = $1")
                .bind(id)
                .execute(p)
                .await
                .unwrap();
        }
        DbPool::Postgres(p) => {
            sqlx::query(
                "INSERT INTO apalis.workers (id, worker_type, storage_name, layers, last_seen) \
                 VALUES ('lost', 'landsby.worker', 'PostgresStorage', '', NOW() - INTERVAL '10 minutes') \
                 ON CONFLICT (id) DO NOTHING",
            )
            .execute(p)
            .await
            .unwrap();
            sqlx::query("UPDATE apalis.jobs SET status = 'Running', lock_by = 'lost', lock_at = NOW() WHERE id = $1")
                .bind(id)
                .execute(p)
                .await
                .unwrap();
        }
    }
}

async fn a_job_pushed_twice_is_queued_once(backend: Backend) {
    let (_db, pool) = migrated(backend).await;
    let q = Queue::new(&pool);
    let job = recompute(Uuid::now_v7());
    for _ in 0..2 {
        let jobs = [(job.clone(), "recompute/x/v1".to_owned())];
        assert!(q.push(&jobs, 3, Also::Nothing).await.unwrap());
    }
    // Another key, in the same push as a repeated one.
    let jobs = [
        (job.clone(), "recompute/x/v1".to_owned()),
        (job.clone(), "recompute/x/v2".to_owned()),
    ];
    q.push(&jobs, 3, Also::Nothing).await.unwrap();
    let all = q.list(AGENCY, StatusFilter::Any, None, 50).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(
        all.iter()
            .all(|r| r.job.as_ref() == Some(&job) && r.status == "Pending")
    );
    assert!(
        q.list("4601", StatusFilter::Any, None, 50)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_job_whose_process_is_lost_runs_again_until_its_attempts_are_spent(backend: Backend) {
    let (_db, pool) = migrated(backend).await;
    let q = Queue::new(&pool);
    q.push(&[(recompute(Uuid::now_v7()), "k".into())], 3, Also::Nothing)
        .await
        .unwrap();
    let id = q.list(AGENCY, StatusFilter::Any, None, 1).await.unwrap()[0]
        .id
        .clone();
    // Crashes its process on every attempt: taken up again twice, then DEAD.
    for attempt in 1..=3 {
        held_by_a_lost_process(&pool, &id).await;
        let (again, dead) = q.guard(Duration::from_secs(30)).await.unwrap();
        let row = q.get(AGENCY, &id).await.unwrap().unwrap();
        assert_eq!(row.attempts, attempt);
        if attempt < 3 {
            assert_eq!((again, dead), (1, 0));
            assert_eq!(row.status, "Pending");
        } else {
            assert_eq!((again, dead), (0, 1));
            assert_eq!(row.status, "Killed");
            assert!(row.last_result.unwrap().contains("attempts are spent"));
        }
    }
    assert_eq!(
        q.list(AGENCY, StatusFilter::Dead, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // A process seen recently keeps its jobs.
    let fresh = recompute(Uuid::now_v7());
    q.push(&[(fresh, "k2".into())], 3, Also::Nothing)
        .await
        .unwrap();
    let id2 = q
        .list(AGENCY, StatusFilter::Pending, None, 1)
        .await
        .unwrap()[0]
        .id
        .clone();
    held_by_a_lost_process(&pool, &id2).await;
    assert_eq!(q.guard(Duration::from_secs(3600)).await.unwrap(), (0, 0));
}

async fn a_pending_job_with_its_attempts_spent_is_dead_and_retry_revives_it(backend: Backend) {
    let (_db, pool) = migrated(backend).await;
    let q = Queue::new(&pool);
    q.push(&[(recompute(Uuid::now_v7()), "k".into())], 2, Also::Nothing)
        .await
        .unwrap();
    let id = q.list(AGENCY, StatusFilter::Any, None, 1).await.unwrap()[0]
        .id
        .clone();
    // apalis's own orphan re-enqueue leaves a job Pending past its attempts.
    match &pool {
        DbPool::Sqlite(p) => sqlx::query("UPDATE Jobs SET attempts = 5 WHERE id = $1")
            .bind(&id)
            .execute(p)
            .await
            .map(drop),
        DbPool::Postgres(p) => sqlx::query("UPDATE apalis.jobs SET attempts = 5 WHERE id = $1")
            .bind(&id)
            .execute(p)
            .await
            .map(drop),
    }
    .unwrap();
    assert_eq!(q.guard(Duration::from_secs(30)).await.unwrap(), (0, 1));
    assert_eq!(q.get(AGENCY, &id).await.unwrap().unwrap().status, "Killed");
    // Another agency cannot revive it; the agency can, with its attempts from zero.
    assert!(!q.retry("4601", &id).await.unwrap());
    assert!(q.retry(AGENCY, &id).await.unwrap());
    let row = q.get(AGENCY, &id).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.attempts), ("Pending", 0));
    assert!(
        !q.retry(AGENCY, &id).await.unwrap(),
        "a pending job is not retried"
    );
}

async fn the_cursor_moves_only_with_the_lease_and_with_the_jobs(backend: Backend) {
    let (_db, pool) = migrated(backend).await;
    let q = Queue::new(&pool);
    let s = store::open(pool.clone());
    assert_eq!(
        s.lease("case", AGENCY, "a", Duration::from_secs(30))
            .await
            .unwrap(),
        Some(0)
    );
    let advance = |owner, seq| Advance {
        feed: "case",
        agency: AGENCY,
        after_sequence: seq,
        owner,
    };
    let job = [(recompute(Uuid::now_v7()), "k1".to_owned())];
    assert!(
        q.push(&job, 3, Also::Cursor(advance("a", 7)))
            .await
            .unwrap()
    );
    assert_eq!(s.cursor("case", AGENCY).await.unwrap(), 7);
    // Not the lease holder: nothing moves and nothing is queued.
    let other = [(recompute(Uuid::now_v7()), "k2".to_owned())];
    assert!(
        !q.push(&other, 3, Also::Cursor(advance("b", 9)))
            .await
            .unwrap()
    );
    assert_eq!(s.cursor("case", AGENCY).await.unwrap(), 7);
    assert_eq!(
        q.list(AGENCY, StatusFilter::Any, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // Resuming reads the cursor back.
    assert_eq!(
        s.lease("case", AGENCY, "a", Duration::from_secs(30))
            .await
            .unwrap(),
        Some(7)
    );
    assert_eq!(s.cursor("visitation", AGENCY).await.unwrap(), 0);
}

async fn one_process_follows_a_feed_at_a_time(backend: Backend) {
    let (_db, pool) = migrated(backend).await;
    let s = store::open(pool);
    let ttl = Duration::from_secs(30);
    assert!(s.lease("case", AGENCY, "a", ttl).await.unwrap().is_some());
    assert!(s.lease("case", AGENCY, "b", ttl).await.unwrap().is_none());
    assert!(
        s.lease("visitation", AGENCY, "b", ttl)
            .await
            .unwrap()
            .is_some(),
        "another feed"
    );
    assert!(
        s.lease("case", "4601", "b", ttl).await.unwrap().is_some(),
        "another agency"
    );
    s.release("case", AGENCY, "a").await.unwrap();
    assert!(s.lease("case", AGENCY, "b", ttl).await.unwrap().is_some());
    // A lease that ran out (its process died) is taken over.
    assert!(
        s.lease("visitation", "4601", "c", Duration::ZERO)
            .await
            .unwrap()
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        s.lease("visitation", "4601", "d", ttl)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.lease("visitation", "4601", "c", ttl)
            .await
            .unwrap()
            .is_none()
    );
}

async fn one_sweep_runs_at_a_time_and_a_tick_is_swept_once(backend: Backend) {
    let (_db, pool) = migrated(backend).await;
    let s = store::open(pool);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
    let (first, started) = s.start_sweep(AGENCY, "cron:1", "cron", day).await.unwrap();
    assert!(started);
    let (again, started) = s.start_sweep(AGENCY, "cron:1", "cron", day).await.unwrap();
    assert!(!started);
    assert_eq!(again.id, first.id);
    let (running, started) = s
        .start_sweep(AGENCY, "manual:x", "manual", day)
        .await
        .unwrap();
    assert!(!started, "one sweep of an agency at a time");
    assert_eq!(running.id, first.id);
    let (other, started) = s.start_sweep("4601", "cron:1", "cron", day).await.unwrap();
    assert!(started, "another agency's sweep is its own");
    assert_ne!(other.id, first.id);
    // Finished (planned, no batches): the next tick sweeps again; the old tick does not.
    s.planned(first.id).await.unwrap();
    let done = s.sweep(AGENCY, Some(first.id)).await.unwrap().unwrap();
    assert!(done.finished_at.is_some());
    let (_, started) = s.start_sweep(AGENCY, "cron:1", "cron", day).await.unwrap();
    assert!(!started);
    let (next, started) = s.start_sweep(AGENCY, "cron:2", "cron", day).await.unwrap();
    assert!(started);
    assert_eq!(s.sweep(AGENCY, None).await.unwrap().unwrap().id, next.id);
    assert!(s.sweep("4601", Some(first.id)).await.unwrap().is_none());
}

async fn a_batch_done_twice_counts_once_and_the_last_batch_finishes_the_sweep(backend: Backend) {
    let (_db, pool) = migrated(backend).await;
    let q = Queue::new(&pool);
    let s = store::open(pool);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
    let (sweep, _) = s
        .start_sweep(AGENCY, "manual:1", "manual", day)
        .await
        .unwrap();
    for key in ["b1", "b2"] {
        let job = Job::SweepBatch {
            agency: AGENCY.into(),
            sweep_id: sweep.id,
            batch: 0,
            key: key.into(),
            case_ids: vec![Uuid::now_v7(), Uuid::now_v7()],
        };
        // Planned twice (a planner run again): recorded once.
        for _ in 0..2 {
            let also = Also::Batch {
                sweep_id: sweep.id,
                key,
                cases: 2,
            };
            q.push(&[(job.clone(), key.to_owned())], 3, also)
                .await
                .unwrap();
        }
    }
    s.planned(sweep.id).await.unwrap();
    let counts = BatchCounts {
        cases_done: 2,
        review_reminders: 1,
        ..BatchCounts::default()
    };
    s.finish_batch(sweep.id, "b1", counts).await.unwrap();
    s.finish_batch(sweep.id, "b1", counts).await.unwrap();
    let mid = s.sweep(AGENCY, Some(sweep.id)).await.unwrap().unwrap();
    assert_eq!(
        (mid.cases_total, mid.batches_total, mid.batches_done),
        (4, 2, 1)
    );
    assert_eq!(mid.counts.cases_done, 2);
    assert!(mid.finished_at.is_none());
    s.finish_batch(sweep.id, "b2", counts).await.unwrap();
    let end = s.sweep(AGENCY, Some(sweep.id)).await.unwrap().unwrap();
    assert_eq!(end.counts.cases_done, 4);
    assert_eq!(end.counts.review_reminders, 2);
    assert!(end.finished_at.is_some());
    assert_eq!(
        q.list(AGENCY, StatusFilter::Any, None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

/// Batches done at the same moment as each other and as the planner's last word: whichever
/// commits last sees the others and finishes the sweep (none may decide on what another has not
/// committed yet, or the sweep never ends and `sweep --once` waits forever).
async fn batches_finishing_at_once_and_the_plan_still_finish_the_sweep(backend: Backend) {
    let (_db, pool) = migrated(backend).await;
    let q = Queue::new(&pool);
    let s = store::open(pool);
    for round in 0..10 {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        let (sweep, _) = s
            .start_sweep(AGENCY, &format!("manual:{round}"), "manual", day)
            .await
            .unwrap();
        let keys: Vec<String> = (0..8).map(|i| format!("r{round}b{i}")).collect();
        for key in &keys {
            let job = Job::SweepBatch {
                agency: AGENCY.into(),
                sweep_id: sweep.id,
                batch: 0,
                key: key.clone(),
                case_ids: vec![Uuid::now_v7()],
            };
            let also = Also::Batch {
                sweep_id: sweep.id,
                key,
                cases: 1,
            };
            q.push(&[(job, key.clone())], 3, also).await.unwrap();
        }
        let counts = BatchCounts {
            cases_done: 1,
            ..BatchCounts::default()
        };
        let mut tasks = tokio::task::JoinSet::new();
        for key in keys {
            let s = s.clone();
            tasks.spawn(async move { s.finish_batch(sweep.id, &key, counts).await });
        }
        let planner = s.clone();
        tasks.spawn(async move { planner.planned(sweep.id).await });
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
        let end = s.sweep(AGENCY, Some(sweep.id)).await.unwrap().unwrap();
        assert_eq!(end.counts.cases_done, 8);
        assert!(end.finished_at.is_some(), "round {round}: never finished");
    }
}

/// Sets a job's status, attempts and when it finished (`days` ago).
async fn finished(pool: &DbPool, id: &str, status: &str, attempts: i64, days: i64) {
    let secs = days * 24 * 3600;
    match pool {
        DbPool::Sqlite(p) => sqlx::query(
            "UPDATE Jobs SET status = $1, attempts = $2, done_at = strftime('%s','now') - $3 \
             WHERE id = $4",
        )
        .bind(status)
        .bind(attempts)
        .bind(secs)
        .bind(id)
        .execute(p)
        .await
        .map(drop),
        DbPool::Postgres(p) => sqlx::query(
            "UPDATE apalis.jobs SET status = $1, attempts = $2, \
             done_at = NOW() - make_interval(secs => $3) WHERE id = $4",
        )
        .bind(status)
        .bind(attempts)
        .bind(secs as f64)
        .bind(id)
        .execute(p)
        .await
        .map(drop),
    }
    .unwrap();
}

async fn retention_removes_old_done_and_dead_jobs_and_nothing_else(backend: Backend) {
    let (_db, pool) = migrated(backend).await;
    let q = Queue::new(&pool);
    // (status, attempts of 3, finished days ago, removed with 30 days for done and 90 for DEAD)
    let cases = [
        ("Done", 1, 40, true),
        ("Done", 1, 1, false),
        ("Killed", 3, 100, true),
        ("Killed", 3, 40, false),
        ("Failed", 3, 100, true),
        // Failed with attempts left runs again: not finished, whatever its age.
        ("Failed", 1, 100, false),
    ];
    let mut ids = Vec::new();
    for (n, (status, attempts, days, _)) in cases.iter().enumerate() {
        q.push(
            &[(recompute(Uuid::now_v7()), format!("k{n}"))],
            3,
            Also::Nothing,
        )
        .await
        .unwrap();
        let id = q.list(AGENCY, StatusFilter::Any, None, 1).await.unwrap()[0]
            .id
            .clone();
        finished(&pool, &id, status, *attempts, *days).await;
        ids.push(id);
    }
    q.push(
        &[(recompute(Uuid::now_v7()), "pending".into())],
        3,
        Also::Nothing,
    )
    .await
    .unwrap();
    let day = Duration::from_secs(24 * 3600);
    assert_eq!(q.purge_finished(30 * day, 90 * day).await.unwrap(), 3);
    for (id, (status, _, days, removed)) in ids.iter().zip(cases) {
        let row = q.get(AGENCY, id).await.unwrap();
        assert_eq!(row.is_none(), removed, "{status} {days} days ago");
    }
    assert_eq!(
        q.list(AGENCY, StatusFilter::Pending, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(q.purge_finished(30 * day, 90 * day).await.unwrap(), 0);
}
