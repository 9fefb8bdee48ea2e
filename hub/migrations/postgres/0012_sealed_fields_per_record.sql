-- A record's sealed fields move into one column of its row (`records.sealed_fields`), each
-- still its own AES-256-GCM ciphertext with its own associated data. A disclosure page read
-- them in a second statement over `record_fields` (~500 index tuples per page of 100); now the
-- page is one index walk over `records`.
--
-- The bytes are those of `storage::sealed_fields` (format version 1): 0x01, then per field in
-- byte order of names: u16 name length, name, u32 KEK version, u32 ciphertext length,
-- ciphertext (big-endian). NULL: no sealed fields (and erased records).
ALTER TABLE records ADD COLUMN sealed_fields BYTEA;
-- Ciphertext does not compress: a large value may move out of line but is never run through
-- pglz first.
ALTER TABLE records ALTER COLUMN sealed_fields SET STORAGE EXTERNAL;
UPDATE records r SET sealed_fields = '\x01'::bytea || s.frames
FROM (
    SELECT record_id,
           string_agg(
               int2send(octet_length(field)::int2) || convert_to(field, 'UTF8')
               || int4send(kek_version::int4)
               || int4send(octet_length(sealed)) || sealed,
               ''::bytea ORDER BY convert_to(field, 'UTF8')) AS frames
    FROM record_fields
    GROUP BY record_id
) s
WHERE r.id = s.record_id;
DROP TABLE record_fields;
