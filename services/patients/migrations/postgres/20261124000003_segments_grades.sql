-- Segments, computed grades and referrals (PostgreSQL). Times are UTC microseconds.

-- Per-patient timeline facts, maintained when interactions are recorded, imported or merged,
-- so segment counts never scan the timeline. `dirty` is the time the facts last changed and
-- the grade was not yet recomputed (0: clean).
CREATE TABLE patient_facts (
    patient_id            TEXT PRIMARY KEY REFERENCES patients (id),
    visit_count           BIGINT NOT NULL DEFAULT 0,
    first_visit_at        BIGINT,
    last_visit_at         BIGINT,
    last_event_at         BIGINT,
    unanswered_follow_ups BIGINT NOT NULL DEFAULT 0,
    complaints            BIGINT NOT NULL DEFAULT 0,
    value_cents           BIGINT NOT NULL DEFAULT 0,
    dirty                 BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX patient_facts_dirty ON patient_facts (dirty) WHERE dirty <> 0;
CREATE INDEX patient_facts_visits ON patient_facts (visit_count);

-- Departments a patient was seen in (visits).
CREATE TABLE patient_departments (
    patient_id TEXT NOT NULL REFERENCES patients (id),
    department TEXT NOT NULL,
    visits     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (patient_id, department)
);
CREATE INDEX patient_departments_department ON patient_departments (department, patient_id);

-- Diagnosis codes on a patient's timeline (upper case), searched by prefix.
CREATE TABLE patient_diagnoses (
    patient_id TEXT NOT NULL REFERENCES patients (id),
    code       TEXT NOT NULL,
    PRIMARY KEY (patient_id, code)
);
CREATE INDEX patient_diagnoses_code ON patient_diagnoses (code text_pattern_ops, patient_id);

-- Segment filters read these patients columns.
CREATE INDEX patients_last_visit ON patients (last_visit_at);
CREATE INDEX patients_birth_date ON patients (birth_date);
CREATE INDEX patients_region ON patients (province, city);

CREATE TABLE segments (
    id           TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    owner        TEXT NOT NULL,
    doc          BYTEA NOT NULL,
    version      BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX segments_name ON segments (display_name, id);

-- Published grading rules; version 1 is built in and used while this table is empty.
CREATE TABLE grading_rules (
    version      BIGINT PRIMARY KEY,
    doc          BYTEA NOT NULL,
    publisher    TEXT NOT NULL,
    published_at BIGINT NOT NULL
);

-- The current computed grade per patient; reasons are JSON ([{applies_to, code, params, text}]).
CREATE TABLE patient_grades (
    patient_id     TEXT PRIMARY KEY REFERENCES patients (id),
    customer_class BIGINT NOT NULL,
    intent_grade   BIGINT NOT NULL,
    value_tier     BIGINT NOT NULL,
    rfv_score      BIGINT NOT NULL,
    rule_version   BIGINT NOT NULL,
    reasons        TEXT NOT NULL,
    computed_at    BIGINT NOT NULL
);
-- Covering: segment counts on computed grades read this index only (no wide rows with reasons).
CREATE INDEX patient_grades_class ON patient_grades (customer_class, intent_grade, value_tier, patient_id);
CREATE INDEX patient_grades_intent ON patient_grades (intent_grade, patient_id);
CREATE INDEX patient_grades_tier ON patient_grades (value_tier, patient_id);

-- One row per change of class, intent grade or tier: old and new with their reasons.
CREATE TABLE grade_history (
    id           TEXT PRIMARY KEY,
    patient_id   TEXT NOT NULL REFERENCES patients (id),
    changed_at   BIGINT NOT NULL,
    old_grade    TEXT NOT NULL,
    new_grade    TEXT NOT NULL,
    changed      TEXT NOT NULL
);
CREATE INDEX grade_history_patient ON grade_history (patient_id, changed_at DESC, id);

-- The nightly pass: one row. The lease keeps it to one replica; `last_id` (last patient id done)
-- makes it restartable; `pass_day` is the local day of the pass in progress or last finished.
CREATE TABLE grade_pass (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    pass_day    TEXT NOT NULL,
    last_id      TEXT,
    finished    BIGINT NOT NULL,
    lease_owner TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    evaluated   BIGINT NOT NULL,
    updated     BIGINT NOT NULL,
    changed     BIGINT NOT NULL
);
INSERT INTO grade_pass (id, pass_day, last_id, finished, lease_owner, lease_until, evaluated, updated, changed)
VALUES (1, '', NULL, 1, '', 0, 0, 0, 0);

CREATE TABLE referrals (
    id          TEXT PRIMARY KEY,
    introducer  TEXT NOT NULL REFERENCES patients (id),
    referred    TEXT NOT NULL UNIQUE REFERENCES patients (id),
    referred_on TEXT NOT NULL,
    doc         BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX referrals_introducer ON referrals (introducer, created_at DESC, id);

-- Facts of interactions recorded before this migration: visits, departments, complaints and
-- the last event (diagnosis codes and amounts live inside the stored documents and are filled
-- in as the timeline grows). Every such patient is marked dirty for a first grade.
INSERT INTO patient_facts (patient_id, visit_count, first_visit_at, last_visit_at, last_event_at, complaints, dirty)
SELECT patient_id,
       COUNT(*) FILTER (WHERE kind IN (2, 3, 4)),
       MIN(occurred_at) FILTER (WHERE kind IN (2, 3, 4)),
       MAX(occurred_at) FILTER (WHERE kind IN (2, 3, 4)),
       MAX(occurred_at),
       COUNT(*) FILTER (WHERE kind = 10),
       1
FROM interactions GROUP BY patient_id;
INSERT INTO patient_departments (patient_id, department, visits)
SELECT patient_id, department, COUNT(*) FROM interactions
WHERE kind IN (2, 3, 4) AND department <> '' GROUP BY patient_id, department;
