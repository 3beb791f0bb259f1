-- The opinion service's schema. Times are microseconds since the epoch (UTC); days are local
-- `yyyymmdd` integers in the hospital's time zone. The audit log and the event feed come from
-- the kit (hcrm_kit::ledger), applied after these migrations.

CREATE TABLE idempotency (
    key        TEXT PRIMARY KEY,
    resource   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The watch list. The terms live in the `body` document; every change bumps `watch_revision`
-- so each replica rebuilds its matcher on its next batch.
CREATE TABLE entities (
    id           TEXT PRIMARY KEY,
    kind         BIGINT NOT NULL,
    display_name TEXT NOT NULL,
    archived     BIGINT NOT NULL,
    body         BYTEA NOT NULL,
    version      BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX entities_display_name ON entities (display_name) WHERE archived = 0;

CREATE TABLE watch_revision (
    id       BIGINT PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);
INSERT INTO watch_revision (id, revision) VALUES (1, 0);

-- Feeds and pages polled. `lease_until` lets one replica poll a source at a time.
CREATE TABLE sources (
    id            TEXT PRIMARY KEY,
    url           TEXT NOT NULL UNIQUE,
    enabled       BIGINT NOT NULL,
    next_fetch_at BIGINT NOT NULL,
    lease_until   BIGINT NOT NULL,
    http_etag     TEXT NOT NULL,
    http_modified TEXT NOT NULL,
    body          BYTEA NOT NULL,
    version       BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX sources_due ON sources (next_fetch_at) WHERE enabled = 1;

-- Near-duplicate mentions grouped. The first mention's MinHash signature and its eight LSH
-- band keys: candidates are found with equality lookups, then checked on the signature.
CREATE TABLE stories (
    id             TEXT PRIMARY KEY,
    signature      BYTEA NOT NULL,
    band0          BIGINT NOT NULL,
    band1          BIGINT NOT NULL,
    band2          BIGINT NOT NULL,
    band3          BIGINT NOT NULL,
    band4          BIGINT NOT NULL,
    band5          BIGINT NOT NULL,
    band6          BIGINT NOT NULL,
    band7          BIGINT NOT NULL,
    title          TEXT NOT NULL,
    first_mention  TEXT NOT NULL,
    mention_count  BIGINT NOT NULL,
    reach          BIGINT NOT NULL,
    score_sum      DOUBLE PRECISION NOT NULL,
    negative_count BIGINT NOT NULL,
    positive_count BIGINT NOT NULL,
    topics         TEXT NOT NULL,
    entities       TEXT NOT NULL,
    publicity      BIGINT NOT NULL,
    incident_id    TEXT NOT NULL,
    first_seen     BIGINT NOT NULL,
    last_seen      BIGINT NOT NULL
);
CREATE INDEX stories_band0 ON stories (band0, last_seen);
CREATE INDEX stories_band1 ON stories (band1, last_seen);
CREATE INDEX stories_band2 ON stories (band2, last_seen);
CREATE INDEX stories_band3 ON stories (band3, last_seen);
CREATE INDEX stories_band4 ON stories (band4, last_seen);
CREATE INDEX stories_band5 ON stories (band5, last_seen);
CREATE INDEX stories_band6 ON stories (band6, last_seen);
CREATE INDEX stories_band7 ON stories (band7, last_seen);
CREATE INDEX stories_last_seen ON stories (last_seen, id);
CREATE INDEX stories_publicity ON stories (publicity, first_seen) WHERE publicity = 1;

-- `key_hash` is the idempotency key: the URL's hash, or the normalised text's when no URL.
CREATE TABLE mentions (
    id          TEXT PRIMARY KEY,
    key_hash    TEXT NOT NULL UNIQUE,
    url         TEXT NOT NULL,
    source      TEXT NOT NULL,
    site        TEXT NOT NULL,
    author      TEXT NOT NULL,
    title       TEXT NOT NULL,
    text        TEXT NOT NULL,
    language    TEXT NOT NULL,
    published_at BIGINT,
    -- When it happened as far as trends and alerts are concerned: the publish time, never
    -- later than when it was seen.
    seen_at     BIGINT NOT NULL,
    ingested_at BIGINT NOT NULL,
    label       BIGINT NOT NULL,
    score       DOUBLE PRECISION NOT NULL,
    confidence  DOUBLE PRECISION NOT NULL,
    reasons     TEXT NOT NULL,
    topics      TEXT NOT NULL,
    entities    TEXT NOT NULL,
    reach       BIGINT NOT NULL,
    story_id    TEXT NOT NULL REFERENCES stories (id)
);
CREATE INDEX mentions_seen ON mentions (seen_at, id);
CREATE INDEX mentions_story ON mentions (story_id, seen_at);
CREATE INDEX mentions_source ON mentions (source, seen_at);

-- One row per mention and entity it matched: what alerts count and lists filter on.
CREATE TABLE mention_entities (
    entity_id  TEXT NOT NULL,
    seen_at    BIGINT NOT NULL,
    mention_id TEXT NOT NULL REFERENCES mentions (id),
    story_id   TEXT NOT NULL,
    label      BIGINT NOT NULL,
    reach      BIGINT NOT NULL,
    PRIMARY KEY (entity_id, seen_at, mention_id)
);
CREATE INDEX mention_entities_story ON mention_entities (entity_id, story_id);

-- Daily counts per entity ('' for all mentions), kept as mentions arrive.
CREATE TABLE daily (
    entity_id TEXT NOT NULL,
    day       BIGINT NOT NULL,
    mentions  BIGINT NOT NULL,
    positive  BIGINT NOT NULL,
    neutral   BIGINT NOT NULL,
    negative  BIGINT NOT NULL,
    score_sum DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (entity_id, day)
);

CREATE TABLE alert_rules (
    id         TEXT PRIMARY KEY,
    entity_id  TEXT NOT NULL REFERENCES entities (id),
    enabled    BIGINT NOT NULL,
    body       BYTEA NOT NULL,
    version    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX alert_rules_entity ON alert_rules (entity_id);

-- `dedup_key` makes a rule fire once per window (count and burst rules) or once per story
-- (reach rules), also when two replicas evaluate at once.
CREATE TABLE alerts (
    id           TEXT PRIMARY KEY,
    rule_id      TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    kind         BIGINT NOT NULL,
    dedup_key    TEXT NOT NULL UNIQUE,
    story_id     TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    window_end   BIGINT NOT NULL,
    observed     BIGINT NOT NULL,
    baseline     DOUBLE PRECISION NOT NULL,
    message      TEXT NOT NULL,
    incident_id  TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX alerts_rule ON alerts (rule_id, created_at);
CREATE INDEX alerts_created ON alerts (created_at, id);

CREATE TABLE incidents (
    id         TEXT PRIMARY KEY,
    state      BIGINT NOT NULL,
    owner      TEXT NOT NULL,
    alert_id   TEXT NOT NULL,
    story_id   TEXT NOT NULL,
    body       BYTEA NOT NULL,
    version    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX incidents_created ON incidents (created_at, id);
CREATE UNIQUE INDEX incidents_alert ON incidents (alert_id) WHERE alert_id <> '';

-- The outbox (hcrm_kit::outbox): alert notices to staff.
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

-- Where this service is in the feeds it consumes (the feedback feed).
CREATE TABLE consumer_cursors (
    feed     TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
INSERT INTO consumer_cursors (feed, position) VALUES ('feedback', 0);
