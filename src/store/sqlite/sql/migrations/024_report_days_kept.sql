-- Schema 24: when each kept day was counted (`report_days.rs`). Filtered views keep
-- their days too, one key per view; a site keeps the days of the 32 most recently
-- counted keys of each kind (the name up to its first ':'), so trying filter after
-- filter does not grow the database without end.
ALTER TABLE report_days ADD COLUMN kept_ms INTEGER NOT NULL DEFAULT 0;
