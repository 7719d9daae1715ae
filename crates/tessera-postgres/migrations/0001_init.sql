-- Tessera's schema on PostgreSQL. Secrets are never stored: only SHA-256
-- digests (32-byte BYTEA) of access, refresh and session secrets.

CREATE TABLE users (
    -- An identity: ids are never reused, even after a deletion.
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          TEXT   NOT NULL UNIQUE,
    role          TEXT   NOT NULL,
    kind          TEXT   NOT NULL,
    owner_id      BIGINT,
    password_hash TEXT,
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    digest       BYTEA  PRIMARY KEY,
    user_id      BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_last_seen ON sessions (last_seen_at);

-- Token ids exist before their record (they are written into the secrets).
CREATE SEQUENCE token_ids;

CREATE TABLE tokens (
    id                BIGINT  PRIMARY KEY,
    user_id           BIGINT  NOT NULL,
    user_name         TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    token_type        BIGINT  NOT NULL,
    api_endpoints     TEXT    NOT NULL,
    allowed_ips       TEXT    NOT NULL,
    created_at        BIGINT  NOT NULL,
    access_expires_at BIGINT  NOT NULL,
    renewable_until   BIGINT,
    ends_at           BIGINT  NOT NULL,
    access_digest     BYTEA   NOT NULL UNIQUE,  -- the check's look-up (unique index)
    refresh_digest    BYTEA   UNIQUE,
    legacy            BOOLEAN NOT NULL,
    revoked_at        BIGINT,
    last_used_at      BIGINT
);
CREATE INDEX tokens_by_user ON tokens (user_id);                 -- listing by user
CREATE INDEX tokens_by_end ON tokens (ends_at);                  -- the sweep
CREATE INDEX tokens_by_revocation ON tokens (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX tokens_legacy ON tokens (access_expires_at) WHERE legacy AND revoked_at IS NULL;

-- Refresh digests rotated out of a token, for reuse detection.
CREATE TABLE spent_refresh (
    digest     BYTEA  PRIMARY KEY,
    token_id   BIGINT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    rotated_at BIGINT NOT NULL
);
CREATE INDEX spent_by_token ON spent_refresh (token_id);

CREATE TABLE events (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       BIGINT NOT NULL,
    kind     TEXT   NOT NULL,
    token_id BIGINT,
    user_id  BIGINT
);
