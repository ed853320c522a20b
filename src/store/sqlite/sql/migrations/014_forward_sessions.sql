-- Schema 14: visits follow into ClickHouse with the rollup deltas of the same write
-- (filtered reports there read them). sessions packs the write's session rows as they
-- stand after it (see store/sqlite/spool.rs); NULL in rows written before.
ALTER TABLE forward_rollups ADD COLUMN sessions BLOB;
