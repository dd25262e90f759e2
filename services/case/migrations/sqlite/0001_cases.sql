-- The case service's tables on SQLite (STRICT): UUIDs are 16-byte BLOBs, dates and timestamps
-- TEXT, booleans INTEGER, JSON TEXT. Enum-like columns hold the stable text codes of crates/domain.

CREATE TABLE cases (
    id BLOB PRIMARY KEY,
    agency TEXT NOT NULL CHECK (length(agency) = 4 AND agency NOT GLOB '*[^0-9]*'),
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    child_given_name TEXT NOT NULL,
    child_family_name TEXT NOT NULL,
    child_birth_date TEXT NOT NULL,
    child_national_id TEXT,
    placement_kind TEXT NOT NULL,
    placement_start_date TEXT NOT NULL,
    foster_home_name TEXT NOT NULL,
    foster_street TEXT NOT NULL,
    foster_postal_code TEXT NOT NULL,
    foster_city TEXT NOT NULL,
    address_protected INTEGER NOT NULL,
    goal TEXT NOT NULL,
    step TEXT NOT NULL,
    assigned_caseworker TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version > 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    closed_at TEXT,
    close_reason TEXT,
    CHECK (step <> 'responsibility' OR goal = 'reunification'),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
) STRICT;
CREATE INDEX cases_by_agency ON cases (agency, id);
CREATE INDEX cases_by_caseworker ON cases (agency, assigned_caseworker, id);

CREATE TABLE village_members (
    id BLOB PRIMARY KEY,
    case_id BLOB NOT NULL REFERENCES cases (id),
    role TEXT NOT NULL,
    affiliation TEXT NOT NULL,
    display_name TEXT NOT NULL,
    contact_points TEXT NOT NULL,
    preferred_language TEXT NOT NULL,
    involved INTEGER NOT NULL,
    informed INTEGER NOT NULL,
    prepared INTEGER NOT NULL,
    has_visitation_rights INTEGER NOT NULL,
    version INTEGER NOT NULL CHECK (version > 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    removed_at TEXT
) STRICT;
CREATE INDEX village_members_by_case ON village_members (case_id, id);

CREATE TABLE board_decisions (
    id BLOB PRIMARY KEY,
    case_id BLOB NOT NULL REFERENCES cases (id),
    reference TEXT NOT NULL,
    decided_on TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    secret_address INTEGER NOT NULL,
    floors TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
) STRICT;
CREATE INDEX board_decisions_by_case ON board_decisions (case_id, valid_from);
