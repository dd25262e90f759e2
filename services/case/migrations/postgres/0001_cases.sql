-- The case service's tables on PostgreSQL. Enum-like columns hold the stable text codes of
-- crates/domain (vocabulary.rs).

CREATE TABLE cases (
    id UUID PRIMARY KEY,
    agency TEXT NOT NULL CHECK (agency ~ '^[0-9]{4}$'),
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    child_given_name TEXT NOT NULL,
    child_family_name TEXT NOT NULL,
    child_birth_date DATE NOT NULL,
    child_national_id TEXT,
    placement_kind TEXT NOT NULL,
    placement_start_date DATE NOT NULL,
    foster_home_name TEXT NOT NULL,
    foster_street TEXT NOT NULL,
    foster_postal_code TEXT NOT NULL,
    foster_city TEXT NOT NULL,
    address_protected BOOLEAN NOT NULL,
    goal TEXT NOT NULL,
    step TEXT NOT NULL,
    assigned_caseworker TEXT NOT NULL,
    version BIGINT NOT NULL CHECK (version > 0),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    closed_at TIMESTAMPTZ,
    close_reason TEXT,
    -- Step 3 only with a reunification goal (also enforced in crates/domain).
    CHECK (step <> 'responsibility' OR goal = 'reunification'),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);
CREATE INDEX cases_by_agency ON cases (agency, id);
CREATE INDEX cases_by_caseworker ON cases (agency, assigned_caseworker, id);

CREATE TABLE village_members (
    id UUID PRIMARY KEY,
    case_id UUID NOT NULL REFERENCES cases (id),
    role TEXT NOT NULL,
    affiliation TEXT NOT NULL,
    display_name TEXT NOT NULL,
    contact_points JSONB NOT NULL,
    preferred_language TEXT NOT NULL,
    involved BOOLEAN NOT NULL,
    informed BOOLEAN NOT NULL,
    prepared BOOLEAN NOT NULL,
    has_visitation_rights BOOLEAN NOT NULL,
    version BIGINT NOT NULL CHECK (version > 0),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    removed_at TIMESTAMPTZ
);
CREATE INDEX village_members_by_case ON village_members (case_id, id);

CREATE TABLE board_decisions (
    id UUID PRIMARY KEY,
    case_id UUID NOT NULL REFERENCES cases (id),
    reference TEXT NOT NULL,
    decided_on DATE NOT NULL,
    valid_from DATE NOT NULL,
    valid_to DATE,
    secret_address BOOLEAN NOT NULL,
    floors JSONB NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX board_decisions_by_case ON board_decisions (case_id, valid_from);
