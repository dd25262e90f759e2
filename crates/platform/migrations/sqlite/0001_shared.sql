-- What every service keeps in its own database, on SQLite: the audit log, request ids of creating
-- calls, the key that signs page tokens, and the event feed (transactional outbox). Applied before
-- the service's own migrations and tracked apart from them (crates/platform/src/db.rs).

-- Who did what, when, with what outcome. Append-only: the triggers below refuse changes.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at TEXT NOT NULL,
    actor_subject TEXT NOT NULL,
    actor_agency TEXT NOT NULL,
    actor_roles TEXT NOT NULL,
    rpc TEXT NOT NULL,
    case_id BLOB,
    resource_ids TEXT NOT NULL,
    outcome TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_by_case ON audit_log (case_id, occurred_at);
CREATE INDEX audit_log_by_agency ON audit_log (actor_agency, occurred_at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Request ids of creating calls, so that a retry returns the first result
-- (crates/platform/src/idempotency.rs).
CREATE TABLE idempotency_keys (
    agency TEXT NOT NULL,
    operation TEXT NOT NULL,
    request_id BLOB NOT NULL,
    fingerprint TEXT NOT NULL,
    resource_id BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (agency, operation, request_id)
) STRICT;

-- The key that signs this service's page tokens (crates/platform/src/pagination.rs): made once, on
-- first use.
CREATE TABLE page_token_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB NOT NULL
) STRICT;

-- The event feed (crates/platform/src/outbox.rs). SQLite has one writer at a time, so commit order
-- is sequence order.
CREATE TABLE events (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id BLOB NOT NULL UNIQUE,
    agency TEXT NOT NULL,
    case_id BLOB NOT NULL,
    occurred_at TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL
) STRICT;
CREATE INDEX events_by_agency ON events (agency, sequence);
