-- Schema 7: dashboard accounts. Passwords are stored only as argon2id PHC strings,
-- session ids only as a SHA-256 (like api_tokens), so a copy of the database neither
-- reveals a password nor lets anyone ride a live session.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    created_ms    INTEGER NOT NULL
);

-- Which sites a viewer may see; admins see all sites and need no rows here.
CREATE TABLE user_sites (
    user_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    site_id  INTEGER NOT NULL,
    PRIMARY KEY (user_id, site_id)
);
CREATE INDEX user_sites_site ON user_sites (site_id);

CREATE TABLE web_sessions (
    id_hash     TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    last_ms     INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
