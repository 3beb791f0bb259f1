-- Patients service schema (PostgreSQL). Times are UTC microseconds since the epoch.

CREATE TABLE patients (
    id             TEXT PRIMARY KEY,
    code           TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    name_pinyin    TEXT NOT NULL,
    name_initials  TEXT NOT NULL,
    sex            BIGINT NOT NULL DEFAULT 0,
    birth_date     TEXT NOT NULL DEFAULT '',
    phone          TEXT NOT NULL DEFAULT '',
    phone_last4    TEXT NOT NULL DEFAULT '',
    email          TEXT NOT NULL DEFAULT '',
    occupation     TEXT NOT NULL DEFAULT '',
    industry       TEXT NOT NULL DEFAULT '',
    education      BIGINT NOT NULL DEFAULT 0,
    marital_status BIGINT NOT NULL DEFAULT 0,
    income_band    BIGINT NOT NULL DEFAULT 0,
    province       TEXT NOT NULL DEFAULT '',
    city           TEXT NOT NULL DEFAULT '',
    department     TEXT NOT NULL DEFAULT '',
    intent_grade   BIGINT NOT NULL DEFAULT 0,
    value_tier     BIGINT NOT NULL DEFAULT 0,
    vip            BIGINT NOT NULL DEFAULT 0,
    do_not_contact BIGINT NOT NULL DEFAULT 0,
    tags           TEXT NOT NULL DEFAULT '',
    last_visit_at  BIGINT,
    identity_hash  TEXT UNIQUE,
    protected      TEXT,
    doc            BYTEA NOT NULL,
    version        BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    deleted_at     BIGINT,
    merged_into    TEXT
);
CREATE INDEX patients_name ON patients (display_name text_pattern_ops);
CREATE INDEX patients_pinyin ON patients (name_pinyin text_pattern_ops);
CREATE INDEX patients_initials ON patients (name_initials text_pattern_ops);
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
    created_at BIGINT NOT NULL
);

CREATE TABLE related_persons (
    id         TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients (id),
    doc        BYTEA NOT NULL,
    version    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX related_persons_patient ON related_persons (patient_id, id);

CREATE TABLE interactions (
    id            TEXT PRIMARY KEY,
    patient_id    TEXT NOT NULL REFERENCES patients (id),
    kind          BIGINT NOT NULL,
    department    TEXT NOT NULL DEFAULT '',
    occurred_at   BIGINT NOT NULL,
    source_system TEXT,
    external_id   TEXT,
    doc           BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (source_system, external_id)
);
CREATE INDEX interactions_timeline ON interactions (patient_id, occurred_at DESC, id);

CREATE TABLE organizations (
    id           TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    kind         BIGINT NOT NULL,
    city         TEXT NOT NULL DEFAULT '',
    doc          BYTEA NOT NULL,
    version      BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    deleted_at   BIGINT
);

-- The audit log and the event feed (see hcrm_kit::ledger). Writers insert rows with no
-- sequence; the sealer numbers committed rows under the head-row lock and chains audit rows
-- into blocks.
CREATE TABLE ledger_head (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    audit_seq  BIGINT NOT NULL,
    audit_hash TEXT NOT NULL,
    event_seq  BIGINT NOT NULL
);
INSERT INTO ledger_head (id, audit_seq, audit_hash, event_seq) VALUES (1, 0, '', 0);

CREATE TABLE audit_log (
    id         BIGSERIAL PRIMARY KEY,
    sequence   BIGINT UNIQUE,
    at         BIGINT NOT NULL,
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
    last_sequence  BIGINT PRIMARY KEY,
    first_sequence BIGINT NOT NULL,
    entries        BIGINT NOT NULL,
    hash           TEXT NOT NULL
);

CREATE TABLE events (
    id         BIGSERIAL PRIMARY KEY,
    sequence   BIGINT UNIQUE,
    type       TEXT NOT NULL,
    resource   TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX events_unsealed ON events (id) WHERE sequence IS NULL;

-- Append-only: a row may only be sealed once (sequence set), never otherwise changed or removed.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.sequence IS NOT NULL
       OR (NEW.id, NEW.hash, NEW.at, NEW.actor, NEW.roles, NEW.action, NEW.resource, NEW.reason, NEW.request_id, NEW.detail)
          IS DISTINCT FROM
          (OLD.id, OLD.hash, OLD.at, OLD.actor, OLD.roles, OLD.action, OLD.resource, OLD.reason, OLD.request_id, OLD.detail)
    THEN
        RAISE EXCEPTION 'audit_log is append-only';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE FUNCTION audit_blocks_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_blocks is append-only';
END;
$$;
CREATE TRIGGER audit_blocks_no_change BEFORE UPDATE OR DELETE ON audit_blocks
FOR EACH ROW EXECUTE FUNCTION audit_blocks_append_only();
