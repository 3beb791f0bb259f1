-- The opinion service's schema. Times are microseconds since the epoch (UTC); days are local
-- `yyyymmdd` integers in the hospital's time zone. The audit log and the event feed come from
-- the kit (hcrm_kit::ledger), applied after these migrations.

CREATE TABLE idempotency (
    key        TEXT PRIMARY KEY,
    resource   TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- The watch list. The terms live in the `body` document; every change bumps `watch_revision`
-- so each replica rebuilds its matcher on its next batch.
CREATE TABLE entities (
    id           TEXT PRIMARY KEY,
    kind         INTEGER NOT NULL,
    display_name TEXT NOT NULL,
    archived     INTEGER NOT NULL,
    body         BLOB NOT NULL,
    version      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX entities_display_name ON entities (display_name) WHERE archived = 0;

CREATE TABLE watch_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
);
INSERT INTO watch_revision (id, revision) VALUES (1, 0);

-- Feeds and pages polled. `lease_until` lets one replica poll a source at a time.
CREATE TABLE sources (
    id            TEXT PRIMARY KEY,
    url           TEXT NOT NULL UNIQUE,
    enabled       INTEGER NOT NULL,
    next_fetch_at INTEGER NOT NULL,
    lease_until   INTEGER NOT NULL,
    http_etag     TEXT NOT NULL,
    http_modified TEXT NOT NULL,
    body          BLOB NOT NULL,
    version       INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX sources_due ON sources (next_fetch_at) WHERE enabled = 1;

-- Near-duplicate mentions grouped. The first mention's MinHash signature and its eight LSH
-- band keys: candidates are found with equality lookups, then checked on the signature.
CREATE TABLE stories (
    id             TEXT PRIMARY KEY,
    signature      BLOB NOT NULL,
    band0          INTEGER NOT NULL,
    band1          INTEGER NOT NULL,
    band2          INTEGER NOT NULL,
    band3          INTEGER NOT NULL,
    band4          INTEGER NOT NULL,
    band5          INTEGER NOT NULL,
    band6          INTEGER NOT NULL,
    band7          INTEGER NOT NULL,
    title          TEXT NOT NULL,
    first_mention  TEXT NOT NULL,
    mention_count  INTEGER NOT NULL,
    reach          INTEGER NOT NULL,
    score_sum      REAL NOT NULL,
    negative_count INTEGER NOT NULL,
    positive_count INTEGER NOT NULL,
    topics         TEXT NOT NULL,
    entities       TEXT NOT NULL,
    publicity      INTEGER NOT NULL,
    incident_id    TEXT NOT NULL,
    first_seen     INTEGER NOT NULL,
    last_seen      INTEGER NOT NULL
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
    published_at INTEGER,
    -- When it happened as far as trends and alerts are concerned: the publish time, never
    -- later than when it was seen.
    seen_at     INTEGER NOT NULL,
    ingested_at INTEGER NOT NULL,
    label       INTEGER NOT NULL,
    score       REAL NOT NULL,
    confidence  REAL NOT NULL,
    reasons     TEXT NOT NULL,
    topics      TEXT NOT NULL,
    entities    TEXT NOT NULL,
    reach       INTEGER NOT NULL,
    story_id    TEXT NOT NULL REFERENCES stories (id)
);
CREATE INDEX mentions_seen ON mentions (seen_at, id);
CREATE INDEX mentions_story ON mentions (story_id, seen_at);
CREATE INDEX mentions_source ON mentions (source, seen_at);

-- One row per mention and entity it matched: what alerts count and lists filter on.
CREATE TABLE mention_entities (
    entity_id  TEXT NOT NULL,
    seen_at    INTEGER NOT NULL,
    mention_id TEXT NOT NULL REFERENCES mentions (id),
    story_id   TEXT NOT NULL,
    label      INTEGER NOT NULL,
    reach      INTEGER NOT NULL,
    PRIMARY KEY (entity_id, seen_at, mention_id)
);
CREATE INDEX mention_entities_story ON mention_entities (entity_id, story_id);

-- Daily counts per entity ('' for all mentions), kept as mentions arrive.
CREATE TABLE daily (
    entity_id TEXT NOT NULL,
    day       INTEGER NOT NULL,
    mentions  INTEGER NOT NULL,
    positive  INTEGER NOT NULL,
    neutral   INTEGER NOT NULL,
    negative  INTEGER NOT NULL,
    score_sum REAL NOT NULL,
    PRIMARY KEY (entity_id, day)
);

CREATE TABLE alert_rules (
    id         TEXT PRIMARY KEY,
    entity_id  TEXT NOT NULL REFERENCES entities (id),
    enabled    INTEGER NOT NULL,
    body       BLOB NOT NULL,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX alert_rules_entity ON alert_rules (entity_id);

-- `dedup_key` makes a rule fire once per window (count and burst rules) or once per story
-- (reach rules), also when two replicas evaluate at once.
CREATE TABLE alerts (
    id           TEXT PRIMARY KEY,
    rule_id      TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    kind         INTEGER NOT NULL,
    dedup_key    TEXT NOT NULL UNIQUE,
    story_id     TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    window_end   INTEGER NOT NULL,
    observed     INTEGER NOT NULL,
    baseline     REAL NOT NULL,
    message      TEXT NOT NULL,
    incident_id  TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX alerts_rule ON alerts (rule_id, created_at);
CREATE INDEX alerts_created ON alerts (created_at, id);

CREATE TABLE incidents (
    id         TEXT PRIMARY KEY,
    state      INTEGER NOT NULL,
    owner      TEXT NOT NULL,
    alert_id   TEXT NOT NULL,
    story_id   TEXT NOT NULL,
    body       BLOB NOT NULL,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
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

-- Where this service is in the feeds it consumes (the feedback feed).
CREATE TABLE consumer_cursors (
    feed     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
INSERT INTO consumer_cursors (feed, position) VALUES ('feedback', 0);
