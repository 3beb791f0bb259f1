-- The ledger's schema (hcrm_kit::ledger), applied by Db::migrate after a service's own
-- migrations. Idempotent: every statement may run again on a database that has it.
-- The audit log and the event feed (see hcrm_kit::ledger). Writers insert rows with no
-- sequence; the sealer numbers committed rows under the head-row lock and chains audit rows
-- into blocks.
CREATE TABLE IF NOT EXISTS ledger_head (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    audit_seq  BIGINT NOT NULL,
    audit_hash TEXT NOT NULL,
    event_seq  BIGINT NOT NULL
);
INSERT INTO ledger_head (id, audit_seq, audit_hash, event_seq) VALUES (1, 0, '', 0) ON CONFLICT (id) DO NOTHING;

CREATE TABLE IF NOT EXISTS audit_log (
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
CREATE INDEX IF NOT EXISTS audit_log_unsealed ON audit_log (id) WHERE sequence IS NULL;
CREATE INDEX IF NOT EXISTS audit_log_resource ON audit_log (resource, sequence);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, sequence);
CREATE INDEX IF NOT EXISTS audit_log_action ON audit_log (action, sequence);

CREATE TABLE IF NOT EXISTS audit_blocks (
    last_sequence  BIGINT PRIMARY KEY,
    first_sequence BIGINT NOT NULL,
    entries        BIGINT NOT NULL,
    hash           TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    id         BIGSERIAL PRIMARY KEY,
    sequence   BIGINT UNIQUE,
    type       TEXT NOT NULL,
    resource   TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_unsealed ON events (id) WHERE sequence IS NULL;

-- Append-only: a row may only be sealed once (sequence set), never otherwise changed or removed.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE OR REPLACE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE OR REPLACE FUNCTION audit_blocks_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_blocks is append-only';
END;
$$;
CREATE OR REPLACE TRIGGER audit_blocks_no_change BEFORE UPDATE OR DELETE ON audit_blocks
FOR EACH ROW EXECUTE FUNCTION audit_blocks_append_only();
