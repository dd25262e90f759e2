-- National identity numbers are stored sealed (AES-256-GCM, crates/platform/src/pii.rs) and found
-- through a keyed hash, never by the number itself. Rows written before are read as they are and
-- sealed when next written.
ALTER TABLE cases ADD COLUMN child_national_id_hash TEXT;
CREATE INDEX cases_by_national_id_hash ON cases (agency, child_national_id_hash);
