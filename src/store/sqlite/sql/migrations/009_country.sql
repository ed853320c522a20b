-- Schema 9: the country of each hit (from the IP, looked up in memory before the IP is
-- dropped) and of each visit.
ALTER TABLE events ADD COLUMN country TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN country TEXT NOT NULL DEFAULT '';
