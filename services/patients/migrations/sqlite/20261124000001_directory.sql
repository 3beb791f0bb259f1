-- The department and doctor directory and clinic schedules (SQLite). Times are UTC
-- microseconds; local dates are day numbers (days since 1970-01-01 in the hospital's zone);
-- local times of day are minutes after midnight. Open validity bounds are -1000000 / 1000000.

CREATE TABLE departments (
    code         TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    doc          BLOB NOT NULL,
    version      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    archived_at  INTEGER
);

CREATE TABLE doctors (
    id            TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    name_pinyin   TEXT NOT NULL,
    name_initials TEXT NOT NULL,
    expert        INTEGER NOT NULL,
    source_system TEXT,
    external_id   TEXT,
    doc           BLOB NOT NULL,
    version       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    archived_at   INTEGER
);
CREATE UNIQUE INDEX doctors_external ON doctors (source_system, external_id);
CREATE INDEX doctors_name ON doctors (display_name, id);
CREATE INDEX doctors_pinyin ON doctors (name_pinyin);
CREATE INDEX doctors_initials ON doctors (name_initials);

CREATE TABLE doctor_departments (
    doctor_id  TEXT NOT NULL REFERENCES doctors (id),
    department TEXT NOT NULL,
    PRIMARY KEY (doctor_id, department)
);
CREATE INDEX doctor_departments_department ON doctor_departments (department, doctor_id);

-- Specialties lower-cased, for exact lookups.
CREATE TABLE doctor_specialties (
    doctor_id TEXT NOT NULL REFERENCES doctors (id),
    specialty TEXT NOT NULL,
    PRIMARY KEY (doctor_id, specialty)
);
CREATE INDEX doctor_specialties_specialty ON doctor_specialties (specialty, doctor_id);

CREATE TABLE clinic_patterns (
    id            TEXT PRIMARY KEY,
    doctor_id     TEXT NOT NULL REFERENCES doctors (id),
    department    TEXT NOT NULL,
    weekday       INTEGER NOT NULL,
    session       INTEGER NOT NULL,
    start_minute  INTEGER NOT NULL,
    end_minute    INTEGER NOT NULL,
    kind          INTEGER NOT NULL,
    valid_from    INTEGER NOT NULL,
    valid_until   INTEGER NOT NULL,
    source_system TEXT,
    external_id   TEXT,
    doc           BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX clinic_patterns_external ON clinic_patterns (source_system, external_id);
CREATE INDEX clinic_patterns_doctor ON clinic_patterns (doctor_id, weekday);
CREATE INDEX clinic_patterns_department ON clinic_patterns (department, weekday);
CREATE INDEX clinic_patterns_weekday ON clinic_patterns (weekday, doctor_id);

CREATE TABLE schedule_exceptions (
    id            TEXT PRIMARY KEY,
    doctor_id     TEXT NOT NULL REFERENCES doctors (id),
    day           INTEGER NOT NULL,
    session       INTEGER NOT NULL,
    kind          INTEGER NOT NULL,
    department    TEXT NOT NULL,
    source_system TEXT,
    external_id   TEXT,
    doc           BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX schedule_exceptions_external ON schedule_exceptions (source_system, external_id);
CREATE INDEX schedule_exceptions_doctor ON schedule_exceptions (doctor_id, day);
CREATE INDEX schedule_exceptions_day ON schedule_exceptions (day, doctor_id);
