-- The staircase: reviews and decisions, step history, the follow-up plan, the reunification plan's
-- care tasks, family group conferences, and what the case service knows of visits.

ALTER TABLE cases ADD COLUMN step_since TEXT NOT NULL DEFAULT '';
UPDATE cases SET step_since = created_at;
ALTER TABLE cases ADD COLUMN conference_waiver_reason TEXT;
ALTER TABLE cases ADD COLUMN follow_up_reduced_on TEXT;
ALTER TABLE cases ADD COLUMN follow_up_reduced_until TEXT;
ALTER TABLE cases ADD COLUMN follow_up_reduction_reason TEXT;
ALTER TABLE cases ADD COLUMN due_reviews_case_version INTEGER;
ALTER TABLE cases ADD COLUMN due_reviews_policy_version TEXT;
ALTER TABLE cases ADD COLUMN visit_facts_sequence INTEGER;
ALTER TABLE cases ADD COLUMN frame_complete INTEGER NOT NULL DEFAULT 0;

CREATE TABLE reviews (
    id BLOB PRIMARY KEY,
    case_id BLOB NOT NULL REFERENCES cases (id),
    kind TEXT NOT NULL,
    due_date TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('scheduled', 'completed', 'replaced')),
    note TEXT NOT NULL,
    computed_key TEXT,
    outcome TEXT,
    decision_status TEXT CHECK (decision_status IN ('applied', 'pending_approval', 'rejected')),
    version INTEGER NOT NULL CHECK (version > 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX reviews_by_case ON reviews (case_id, due_date, id);
CREATE UNIQUE INDEX reviews_scheduled_key ON reviews (case_id, computed_key)
    WHERE status = 'scheduled' AND computed_key IS NOT NULL;

CREATE TABLE step_history (
    id BLOB PRIMARY KEY,
    case_id BLOB NOT NULL REFERENCES cases (id),
    review_id BLOB NOT NULL REFERENCES reviews (id),
    from_step TEXT NOT NULL,
    to_step TEXT NOT NULL,
    from_goal TEXT NOT NULL,
    to_goal TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    approved_by TEXT,
    changed_at TEXT NOT NULL
) STRICT;
CREATE INDEX step_history_by_case ON step_history (case_id, changed_at);

CREATE TABLE follow_up_goals (
    id BLOB PRIMARY KEY,
    case_id BLOB NOT NULL REFERENCES cases (id),
    description TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'achieved', 'dropped')),
    version INTEGER NOT NULL CHECK (version > 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX follow_up_goals_by_case ON follow_up_goals (case_id, id);

CREATE TABLE care_tasks (
    id BLOB PRIMARY KEY,
    case_id BLOB NOT NULL REFERENCES cases (id),
    kind TEXT NOT NULL,
    description TEXT NOT NULL,
    holder TEXT NOT NULL CHECK (holder IN ('foster_parents', 'shared', 'parents')),
    version INTEGER NOT NULL CHECK (version > 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX care_tasks_by_case ON care_tasks (case_id, id);

CREATE TABLE conferences (
    id BLOB PRIMARY KEY,
    case_id BLOB NOT NULL REFERENCES cases (id),
    planned_date TEXT NOT NULL,
    coordinator TEXT NOT NULL,
    participant_ids TEXT NOT NULL,
    held_on TEXT,
    actions TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version > 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE INDEX conferences_by_case ON conferences (case_id, id);

CREATE TABLE visit_facts (
    case_id BLOB NOT NULL REFERENCES cases (id),
    visit_id BLOB NOT NULL,
    parent_id BLOB NOT NULL,
    started_at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    concern INTEGER NOT NULL,
    foster_parents_involved INTEGER NOT NULL,
    PRIMARY KEY (case_id, visit_id)
) STRICT;
