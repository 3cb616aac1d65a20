-- The fingerprint of the request an Unchanged answer was given to
-- (baton.Deployment.RequestFingerprint), so that another request under the
-- same Idempotency-Key is refused instead of answered again. '': kept
-- before fingerprints were.
ALTER TABLE unchanged_requests ADD COLUMN request TEXT NOT NULL DEFAULT '';
