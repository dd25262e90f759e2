-- Need to know (docs/security.md): the team whose leads may open a case, a second caseworker, and
-- emergency access (break-glass) grants. Cases from before this migration belong to no team until a
-- team lead (or the worker's data fix) assigns one; their caseworker still opens them.
ALTER TABLE cases ADD COLUMN team TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN co_caseworker TEXT;
CREATE INDEX cases_by_team ON cases (agency, team, id);
CREATE INDEX cases_by_co_caseworker ON cases (agency, co_caseworker, id);

-- A grant of emergency access: who, to which case, why, from when until when. Only inserted.
CREATE TABLE break_glass_grants (
    id UUID PRIMARY KEY,
    agency TEXT NOT NULL,
    case_id UUID NOT NULL REFERENCES cases (id),
    subject TEXT NOT NULL,
    reason TEXT NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX break_glass_by_case ON break_glass_grants (agency, case_id, subject, expires_at);
