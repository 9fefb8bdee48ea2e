-- Audit search (the console's audit explorer, `GET /v1/audit/entries`): more copies of entry
-- fields for filtering, and indexes for the explorer's main queries, newest first.
--
-- `department` is the actor's department, `category` the entry's category, `request_id` its
-- request id, all three copied from `canonical`. `stream` is the kind of entry, a function of the
-- action's family (the text before the first `.`): `ledger::stream::Stream::of` is the one
-- mapping, written with every new entry; the `CASE` below repeats it for the entries written
-- before this migration (tests/api/audit_search.rs checks that both agree on every action the
-- hub writes).
ALTER TABLE ledger_entries ADD COLUMN department TEXT;
ALTER TABLE ledger_entries ADD COLUMN category TEXT;
ALTER TABLE ledger_entries ADD COLUMN request_id TEXT;
ALTER TABLE ledger_entries ADD COLUMN stream TEXT NOT NULL DEFAULT 'system';

-- A text that is not JSON (a tampered row: `gridhub audit verify` reports it) is left with NULL
-- copies instead of stopping the upgrade. PostgreSQL 15 has no `IS JSON`; the cast is tried in
-- a block of its own (a session-local function, gone with the migration's connection).
CREATE FUNCTION pg_temp.gridhub_entry_json(text TEXT) RETURNS JSONB
    LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN text::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

-- The backfill writes a new version of every row once (the canonical text itself is not
-- copied: an unchanged TOASTed value is shared by both versions): with the indexes below,
-- about 40 s per million entries on the 2-core test machine (tests/benches/audit_search.rs).
UPDATE ledger_entries e SET
    department = j.doc #>> '{actor,department}',
    category   = j.doc ->> 'category',
    request_id = j.doc ->> 'request_id',
    stream = CASE split_part(e.action, '.', 1)
        WHEN 'data' THEN 'disclosure'
        WHEN 'decision' THEN 'disclosure'
        WHEN 'record' THEN 'records'
        WHEN 'admin' THEN 'admin'
        WHEN 'audit' THEN 'admin'
        WHEN 'case' THEN 'admin'
        WHEN 'catalog' THEN 'admin'
        WHEN 'client' THEN 'admin'
        WHEN 'department' THEN 'admin'
        WHEN 'grant' THEN 'admin'
        WHEN 'grid' THEN 'admin'
        WHEN 'keys' THEN 'admin'
        WHEN 'purpose' THEN 'admin'
        WHEN 'role' THEN 'admin'
        WHEN 'user' THEN 'admin'
        WHEN 'auth' THEN 'login'
        WHEN 'console' THEN 'login'
        ELSE 'system' END
FROM (SELECT idx, pg_temp.gridhub_entry_json(canonical) AS doc FROM ledger_entries) AS j
WHERE j.idx = e.idx;

DROP FUNCTION pg_temp.gridhub_entry_json(TEXT);

-- Newest first within one value: (col, idx) serves "these entries below this index" as one
-- backward range. The actor index gains `idx` for the same reason (same number of indexes).
-- Every index is one more B-tree insert per append; these were measured (docs/PERFORMANCE.md
-- "Audit search").
-- Entries without a department (grid workers, administrators, the hub itself) are left out of
-- its index: no filter asks for them. Request ids the hub makes are time-ordered (UUIDv7), so
-- their index grows at its right edge.
CREATE INDEX ledger_entries_by_department ON ledger_entries (department, idx)
    WHERE department IS NOT NULL;
CREATE INDEX ledger_entries_by_stream ON ledger_entries (stream, idx);
CREATE INDEX ledger_entries_by_request ON ledger_entries (request_id, idx);
DROP INDEX ledger_entries_by_actor;
CREATE INDEX ledger_entries_by_actor ON ledger_entries (actor, idx);
