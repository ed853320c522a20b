-- Schema 5: the region and city of each hit and visit (from the collector's geolocation
-- database; '' without one), and the network's autonomous system on each hit, at the
-- end of the tables (the rows pixeltrack writes follow the same order). 18.16 has no
-- ADD COLUMN IF NOT EXISTS: `migrate` skips an ADD COLUMN whose column is there
-- already, so collectors migrating at once do not fail (one ADD COLUMN a statement).
ALTER TABLE {db}.events_local ADD COLUMN region String
;
ALTER TABLE {db}.events_local ADD COLUMN city String
;
ALTER TABLE {db}.events_local ADD COLUMN asn UInt32
;
ALTER TABLE {db}.events_local ADD COLUMN as_org String
;
ALTER TABLE {db}.sessions_local ADD COLUMN region String
;
ALTER TABLE {db}.sessions_local ADD COLUMN city String
;
-- The read table keeps the columns it was made with (a view and a Distributed table
-- alike): made again over the wider table. It holds no rows of its own.
DROP TABLE IF EXISTS {db}.events
;
{events_table}
