-- The feedback service's schema. Times are microseconds since the epoch (UTC); months are local
-- `yyyymm` integers in the hospital's time zone (202610 = October 2026). The audit log and the
-- event feed come from the kit (hcrm_kit::ledger), applied after these migrations.

CREATE TABLE idempotency (
    key        TEXT PRIMARY KEY,
    resource   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Cases: the columns queries filter and count on; the rest of the case is the `body` document.
CREATE TABLE cases (
    id                TEXT PRIMARY KEY,
    number            TEXT NOT NULL UNIQUE,
    kind              BIGINT NOT NULL,
    channel           BIGINT NOT NULL,
    patient_id        TEXT NOT NULL,
    department        TEXT NOT NULL,
    category          TEXT NOT NULL,
    severity          BIGINT NOT NULL,
    state             BIGINT NOT NULL,
    is_open           BIGINT NOT NULL,
    owner             TEXT NOT NULL,
    assignee          TEXT NOT NULL,
    resolution        BIGINT NOT NULL,
    source            TEXT NOT NULL,
    reopen_count      BIGINT NOT NULL,
    response_due      BIGINT NOT NULL,
    resolution_due    BIGINT NOT NULL,
    first_response_at BIGINT,
    closed_at         BIGINT,
    -- 0 none; 1 owner warned; 2 department head; 3 centre director (of the pending deadline).
    escalation_level  BIGINT NOT NULL,
    linked_to         TEXT NOT NULL,
    month             BIGINT NOT NULL,
    body              BYTEA NOT NULL,
    version           BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX cases_created ON cases (created_at, id);
CREATE INDEX cases_open ON cases (is_open, response_due);
CREATE INDEX cases_department ON cases (department, created_at);
CREATE INDEX cases_owner ON cases (owner, is_open);
CREATE INDEX cases_patient ON cases (patient_id, created_at);
CREATE INDEX cases_month ON cases (month, kind, department, category);
CREATE INDEX cases_closed_month ON cases (month, closed_at);
-- One case per automatic source (a follow-up record, a survey response): redelivery makes none.
CREATE UNIQUE INDEX cases_source ON cases (source) WHERE source <> '';

CREATE TABLE case_history (
    id         BIGSERIAL PRIMARY KEY,
    case_id    TEXT NOT NULL REFERENCES cases (id),
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    from_state BIGINT NOT NULL,
    to_state   BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX case_history_case ON case_history (case_id, id);

-- Questionnaires: the editable draft and its frozen published versions.
CREATE TABLE questionnaires (
    id             TEXT PRIMARY KEY,
    draft          BYTEA NOT NULL,
    latest_version BIGINT NOT NULL,
    version        BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE questionnaire_versions (
    questionnaire_id TEXT NOT NULL REFERENCES questionnaires (id),
    version          BIGINT NOT NULL,
    body             BYTEA NOT NULL,
    published_by     TEXT NOT NULL,
    published_at     BIGINT NOT NULL,
    PRIMARY KEY (questionnaire_id, version)
);

-- Invitations: only a hash of the token is kept; the token is derived from the id with a key.
CREATE TABLE invitations (
    id               TEXT PRIMARY KEY,
    token_hash       TEXT NOT NULL UNIQUE,
    questionnaire_id TEXT NOT NULL,
    version          BIGINT NOT NULL,
    patient_id       TEXT NOT NULL,
    department       TEXT NOT NULL,
    sent             BIGINT NOT NULL,
    answered         BIGINT NOT NULL,
    reminded         BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX invitations_questionnaire ON invitations (questionnaire_id, created_at, id);
CREATE INDEX invitations_unanswered ON invitations (answered, reminded, created_at) WHERE sent = 1;

CREATE TABLE responses (
    id               TEXT PRIMARY KEY,
    invitation_id    TEXT NOT NULL UNIQUE,
    questionnaire_id TEXT NOT NULL,
    version          BIGINT NOT NULL,
    department       TEXT NOT NULL,
    month            BIGINT NOT NULL,
    score            DOUBLE PRECISION,
    case_id          TEXT NOT NULL,
    body             BYTEA NOT NULL,
    submitted_at     BIGINT NOT NULL
);
CREATE INDEX responses_month ON responses (month, department);

CREATE TABLE counter_ratings (
    id            TEXT PRIMARY KEY,
    service_point TEXT NOT NULL,
    department    TEXT NOT NULL,
    staff         TEXT NOT NULL,
    rating        BIGINT NOT NULL,
    comment       TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- Every rating (a survey question's or a counter's), one row each: what satisfaction reports
-- count. The index covers the monthly aggregation.
CREATE TABLE ratings (
    source     TEXT NOT NULL,
    month      BIGINT NOT NULL,
    department TEXT NOT NULL,
    dimension  BIGINT NOT NULL,
    score      BIGINT NOT NULL
);
CREATE INDEX ratings_month ON ratings (month, department, dimension, score);

-- The outbox (hcrm_kit::outbox): timeline entries, escalation notices, invitation links.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    department      TEXT NOT NULL,
    ref             TEXT NOT NULL,
    message         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT NOT NULL,
    lease_until     BIGINT NOT NULL,
    last_error      TEXT NOT NULL,
    source_at       BIGINT,
    delivered_at    BIGINT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX deliveries_ready ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_kind ON deliveries (kind, created_at);

-- Where this service is in the feeds it consumes (the followup feed).
CREATE TABLE consumer_cursors (
    feed     TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
INSERT INTO consumer_cursors (feed, position) VALUES ('followup', 0);
