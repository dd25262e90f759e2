-- The audit log's hash chain (crates/platform/src/audit_chain.rs): each sealed row's hash is
-- SHA-256 over the previous row's hash and the row, so `landsby audit verify` finds a row changed,
-- removed, reordered or slipped in. Only inserted, like the log.
CREATE TABLE audit_seals (
    row_id BIGINT PRIMARY KEY,
    chain_hash BYTEA NOT NULL,
    sealed_at TIMESTAMPTZ NOT NULL
);
CREATE TRIGGER audit_seals_no_change BEFORE UPDATE OR DELETE ON audit_seals
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_seals_no_truncate BEFORE TRUNCATE ON audit_seals
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
