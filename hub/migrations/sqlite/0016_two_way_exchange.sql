-- Two-way exchange (issue 19): categories published by departments, the owner's consent on
-- grants of them, and statistics grants.
--
-- `catalog_categories` holds the categories changed or added with `PUT /v1/catalog/{c}`; they
-- replace or extend the built-in catalog when the hub starts and whenever the decision version
-- moves (a catalog change bumps it in the same transaction, so every replica follows).
CREATE TABLE catalog_categories (
    name       TEXT PRIMARY KEY,
    -- The publishing department; NULL: the grid side.
    owner      TEXT REFERENCES departments (id),
    -- `policy::CategoryDef` as JSON.
    definition TEXT NOT NULL,
    -- 1 at creation, +1 per change.
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- `user:<id>` or `client:<id>`.
    updated_by TEXT NOT NULL
);

-- `records` (every grant so far) or `statistics` (counts per cell, no record access).
ALTER TABLE grants ADD COLUMN kind TEXT NOT NULL DEFAULT 'records'
    CHECK (kind IN ('records', 'statistics'));
-- `policy::StatisticsTerms` as JSON for statistics grants; NULL otherwise.
ALTER TABLE grants ADD COLUMN statistics TEXT;
-- The owning department's answer on a grant of its category: NULL when the category has no
-- owner (nothing to consent to), else `pending`, `given` or `declined`. A grant discloses only
-- when it is `approved` and its consent is NULL or `given`.
ALTER TABLE grants ADD COLUMN consent TEXT CHECK (consent IN ('pending', 'given', 'declined'));
ALTER TABLE grants ADD COLUMN consent_by TEXT;
ALTER TABLE grants ADD COLUMN consent_at INTEGER;
ALTER TABLE grants ADD COLUMN consent_reason TEXT;

-- `grant_usage` also counts the privacy budget a statistics grant spent in a day: its `day`
-- is then `YYYY-MM-DD/epsilon` and its `records` are thousandths of ε (`ledger::charges`).

-- The shipped `department` role gains `records:publish`: writing the categories its department
-- publishes, in its jurisdiction (nothing else; inert until a category names the department as
-- its owner). New hubs get it with the shipped roles; this gives it to existing ones, and moves
-- the policy version so every replica reloads its roles.
INSERT INTO casbin_rule (ptype, v0, v1, v2, v3)
    SELECT 'p', 'department', '*', 'records', 'publish'
    WHERE EXISTS (SELECT 1 FROM roles WHERE name = 'department')
    AND NOT EXISTS (SELECT 1 FROM casbin_rule
                    WHERE ptype = 'p' AND v0 = 'department' AND v2 = 'records' AND v3 = 'publish');
UPDATE policy_state SET version = version + 1 WHERE id = 1;

-- Statistics count a record's blind-index tokens per field: the index by record also carries
-- the category, field and token, so "this record's tokens of this field" is one index search
-- and no table access. With `record_id` alone, SQLite (which keeps no statistics here) preferred
-- the primary key's (category, field) prefix and scanned it once per record: minutes for a
-- million records instead of seconds. Erasure's `DELETE … WHERE record_id = …` still uses it.
DROP INDEX blind_index_by_record;
CREATE INDEX blind_index_by_record ON blind_index (record_id, category, field, token);
