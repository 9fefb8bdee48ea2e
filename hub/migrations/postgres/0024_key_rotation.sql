-- Key rotation (issue 22). `kek_usage` has counted the data-key wraps of each KEK version since
-- 0001; it now also holds the version's state, which every hub process follows:
--   'active'  wraps the data keys of new writes (one per key category);
--   'rewrap'  superseded: still unwraps, while the rewrap moves its data keys to the active one;
--   'retired' wraps and unwraps nothing (the minimum decryption version has passed it).
-- A write that wraps a data key adds to its version's `wraps` in the same transaction, and only
-- while that version is not retired; retiring takes the same row first, so no data key can be
-- stored under a version once it is retired. `state_since_ms` is when the state last changed;
-- `rewrapped` counts the data keys moved off this version; `rewrap_cursor` is where the rewrap
-- stopped (it resumes there after a crash).
ALTER TABLE kek_usage ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
    CHECK (state IN ('active', 'rewrap', 'retired'));
ALTER TABLE kek_usage ADD COLUMN state_since_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE kek_usage ADD COLUMN rewrapped BIGINT NOT NULL DEFAULT 0;
ALTER TABLE kek_usage ADD COLUMN rewrap_cursor TEXT;

-- One process at a time rewraps (and rotates a key past its wrap budget): 'keys'. One process
-- at a time adds a key version to the keyring file, which replicas share: 'keyring' (two
-- processes saving it at once would lose one's version).
INSERT INTO job_leases (name, holder, until_ms) VALUES ('keys', '', 0), ('keyring', '', 0);
