-- Patients service schema (SQLite). Times are UTC microseconds since the epoch.

CREATE TABLE patients (
    id             TEXT PRIMARY KEY,
    code           TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL COLLATE NOCASE,
    name_pinyin    TEXT NOT NULL COLLATE NOCASE,
    name_initials  TEXT NOT NULL COLLATE NOCASE,
    sex            INTEGER NOT NULL DEFAULT 0,
    birth_date     TEXT NOT NULL DEFAULT '',
    phone          TEXT NOT NULL DEFAULT '',
    phone_last4    TEXT NOT NULL DEFAULT '',
    email          TEXT NOT NULL DEFAULT '',
    occupation     TEXT NOT NULL DEFAULT '',
    industry       TEXT NOT NULL DEFAULT '',
    education      INTEGER NOT NULL DEFAULT 0,
    marital_status INTEGER NOT NULL DEFAULT 0,
    income_band    INTEGER NOT NULL DEFAULT 0,
    province       TEXT NOT NULL DEFAULT '',
    city           TEXT NOT NULL DEFAULT '',
    department     TEXT NOT NULL DEFAULT '',
    intent_grade   INTEGER NOT NULL DEFAULT 0,
    value_tier     INTEGER NOT NULL DEFAULT 0,
    vip            INTEGER NOT NULL DEFAULT 0,
    do_not_contact INTEGER NOT NULL DEFAULT 0,
    tags           TEXT NOT NULL DEFAULT '',
    last_visit_at  INTEGER,
    identity_hash  TEXT UNIQUE,
    protected      TEXT,
    doc            BLOB NOT NULL,
    version        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    deleted_at     INTEGER,
    merged_into    TEXT
);
CREATE INDEX patients_name ON patients (display_name);
CREATE INDEX patients_pinyin ON patients (name_pinyin);
CREATE INDEX patients_initials ON patients (name_initials);
CREATE INDEX patients_phone ON patients (phone);
CREATE INDEX patients_phone_last4 ON patients (phone_last4);
CREATE INDEX patients_department ON patients (department, id);
CREATE INDEX patients_updated ON patients (updated_at);

CREATE TABLE external_ids (
    source_system TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    patient_id    TEXT NOT NULL REFERENCES patients (id),
    PRIMARY KEY (source_system, external_id)
);
CREATE INDEX external_ids_patient ON external_ids (patient_id);

CREATE TABLE idempotency (
    key        TEXT PRIMARY KEY,
    resource   TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE related_persons (
    id         TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients (id),
    doc        BLOB NOT NULL,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX related_persons_patient ON related_persons (patient_id, id);

CREATE TABLE interactions (
    id            TEXT PRIMARY KEY,
    patient_id    TEXT NOT NULL REFERENCES patients (id),
    kind          INTEGER NOT NULL,
    department    TEXT NOT NULL DEFAULT '',
    occurred_at   INTEGER NOT NULL,
    source_system TEXT,
    external_id   TEXT,
    doc           BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (source_system, external_id)
);
CREATE INDEX interactions_timeline ON interactions (patient_id, occurred_at DESC, id);

CREATE TABLE organizations (
    id           TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    kind         INTEGER NOT NULL,
    city         TEXT NOT NULL DEFAULT '',
    doc          BLOB NOT NULL,
    version      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    deleted_at   INTEGER
);

-- The audit log and the event feed (see hcrm_kit::ledger). Writers insert rows with no
-- sequence; the sealer numbers committed rows under the head-row lock and chains audit rows
-- into blocks.
CREATE TABLE ledger_head (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    audit_seq  INTEGER NOT NULL,
    audit_hash TEXT NOT NULL,
    event_seq  INTEGER NOT NULL
);
INSERT INTO ledger_head (id, audit_seq, audit_hash, event_seq) VALUES (1, 0, '', 0);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    sequence   INTEGER UNIQUE,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    roles      TEXT NOT NULL,
    action     TEXT NOT NULL,
    resource   TEXT NOT NULL,
    reason     TEXT NOT NULL,
    request_id TEXT NOT NULL,
    detail     TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_log_unsealed ON audit_log (id) WHERE sequence IS NULL;
CREATE INDEX audit_log_resource ON audit_log (resource, sequence);
CREATE INDEX audit_log_actor ON audit_log (actor, sequence);
CREATE INDEX audit_log_action ON audit_log (action, sequence);

CREATE TABLE audit_blocks (
    last_sequence  INTEGER PRIMARY KEY,
    first_sequence INTEGER NOT NULL,
    entries        INTEGER NOT NULL,
    hash           TEXT NOT NULL
);

CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    sequence   INTEGER UNIQUE,
    type       TEXT NOT NULL,
    resource   TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX events_unsealed ON events (id) WHERE sequence IS NULL;

-- Append-only: a row may only be sealed once (sequence set), never otherwise changed or removed.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN OLD.sequence IS NOT NULL OR NEW.id IS NOT OLD.id OR NEW.hash IS NOT OLD.hash OR NEW.at IS NOT OLD.at
  OR NEW.actor IS NOT OLD.actor OR NEW.roles IS NOT OLD.roles OR NEW.action IS NOT OLD.action
  OR NEW.resource IS NOT OLD.resource OR NEW.reason IS NOT OLD.reason OR NEW.request_id IS NOT OLD.request_id
  OR NEW.detail IS NOT OLD.detail
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_blocks_no_update BEFORE UPDATE ON audit_blocks
BEGIN SELECT RAISE(ABORT, 'audit_blocks is append-only'); END;
CREATE TRIGGER audit_blocks_no_delete BEFORE DELETE ON audit_blocks
BEGIN SELECT RAISE(ABORT, 'audit_blocks is append-only'); END;
