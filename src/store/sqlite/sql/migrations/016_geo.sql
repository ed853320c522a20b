-- Schema 16: the region and city of each hit and visit (from a geolocation database,
-- looked up in memory before the IP is dropped; '' without one), and the network's
-- autonomous system (0 and '' when unknown) on each hit.
ALTER TABLE events ADD COLUMN region TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN city TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN asn INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN as_org TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN region TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN city TEXT NOT NULL DEFAULT '';
