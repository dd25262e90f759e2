-- The worker's own tables on PostgreSQL. Its job queue is apalis's, in the schema `apalis` (apalis's
-- migrations are tracked apart, in `_apalis_migrations`). Times are UTC.

-- Where the worker is in each agency's event feeds. One process follows a feed at a time: it holds
-- the lease and renews it while it follows; another takes over when the lease runs out.
CREATE TABLE feed_cursors (
    feed TEXT NOT NULL CHECK (feed IN ('case', 'visitation')),
    agency TEXT NOT NULL CHECK (agency ~ '^[0-9]{4}$'),
    after_sequence BIGINT NOT NULL DEFAULT 0 CHECK (after_sequence >= 0),
    owner TEXT,
    lease_until TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (feed, agency)
);

-- Review sweeps. `tick` names what started one (a cron tick or a manual request): a tick is swept
-- once, however many replicas see it. A sweep is done when it is planned (every open case is in a
-- batch) and every batch is done.
CREATE TABLE sweeps (
    id UUID PRIMARY KEY,
    agency TEXT NOT NULL CHECK (agency ~ '^[0-9]{4}$'),
    tick TEXT NOT NULL,
    trigger TEXT NOT NULL CHECK (trigger IN ('cron', 'manual')),
    day DATE NOT NULL,
    planned BOOLEAN NOT NULL DEFAULT FALSE,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    UNIQUE (agency, tick)
);
CREATE INDEX sweeps_latest ON sweeps (agency, started_at DESC);
-- At most one sweep of an agency runs at a time.
CREATE UNIQUE INDEX sweeps_one_running ON sweeps (agency) WHERE finished_at IS NULL;

-- A sweep's batches of cases, and what each did once done (a batch run twice counts once).
CREATE TABLE sweep_batches (
    sweep_id UUID NOT NULL REFERENCES sweeps (id),
    batch_key TEXT NOT NULL,
    cases BIGINT NOT NULL,
    done BOOLEAN NOT NULL DEFAULT FALSE,
    cases_done BIGINT NOT NULL DEFAULT 0,
    cases_failed BIGINT NOT NULL DEFAULT 0,
    review_reminders BIGINT NOT NULL DEFAULT 0,
    escalations BIGINT NOT NULL DEFAULT 0,
    visit_reminders BIGINT NOT NULL DEFAULT 0,
    follow_up_flags BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (sweep_id, batch_key)
);
