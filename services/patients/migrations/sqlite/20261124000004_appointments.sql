-- Appointment requests handed to the hospital's booking platform, and the outbox that carries
-- them there.
CREATE TABLE appointment_requests (
    id                 TEXT PRIMARY KEY,
    patient_id         TEXT NOT NULL,
    -- The patient's department when requested: scopes clinicians' reads.
    patient_department TEXT NOT NULL,
    state              INTEGER NOT NULL,
    doc                BLOB NOT NULL,
    version            INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX appointment_requests_patient ON appointment_requests (patient_id, created_at);
CREATE INDEX appointment_requests_state ON appointment_requests (state, created_at);
CREATE INDEX appointment_requests_created ON appointment_requests (created_at, id);

-- Everything that leaves the service (docs/conventions.md "Outbox").
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
