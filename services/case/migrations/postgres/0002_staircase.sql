-- The staircase: reviews and decisions, step history, the follow-up plan, the reunification plan's
-- care tasks, family group conferences, and what the case service knows of visits.

-- When the case entered its step (visits and the child's view count for readiness from then).
ALTER TABLE cases ADD COLUMN step_since TIMESTAMPTZ;
UPDATE cases SET step_since = created_at;
ALTER TABLE cases ALTER COLUMN step_since SET NOT NULL;
ALTER TABLE cases ADD COLUMN conference_waiver_reason TEXT;
ALTER TABLE cases ADD COLUMN follow_up_reduced_on DATE;
ALTER TABLE cases ADD COLUMN follow_up_reduced_until DATE;
ALTER TABLE cases ADD COLUMN follow_up_reduction_reason TEXT;
-- The stamp of the last computed reviews applied (SyncDueReviews).
ALTER TABLE cases ADD COLUMN due_reviews_case_version BIGINT;
ALTER TABLE cases ADD COLUMN due_reviews_policy_version TEXT;
-- What the case service knows of the visits, and as of which visitation feed position.
ALTER TABLE cases ADD COLUMN visit_facts_sequence BIGINT;
ALTER TABLE cases ADD COLUMN frame_complete BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE reviews (
    id UUID PRIMARY KEY,
    case_id UUID NOT NULL REFERENCES cases (id),
    kind TEXT NOT NULL,
    due_date DATE NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('scheduled', 'completed', 'replaced')),
    note TEXT NOT NULL,
    computed_key TEXT,
    outcome JSONB,
    decision_status TEXT CHECK (decision_status IN ('applied', 'pending_approval', 'rejected')),
    version BIGINT NOT NULL CHECK (version > 0),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX reviews_by_case ON reviews (case_id, due_date, id);
-- One scheduled review per computed key.
CREATE UNIQUE INDEX reviews_scheduled_key ON reviews (case_id, computed_key)
    WHERE status = 'scheduled' AND computed_key IS NOT NULL;

CREATE TABLE step_history (
    id UUID PRIMARY KEY,
    case_id UUID NOT NULL REFERENCES cases (id),
    review_id UUID NOT NULL REFERENCES reviews (id),
    from_step TEXT NOT NULL,
    to_step TEXT NOT NULL,
    from_goal TEXT NOT NULL,
    to_goal TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    approved_by TEXT,
    changed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX step_history_by_case ON step_history (case_id, changed_at);

CREATE TABLE follow_up_goals (
    id UUID PRIMARY KEY,
    case_id UUID NOT NULL REFERENCES cases (id),
    description TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'achieved', 'dropped')),
    version BIGINT NOT NULL CHECK (version > 0),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX follow_up_goals_by_case ON follow_up_goals (case_id, id);

CREATE TABLE care_tasks (
    id UUID PRIMARY KEY,
    case_id UUID NOT NULL REFERENCES cases (id),
    kind TEXT NOT NULL,
    description TEXT NOT NULL,
    holder TEXT NOT NULL CHECK (holder IN ('foster_parents', 'shared', 'parents')),
    version BIGINT NOT NULL CHECK (version > 0),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX care_tasks_by_case ON care_tasks (case_id, id);

CREATE TABLE conferences (
    id UUID PRIMARY KEY,
    case_id UUID NOT NULL REFERENCES cases (id),
    planned_date DATE NOT NULL,
    coordinator TEXT NOT NULL,
    participant_ids JSONB NOT NULL,
    held_on DATE,
    actions JSONB NOT NULL,
    version BIGINT NOT NULL CHECK (version > 0),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX conferences_by_case ON conferences (case_id, id);

CREATE TABLE visit_facts (
    case_id UUID NOT NULL REFERENCES cases (id),
    visit_id UUID NOT NULL,
    parent_id UUID NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    outcome TEXT NOT NULL,
    concern BOOLEAN NOT NULL,
    foster_parents_involved BOOLEAN NOT NULL,
    PRIMARY KEY (case_id, visit_id)
);
