-- The audit log's hash chain (crates/platform/src/audit_chain.rs): each sealed row's hash is
-- SHA-256 over the previous row's hash and the row, so `landsby audit verify` finds a row changed,
-- removed, reordered or slipped in. Only inserted, like the log.
CREATE TABLE audit_seals (
    row_id INTEGER PRIMARY KEY,
    chain_hash BLOB NOT NULL,
    sealed_at TEXT NOT NULL
) STRICT;
CREATE TRIGGER audit_seals_no_update BEFORE UPDATE ON audit_seals
BEGIN
    SELECT RAISE(ABORT, 'audit_seals is append-only');
END;
CREATE TRIGGER audit_seals_no_delete BEFORE DELETE ON audit_seals
BEGIN
    SELECT RAISE(ABORT, 'audit_seals is append-only');
END;
