-- The owner's console marks a lead contacted: who on the team reached the caller, and when (the
-- Leads page's "open" list is the leads nobody has contacted yet).

ALTER TABLE leads ADD COLUMN contacted_at timestamptz;
ALTER TABLE leads ADD COLUMN contacted_by bigint REFERENCES users (id) ON DELETE SET NULL;
CREATE INDEX leads_open_idx ON leads (business, score DESC) WHERE contacted_at IS NULL;
