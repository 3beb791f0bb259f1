-- Request ids are forgotten after a day; the cleanup scans by age.
CREATE INDEX idempotency_created ON idempotency (created_at);

-- Deceased patients get no follow-ups or surveys; other services filter on it.
ALTER TABLE patients ADD COLUMN deceased BIGINT NOT NULL DEFAULT 0;
