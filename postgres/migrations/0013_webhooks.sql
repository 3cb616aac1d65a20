-- Webhooks kept in the store, and the queue of their deliveries: an event
-- waits here until its receiver takes it, across restarts of baton.
CREATE TABLE hooks (
	id TEXT PRIMARY KEY,
	url TEXT NOT NULL,
	app TEXT NOT NULL DEFAULT '',
	events TEXT[] NOT NULL DEFAULT '{}', -- empty: every event
	secret TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMPTZ NOT NULL,
	created_by TEXT NOT NULL DEFAULT ''
);
-- hook_id has no foreign key: hooks configured by `baton serve --webhook`
-- are not in the hooks table.
CREATE TABLE hook_deliveries (
	id BIGSERIAL PRIMARY KEY,
	hook_id TEXT NOT NULL,
	event_id TEXT NOT NULL,
	event_type TEXT NOT NULL,
	app TEXT NOT NULL DEFAULT '',
	body BYTEA NOT NULL,
	state TEXT NOT NULL DEFAULT 'pending',
	attempts INTEGER NOT NULL DEFAULT 0,
	last_status INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMPTZ NOT NULL,
	last_attempt_at TIMESTAMPTZ,
	next_attempt_at TIMESTAMPTZ,
	UNIQUE (hook_id, event_id)
);
CREATE INDEX hook_deliveries_due ON hook_deliveries (state, next_attempt_at);
