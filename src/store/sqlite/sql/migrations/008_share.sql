-- Schema 8: read-only share links of a site's dashboard (only a SHA-256 of the secret;
-- an optional argon2id password).
CREATE TABLE share_links (
    id             INTEGER PRIMARY KEY,
    site_id        INTEGER NOT NULL,
    hash           TEXT NOT NULL UNIQUE,
    password_hash  TEXT,
    name           TEXT NOT NULL,
    created_ms     INTEGER NOT NULL
);
