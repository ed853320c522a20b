-- Schema 15: a verdict correction selects the events it changes by their verdict (and,
-- if set, their reason), not only human ones: a landing pageview turns "probably a
-- scanner" into a person's click. Corrections recorded before keep selecting human
-- events.
ALTER TABLE forward_changes ADD COLUMN from_verdict TEXT NOT NULL DEFAULT 'human';
ALTER TABLE forward_changes ADD COLUMN from_reason TEXT NOT NULL DEFAULT '';
