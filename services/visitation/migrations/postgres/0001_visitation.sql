-- The visitation service's tables on PostgreSQL. Enum-like columns hold the stable text codes of
-- crates/domain and of this service's model; scopes, frames and reports are JSON documents the
-- service reads whole. Times are UTC; local_start keeps the Europe/Oslo wall clock a visit was
-- planned on.

-- One visitation plan per parent with visitation rights in a case.
CREATE TABLE plans (
    id UUID PRIMARY KEY,
    agency TEXT NOT NULL CHECK (agency ~ '^[0-9]{4}$'),
    case_id UUID NOT NULL,
    parent_id UUID NOT NULL,
    -- The scope the staircase engine computed, and what it was computed from.
    computed JSONB NOT NULL,
    computed_from JSONB NOT NULL,
    -- The caseworker's adjustments on top, and the scope in force.
    adjustments JSONB NOT NULL,
    scope JSONB NOT NULL,
    scope_version BIGINT NOT NULL CHECK (scope_version > 0),
    -- The board's floor for the parent and the secret address, as of the last computed scope.
    floor JSONB,
    secret_address BOOLEAN NOT NULL,
    version BIGINT NOT NULL CHECK (version > 0),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (case_id, parent_id)
);
CREATE INDEX plans_by_case ON plans (agency, case_id, id);

-- Every scope a plan has had in force.
CREATE TABLE scope_versions (
    plan_id UUID NOT NULL REFERENCES plans (id),
    version BIGINT NOT NULL,
    scope JSONB NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('computed', 'adjusted')),
    changed_by TEXT NOT NULL,
    rationale TEXT NOT NULL,
    computed_from JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (plan_id, version)
);

CREATE TABLE visits (
    id UUID PRIMARY KEY,
    agency TEXT NOT NULL CHECK (agency ~ '^[0-9]{4}$'),
    case_id UUID NOT NULL,
    parent_id UUID NOT NULL,
    plan_id UUID NOT NULL REFERENCES plans (id),
    starts_at TIMESTAMPTZ NOT NULL,
    ends_at TIMESTAMPTZ NOT NULL,
    local_start TIMESTAMP NOT NULL,
    duration_minutes BIGINT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('scheduled', 'confirmed', 'completed', 'cancelled', 'no_show')),
    supervision TEXT NOT NULL,
    -- The staff member supervising (`sub`), copied out of the frame to find double bookings.
    supervisor TEXT,
    frame JSONB NOT NULL,
    cancellation JSONB,
    report JSONB,
    no_show JSONB,
    version BIGINT NOT NULL CHECK (version > 0),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX visits_by_agency ON visits (agency, starts_at, id);
CREATE INDEX visits_by_case ON visits (case_id, starts_at);
CREATE INDEX visits_by_supervisor ON visits (agency, supervisor, starts_at);

-- Who takes part in a visit, to list a member's visits.
CREATE TABLE visit_participants (
    visit_id UUID NOT NULL REFERENCES visits (id),
    member_id UUID NOT NULL,
    PRIMARY KEY (visit_id, member_id)
);
CREATE INDEX visit_participants_by_member ON visit_participants (member_id, visit_id);
