-- A call made under emergency access (break-glass) is flagged in its audit row (docs/security.md).
ALTER TABLE audit_log ADD COLUMN break_glass INTEGER NOT NULL DEFAULT 0 CHECK (break_glass IN (0, 1));
CREATE INDEX audit_log_break_glass ON audit_log (actor_agency, occurred_at) WHERE break_glass = 1;
