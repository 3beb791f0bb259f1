-- The followup service's schema. Times are microseconds since the epoch (UTC); due dates are
-- local day numbers (days since 1970-01-01 in the hospital's time zone). The audit log and the
-- event feed come from the kit (hcrm_kit::ledger), applied after these migrations.

CREATE TABLE idempotency (
    key        TEXT PRIMARY KEY,
    resource   TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE templates (
    id           TEXT PRIMARY KEY,
    version      INTEGER NOT NULL,
    state        TEXT NOT NULL,
    display_name TEXT NOT NULL,
    on_discharge INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX templates_discharge ON templates (on_discharge, state);

-- Every published version, frozen: plans keep the version they were made from.
CREATE TABLE template_versions (
    template_id TEXT NOT NULL REFERENCES templates (id),
    version     INTEGER NOT NULL,
    body        BLOB NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (template_id, version)
);

CREATE TABLE plans (
    id               TEXT PRIMARY KEY,
    patient_id       TEXT NOT NULL,
    template_id      TEXT NOT NULL,
    template_version INTEGER NOT NULL,
    department       TEXT NOT NULL,
    responsible      TEXT NOT NULL,
    state            TEXT NOT NULL,
    origin           TEXT NOT NULL,
    anchor_at        INTEGER NOT NULL,
    source           TEXT NOT NULL,
    diagnoses        TEXT NOT NULL,
    chronic_state    TEXT,
    last_reading     BLOB,
    version          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX plans_patient ON plans (patient_id, created_at);
CREATE INDEX plans_department ON plans (department, created_at);
-- One plan per template per source event: a redelivered discharge creates nothing new.
CREATE UNIQUE INDEX plans_source ON plans (source, template_id) WHERE source <> '';

CREATE TABLE plan_history (
    id      INTEGER PRIMARY KEY,
    plan_id TEXT NOT NULL REFERENCES plans (id),
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    detail  TEXT NOT NULL
);
CREATE INDEX plan_history_plan ON plan_history (plan_id, id);

CREATE TABLE tasks (
    id             TEXT PRIMARY KEY,
    plan_id        TEXT NOT NULL REFERENCES plans (id),
    patient_id     TEXT NOT NULL,
    department     TEXT NOT NULL,
    assignee       TEXT NOT NULL,
    due_day        INTEGER NOT NULL,
    window_end_day INTEGER NOT NULL,
    state          TEXT NOT NULL,
    channel        INTEGER NOT NULL,
    purpose        TEXT NOT NULL,
    attempts       INTEGER NOT NULL,
    notify_patient INTEGER NOT NULL,
    follow_up_id   TEXT NOT NULL,
    cancel_reason  TEXT NOT NULL,
    version        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX tasks_open_due ON tasks (due_day) WHERE state = 'open';
CREATE INDEX tasks_assignee ON tasks (assignee, state, due_day);
CREATE INDEX tasks_department ON tasks (department, due_day);
CREATE INDEX tasks_plan ON tasks (plan_id, due_day);
CREATE INDEX tasks_patient ON tasks (patient_id, due_day);

CREATE TABLE follow_ups (
    id             TEXT PRIMARY KEY,
    task_id        TEXT NOT NULL REFERENCES tasks (id),
    plan_id        TEXT NOT NULL,
    patient_id     TEXT NOT NULL,
    department     TEXT NOT NULL,
    recorded_by    TEXT NOT NULL,
    channel        INTEGER NOT NULL,
    outcome        INTEGER NOT NULL,
    attempt        INTEGER NOT NULL,
    occur_at       INTEGER NOT NULL,
    local_day      INTEGER NOT NULL,
    local_hour     INTEGER NOT NULL,
    recovery_score REAL,
    complaint      INTEGER NOT NULL,
    body           BLOB NOT NULL,
    created_at     INTEGER NOT NULL
);
-- Covers the live part of the statistics (today, and days not yet rolled up).
CREATE INDEX follow_ups_stats ON follow_ups (local_day, department, channel, outcome, local_hour, recorded_by);
CREATE INDEX follow_ups_patient ON follow_ups (patient_id, occur_at);
CREATE INDEX follow_ups_task ON follow_ups (task_id);
CREATE INDEX follow_ups_plan ON follow_ups (plan_id, occur_at);

CREATE TABLE satisfaction (
    follow_up_id TEXT NOT NULL REFERENCES follow_ups (id),
    department   TEXT NOT NULL,
    dimension    INTEGER NOT NULL,
    rating       INTEGER NOT NULL,
    occur_at     INTEGER NOT NULL,
    local_day    INTEGER NOT NULL,
    PRIMARY KEY (follow_up_id, dimension)
);
CREATE INDEX satisfaction_stats ON satisfaction (local_day, department, dimension, rating);

CREATE TABLE readings (
    id          INTEGER PRIMARY KEY,
    plan_id     TEXT NOT NULL REFERENCES plans (id),
    external_id TEXT NOT NULL,
    measured_at INTEGER NOT NULL,
    systolic    INTEGER NOT NULL,
    diastolic   INTEGER NOT NULL,
    source      INTEGER NOT NULL,
    controlled  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX readings_plan ON readings (plan_id, measured_at);
CREATE UNIQUE INDEX readings_external ON readings (plan_id, external_id) WHERE external_id <> '';

-- The outbox of everything that leaves the service: claimed with a lease, retried with
-- backoff, dead after N failures. The id is the idempotency key (`reminder-{task}-{day}`,
-- `exam-{interaction}`, …), so each reminder exists once however many replicas plan it.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    department      TEXT NOT NULL,
    ref             TEXT NOT NULL,
    message         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT NOT NULL,
    lease_until     INTEGER NOT NULL,
    last_error      TEXT NOT NULL,
    source_at       INTEGER,
    delivered_at    INTEGER,
    created_at      INTEGER NOT NULL
);
CREATE INDEX deliveries_ready ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_kind ON deliveries (kind, created_at);

-- Where this service is in the feeds it consumes (the patients feed).
CREATE TABLE consumer_cursors (
    feed     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
-- The row exists from the start, so consumers always lock it (no race to create it).
INSERT INTO consumer_cursors (feed, position) VALUES ('patients', 0);

-- Admissions seen on the patients feed, for the readmission comparison.
CREATE TABLE admissions (
    source     TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL,
    at         INTEGER NOT NULL
);
CREATE INDEX admissions_patient ON admissions (patient_id, at);

-- Statistics of closed days, rolled up by a job (today is always computed live). `dimension`
-- is `channel`, `hour`, `staff` or `total`; `key` its value.
CREATE TABLE stats_daily (
    day        INTEGER NOT NULL,
    department TEXT NOT NULL,
    dimension  TEXT NOT NULL,
    key        TEXT NOT NULL,
    n          INTEGER NOT NULL,
    hits       INTEGER NOT NULL,
    PRIMARY KEY (day, department, dimension, key)
);

CREATE TABLE satisfaction_daily (
    day        INTEGER NOT NULL,
    department TEXT NOT NULL,
    dimension  INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    total      INTEGER NOT NULL,
    squares    INTEGER NOT NULL,
    PRIMARY KEY (day, department, dimension)
);

-- Days whose follow-ups changed since they were rolled up: read live until the job redoes them.
-- One row per change (never a shared row to update, so writers do not queue on it); the job
-- removes a day's rows and recomputes it in one transaction, and a change still in flight keeps
-- its row, so the day is redone again.
CREATE TABLE stats_dirty (
    id  INTEGER PRIMARY KEY,
    day INTEGER NOT NULL
);
CREATE INDEX stats_dirty_day ON stats_dirty (day);
