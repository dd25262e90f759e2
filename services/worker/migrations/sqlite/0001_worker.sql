-- The worker's own tables on SQLite. Its job queue is apalis's (`Jobs`, `Workers`; apalis's
-- migrations are tracked apart, in `_apalis_migrations`). Times are UTC (RFC 3339 text, which sorts
-- as time does).

-- Where the worker is in each agency's event feeds. One process follows a feed at a time: it holds
-- the lease and renews it while it follows; another takes over when the lease runs out.
CREATE TABLE feed_cursors (
    feed TEXT NOT NULL CHECK (feed IN ('case', 'visitation')),
    agency TEXT NOT NULL CHECK (length(agency) = 4),
    after_sequence INTEGER NOT NULL DEFAULT 0 CHECK (after_sequence >= 0),
    owner TEXT,
    lease_until TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (feed, agency)
) STRICT;

-- Review sweeps. `tick` names what started one (a cron tick or a manual request): a tick is swept
-- once, however many replicas see it. A sweep is done when it is planned (every open case is in a
-- batch) and every batch is done.
CREATE TABLE sweeps (
    id BLOB PRIMARY KEY,
    agency TEXT NOT NULL CHECK (length(agency) = 4),
    tick TEXT NOT NULL,
    trigger TEXT NOT NULL CHECK (trigger IN ('cron', 'manual')),
    day TEXT NOT NULL,
    planned INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    UNIQUE (agency, tick)
) STRICT;
CREATE INDEX sweeps_latest ON sweeps (agency, started_at DESC);
-- At most one sweep of an agency runs at a time.
CREATE UNIQUE INDEX sweeps_one_running ON sweeps (agency) WHERE finished_at IS NULL;

-- A sweep's batches of cases, and what each did once done (a batch run twice counts once).
CREATE TABLE sweep_batches (
    sweep_id BLOB NOT NULL REFERENCES sweeps (id),
    batch_key TEXT NOT NULL,
    cases INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    cases_done INTEGER NOT NULL DEFAULT 0,
    cases_failed INTEGER NOT NULL DEFAULT 0,
    review_reminders INTEGER NOT NULL DEFAULT 0,
    escalations INTEGER NOT NULL DEFAULT 0,
    visit_reminders INTEGER NOT NULL DEFAULT 0,
    follow_up_flags INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sweep_id, batch_key)
) STRICT;
