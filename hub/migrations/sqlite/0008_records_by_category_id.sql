-- Disclosure pages walk a category's live records in id order (`… AND id > $cursor ORDER BY id
-- LIMIT n`). Without this index the page query visited and sorted every record of the category
-- on every page (SQLite without statistics picks `records_by_category_grid` plus a temporary
-- B-tree), so its cost grew with the table instead of the page.
CREATE INDEX records_by_category_id ON records (category, id);
