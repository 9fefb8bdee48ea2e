-- Record keys compared in byte order (COLLATE "C"). Ids, categories and field names are ASCII,
-- but under the database's collation (C.UTF-8 on the dev server, often en_US.UTF-8) every
-- B-tree comparison of them goes through strcoll; a disclosure page makes ~600 index descents
-- of ~20 comparisons each. For these ASCII values byte order is the order the collations give,
-- so paging by id (`id > $cursor ORDER BY id`) returns the same pages as before. SQLite always
-- compares them bytewise.
ALTER TABLE records
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN category TYPE TEXT COLLATE "C";
ALTER TABLE record_fields
    ALTER COLUMN record_id TYPE TEXT COLLATE "C",
    ALTER COLUMN field TYPE TEXT COLLATE "C";
ALTER TABLE blind_index
    ALTER COLUMN record_id TYPE TEXT COLLATE "C",
    ALTER COLUMN category TYPE TEXT COLLATE "C",
    ALTER COLUMN field TYPE TEXT COLLATE "C";
ALTER TABLE case_subjects
    ALTER COLUMN record_id TYPE TEXT COLLATE "C";
