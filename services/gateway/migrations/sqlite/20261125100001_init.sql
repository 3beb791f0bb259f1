-- The gateway's schema: staff accounts, console sessions and sign-in failures. Times are UTC
-- microseconds since the epoch. The audit log (sign-ins, account changes) comes from the kit.

CREATE TABLE accounts (
    username      TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    -- PHC string (argon2id); never returned by any API.
    password_hash TEXT NOT NULL,
    -- Comma-separated role names.
    roles         TEXT NOT NULL,
    department    TEXT NOT NULL DEFAULT '',
    disabled      INTEGER NOT NULL DEFAULT 0,
    version       INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- A session is found by the SHA-256 of its cookie value, so a copy of this table opens none.
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    username   TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_username ON sessions (username);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- One row per sign-in attempt that has not succeeded, under each of its keys: the account
-- (`user:…`), the account from one address (`user:…@…`) and the address (`ip:…`). An attempt is
-- written before its password is checked (so parallel guesses count each other) and removed if it
-- succeeds.
CREATE TABLE login_failures (
    key     TEXT NOT NULL,
    attempt TEXT NOT NULL DEFAULT '',
    at      INTEGER NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at);
CREATE INDEX login_failures_attempt ON login_failures (attempt);
