-- A deploy request whose artifact and settings already serve its slot
-- records no deployment. One with an Idempotency-Key is kept here, so a
-- repeat of it gets the same answer (see baton.EnqueueRequest.IfUnchanged).
CREATE TABLE unchanged_requests (
	app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
	idempotency_key TEXT NOT NULL,
	revision TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (app, idempotency_key)
);
