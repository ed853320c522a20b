-- Schema 4: API tokens (only a SHA-256 of each token is stored).
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    scope       TEXT NOT NULL,
    site_id     INTEGER,
    created_ms  INTEGER NOT NULL
);
