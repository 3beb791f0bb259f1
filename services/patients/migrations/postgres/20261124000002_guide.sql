-- Consultations of the guide desk and convenience service requests (PostgreSQL). Times are UTC
-- microseconds since the epoch.

CREATE TABLE consultations (
    id                  TEXT PRIMARY KEY,
    -- Empty for an unknown caller.
    patient_id          TEXT NOT NULL,
    phone               TEXT NOT NULL,
    phone_last4         TEXT NOT NULL,
    channel             BIGINT NOT NULL,
    category            BIGINT NOT NULL,
    referral_department TEXT NOT NULL,
    handled_by          TEXT NOT NULL,
    follow_up_needed    BIGINT NOT NULL,
    duration_seconds    BIGINT NOT NULL,
    -- Lower-cased question and answer for the free-text filter.
    search_text         TEXT NOT NULL,
    started_at          BIGINT NOT NULL,
    doc                 BYTEA NOT NULL,
    created_at          BIGINT NOT NULL
);
CREATE INDEX consultations_started ON consultations (started_at, id);
CREATE INDEX consultations_patient ON consultations (patient_id, started_at);
CREATE INDEX consultations_phone ON consultations (phone);
CREATE INDEX consultations_phone_last4 ON consultations (phone_last4);

CREATE TABLE service_requests (
    id          TEXT PRIMARY KEY,
    patient_id  TEXT NOT NULL,
    type        BIGINT NOT NULL,
    state       BIGINT NOT NULL,
    department  TEXT NOT NULL,
    owner       TEXT NOT NULL,
    due_at      BIGINT NOT NULL,
    done_at     BIGINT,
    cancelled_at BIGINT,
    doc         BYTEA NOT NULL,
    version     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX service_requests_due ON service_requests (due_at, id);
CREATE INDEX service_requests_open ON service_requests (state, due_at);
CREATE INDEX service_requests_patient ON service_requests (patient_id, due_at);
CREATE INDEX service_requests_department ON service_requests (department, due_at);
CREATE INDEX service_requests_created ON service_requests (created_at);
CREATE INDEX service_requests_done ON service_requests (done_at);
CREATE INDEX service_requests_cancelled ON service_requests (cancelled_at);
