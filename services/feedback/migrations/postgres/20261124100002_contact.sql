-- The contact of an unregistered or anonymous complainant, sealed (hcrm_kit::crypto) and bound
-- to the case id; never in the case document.
ALTER TABLE cases ADD COLUMN contact_sealed TEXT NOT NULL DEFAULT '';
