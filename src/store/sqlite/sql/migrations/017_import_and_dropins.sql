-- Schema 17 (issue 16; 16 is the geolocation migration of the same issue):
--
-- * `sites.matomo_id`: the `idsite` a Matomo tracker names this site by
--   (`pixeltrack site set SITE --matomo-id N`). Unique where set.
-- * `import_keys`: one row per imported log line, in the transaction that stores its
--   event, so importing the same line again adds nothing (`pixeltrack import`). The
--   key is the first 8 bytes of SHA-256(line, its occurrence among identical lines of
--   the same second); the line's own time leads the primary key so that imports,
--   which run in time order, append instead of scattering over the B-tree.
ALTER TABLE sites ADD COLUMN matomo_id INTEGER;
CREATE UNIQUE INDEX sites_matomo_id ON sites (matomo_id) WHERE matomo_id IS NOT NULL;

CREATE TABLE import_keys (
    site_id INTEGER NOT NULL,
    ts_ms   INTEGER NOT NULL,
    key     INTEGER NOT NULL,
    PRIMARY KEY (site_id, ts_ms, key)
) WITHOUT ROWID;
