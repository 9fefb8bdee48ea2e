-- Audit search (the console's audit explorer, `GET /v1/audit/entries`): more copies of entry
-- fields for filtering, and indexes for the explorer's main queries, newest first.
--
-- `department` is the actor's department, `category` the entry's category, `request_id` its
-- request id, all three copied from `canonical`. `stream` is the kind of entry, a function of the
-- action's family (the text before the first `.`): `ledger::stream::Stream::of` is the one
-- mapping, written with every new entry; the `CASE` below repeats it for the entries written
-- before this migration (tests/api/audit_search.rs checks that both agree on every action the
-- hub writes). Columns added by `ALTER TABLE` come after `canonical` in the row: a filter on
-- them reads to the end of a long entry, so the explorer drives its scans through the indexes.
ALTER TABLE ledger_entries ADD COLUMN department TEXT;
ALTER TABLE ledger_entries ADD COLUMN category TEXT;
ALTER TABLE ledger_entries ADD COLUMN request_id TEXT;
ALTER TABLE ledger_entries ADD COLUMN stream TEXT NOT NULL DEFAULT 'system';

-- The backfill rewrites every row once: with the indexes below, about 5 s per million entries
-- on the 2-core test machine (tests/benches/audit_search.rs). A text that is not JSON (a
-- tampered row: `gridhub audit verify` reports it) is left with NULL copies instead of stopping
-- the upgrade.
UPDATE ledger_entries SET
    department = CASE WHEN json_valid(canonical)
                      THEN json_extract(canonical, '$.actor.department') END,
    category   = CASE WHEN json_valid(canonical) THEN json_extract(canonical, '$.category') END,
    request_id = CASE WHEN json_valid(canonical) THEN json_extract(canonical, '$.request_id') END,
    stream = CASE substr(action, 1, instr(action || '.', '.') - 1)
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
        ELSE 'system' END;

-- An index on (col) ends in the rowid, which is `idx`: each serves "these entries, newest first,
-- below this index" as one range. Every index is one more B-tree insert per append; these three
-- were measured (docs/PERFORMANCE.md "Audit search"). Entries without a department (grid
-- workers, administrators, the hub itself) are left out of its index: no filter asks for them.
-- Request ids the hub makes are time-ordered (UUIDv7), so their index grows at its right edge.
CREATE INDEX ledger_entries_by_department ON ledger_entries (department)
    WHERE department IS NOT NULL;
CREATE INDEX ledger_entries_by_stream ON ledger_entries (stream);
CREATE INDEX ledger_entries_by_request ON ledger_entries (request_id);
