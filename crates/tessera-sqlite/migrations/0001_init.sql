-- Tessera's schema on SQLite. Secrets are never stored: only SHA-256 digests
-- (32-byte BLOBs) of access, refresh and session secrets.

CREATE TABLE users (
    -- AUTOINCREMENT: ids are never reused, even after a deletion.
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    owner_id      INTEGER,
    password_hash TEXT,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    digest       BLOB    PRIMARY KEY,
    user_id      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_last_seen ON sessions (last_seen_at);

-- Counters handed out by `UPDATE … RETURNING` (token ids exist before their record).
CREATE TABLE sequences (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO sequences (name, value) VALUES ('token', 0);

CREATE TABLE tokens (
    id                INTEGER PRIMARY KEY,
    user_id           INTEGER NOT NULL,
    user_name         TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    token_type        INTEGER NOT NULL,
    api_endpoints     TEXT    NOT NULL,
    allowed_ips       TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    access_expires_at INTEGER NOT NULL,
    renewable_until   INTEGER,
    ends_at           INTEGER NOT NULL,
    access_digest     BLOB    NOT NULL UNIQUE,  -- the check's look-up
    refresh_digest    BLOB    UNIQUE,
    legacy            INTEGER NOT NULL,
    revoked_at        INTEGER,
    last_used_at      INTEGER
);
CREATE INDEX tokens_by_user ON tokens (user_id);
CREATE INDEX tokens_by_end ON tokens (ends_at);
CREATE INDEX tokens_by_revocation ON tokens (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX tokens_legacy ON tokens (access_expires_at) WHERE legacy = 1 AND revoked_at IS NULL;

-- Refresh digests rotated out of a token, for reuse detection.
CREATE TABLE spent_refresh (
    digest     BLOB    PRIMARY KEY,
    token_id   INTEGER NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    rotated_at INTEGER NOT NULL
);
CREATE INDEX spent_by_token ON spent_refresh (token_id);

CREATE TABLE events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    kind     TEXT    NOT NULL,
    token_id INTEGER,
    user_id  INTEGER
);
