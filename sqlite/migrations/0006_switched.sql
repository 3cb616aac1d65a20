-- Set by SetRouting on the deployment holding the app lease: its routing
-- change is recorded, so recovery after a crash counts it as succeeded.
ALTER TABLE deployments ADD COLUMN switched INTEGER NOT NULL DEFAULT 0;
