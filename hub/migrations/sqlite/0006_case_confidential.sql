-- Confidential cases: their disclosures are held back from subject access reports until the
-- case closes (PIPL art. 45 with the exceptions of art. 18 and 35).
ALTER TABLE cases ADD COLUMN confidential INTEGER NOT NULL DEFAULT 0;
