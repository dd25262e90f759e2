-- What every service keeps in its own database, on PostgreSQL: the audit log, request ids of
-- creating calls, the key that signs page tokens, and the event feed (transactional outbox). Applied
-- before the service's own migrations and tracked apart from them (crates/platform/src/db.rs).

-- Who did what, when, with what outcome. Append-only: the triggers below refuse changes.
CREATE TABLE audit_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at TIMESTAMPTZ NOT NULL,
    actor_subject TEXT NOT NULL,
    actor_agency TEXT NOT NULL,
    actor_roles TEXT NOT NULL,
    rpc TEXT NOT NULL,
    case_id UUID,
    resource_ids JSONB NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX audit_log_by_case ON audit_log (case_id, occurred_at);
CREATE INDEX audit_log_by_agency ON audit_log (actor_agency, occurred_at);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- Request ids of creating calls, so that a retry returns the first result
-- (crates/platform/src/idempotency.rs).
CREATE TABLE idempotency_keys (
    agency TEXT NOT NULL,
    operation TEXT NOT NULL,
    request_id UUID NOT NULL,
    fingerprint TEXT NOT NULL,
    resource_id UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (agency, operation, request_id)
);

-- The key that signs this service's page tokens (crates/platform/src/pagination.rs): made once, on
-- first use, shared by every replica.
CREATE TABLE page_token_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret BYTEA NOT NULL
);

-- The event feed (crates/platform/src/outbox.rs). A sequence number is taken before the transaction
-- commits, so 11 could commit before 10 and a reader that saw 11 would skip 10; writers therefore
-- take a transaction-scoped advisory lock per agency before they insert an event, so an agency's
-- events commit in sequence order.
CREATE TABLE events (
    sequence BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id UUID NOT NULL UNIQUE,
    agency TEXT NOT NULL,
    case_id UUID NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    kind TEXT NOT NULL,
    payload BYTEA NOT NULL
);
CREATE INDEX events_by_agency ON events (agency, sequence);
