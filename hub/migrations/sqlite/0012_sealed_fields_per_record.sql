-- A record's sealed fields move into one column of its row (`records.sealed_fields`), each
-- still its own AES-256-GCM ciphertext with its own associated data. A disclosure page read
-- them with one join per field on `record_fields` (~500 B-tree searches and ~1 400 column
-- values handed over by the driver per page of 100); now it walks `records` alone. Measured
-- with Python's sqlite3 on a synthetic table shaped like the bench's (20 000 records, pages of
-- 100, 5 fields): 418 -> 151 µs per page in SQLite itself.
--
-- The bytes are those of `storage::sealed_fields` (format version 1): 0x01, then per field in
-- byte order of names: u16 name length, name, u32 KEK version, u32 ciphertext length,
-- ciphertext (big-endian). NULL: no sealed fields (and erased records).
ALTER TABLE records ADD COLUMN sealed_fields BLOB;
UPDATE records SET sealed_fields = (
    SELECT unhex('01' || group_concat(
        printf('%04X', length(CAST(f.field AS BLOB))) || hex(f.field)
        || printf('%08X', f.kek_version)
        || printf('%08X', length(f.sealed)) || hex(f.sealed),
        '' ORDER BY CAST(f.field AS BLOB)))
    FROM record_fields f WHERE f.record_id = records.id
);
DROP TABLE record_fields;
