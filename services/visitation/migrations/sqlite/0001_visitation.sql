-- The visitation service's tables on SQLite. Enum-like columns hold the stable text codes of
-- crates/domain and of this service's model; scopes, frames and reports are JSON documents the
-- service reads whole. Times are UTC (RFC 3339 text, which sorts as time does); local_start keeps
-- the Europe/Oslo wall clock a visit was planned on.

-- One visitation plan per parent with visitation rights in a case.
CREATE TABLE plans (
    id BLOB PRIMARY KEY,
    agency TEXT NOT NULL CHECK (length(agency) = 4),
    case_id BLOB NOT NULL,
    parent_id BLOB NOT NULL,
    computed TEXT NOT NULL,
    computed_from TEXT NOT NULL,
    adjustments TEXT NOT NULL,
    scope TEXT NOT NULL,
    scope_version INTEGER NOT NULL CHECK (scope_version > 0),
    floor TEXT,
    secret_address INTEGER NOT NULL,
    version INTEGER NOT NULL CHECK (version > 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (case_id, parent_id)
) STRICT;
CREATE INDEX plans_by_case ON plans (agency, case_id, id);

-- Every scope a plan has had in force.
CREATE TABLE scope_versions (
    plan_id BLOB NOT NULL REFERENCES plans (id),
    version INTEGER NOT NULL,
    scope TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('computed', 'adjusted')),
    changed_by TEXT NOT NULL,
    rationale TEXT NOT NULL,
    computed_from TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (plan_id, version)
) STRICT;

CREATE TABLE visits (
    id BLOB PRIMARY KEY,
    agency TEXT NOT NULL CHECK (length(agency) = 4),
    case_id BLOB NOT NULL,
    parent_id BLOB NOT NULL,
    plan_id BLOB NOT NULL REFERENCES plans (id),
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    local_start TEXT NOT NULL,
    duration_minutes INTEGER NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('scheduled', 'confirmed', 'completed', 'cancelled', 'no_show')),
    supervision TEXT NOT NULL,
    supervisor TEXT,
    frame TEXT NOT NULL,
    cancellation TEXT,
    report TEXT,
    no_show TEXT,
    version INTEGER NOT NULL CHECK (version > 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CHECK (ends_at > starts_at)
) STRICT;
CREATE INDEX visits_by_agency ON visits (agency, starts_at, id);
CREATE INDEX visits_by_case ON visits (case_id, starts_at);
CREATE INDEX visits_by_supervisor ON visits (agency, supervisor, starts_at);

-- Who takes part in a visit, to list a member's visits.
CREATE TABLE visit_participants (
    visit_id BLOB NOT NULL REFERENCES visits (id),
    member_id BLOB NOT NULL,
    PRIMARY KEY (visit_id, member_id)
) STRICT;
CREATE INDEX visit_participants_by_member ON visit_participants (member_id, visit_id);
