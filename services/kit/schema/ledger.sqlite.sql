-- The ledger's schema (hcrm_kit::ledger), applied by Db::migrate after a service's own
-- migrations. Idempotent: every statement may run again on a database that has it.
-- The audit log and the event feed (see hcrm_kit::ledger). Writers insert rows with no
-- sequence; the sealer numbers committed rows under the head-row lock and chains audit rows
-- into blocks.
CREATE TABLE IF NOT EXISTS ledger_head (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    audit_seq  INTEGER NOT NULL,
    audit_hash TEXT NOT NULL,
    event_seq  INTEGER NOT NULL
);
INSERT INTO ledger_head (id, audit_seq, audit_hash, event_seq) VALUES (1, 0, '', 0) ON CONFLICT (id) DO NOTHING;

CREATE TABLE IF NOT EXISTS audit_log (
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
CREATE INDEX IF NOT EXISTS audit_log_unsealed ON audit_log (id) WHERE sequence IS NULL;
CREATE INDEX IF NOT EXISTS audit_log_resource ON audit_log (resource, sequence);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, sequence);
CREATE INDEX IF NOT EXISTS audit_log_action ON audit_log (action, sequence);

CREATE TABLE IF NOT EXISTS audit_blocks (
    last_sequence  INTEGER PRIMARY KEY,
    first_sequence INTEGER NOT NULL,
    entries        INTEGER NOT NULL,
    hash           TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    id         INTEGER PRIMARY KEY,
    sequence   INTEGER UNIQUE,
    type       TEXT NOT NULL,
    resource   TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_unsealed ON events (id) WHERE sequence IS NULL;

-- Append-only: a row may only be sealed once (sequence set), never otherwise changed or removed.
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
WHEN OLD.sequence IS NOT NULL OR NEW.id IS NOT OLD.id OR NEW.hash IS NOT OLD.hash OR NEW.at IS NOT OLD.at
  OR NEW.actor IS NOT OLD.actor OR NEW.roles IS NOT OLD.roles OR NEW.action IS NOT OLD.action
  OR NEW.resource IS NOT OLD.resource OR NEW.reason IS NOT OLD.reason OR NEW.request_id IS NOT OLD.request_id
  OR NEW.detail IS NOT OLD.detail
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_blocks_no_update BEFORE UPDATE ON audit_blocks
BEGIN SELECT RAISE(ABORT, 'audit_blocks is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_blocks_no_delete BEFORE DELETE ON audit_blocks
BEGIN SELECT RAISE(ABORT, 'audit_blocks is append-only'); END;
