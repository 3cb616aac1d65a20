-- baton's schema on PostgreSQL: the same tables as the SQLite store, with
-- timestamptz columns (set by the database clock, now()) instead of
-- microseconds.

CREATE TABLE apps (
	name TEXT PRIMARY KEY,
	revision_mode TEXT NOT NULL DEFAULT 'single',
	created_at TIMESTAMPTZ NOT NULL,
	next_revision BIGINT NOT NULL DEFAULT 1,
	-- set while new deployments are refused (baton freeze)
	frozen_reason TEXT NOT NULL DEFAULT '',
	frozen_by TEXT NOT NULL DEFAULT '',
	frozen_at TIMESTAMPTZ
);

CREATE TABLE slots (
	app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
	name TEXT NOT NULL,
	live_revision TEXT NOT NULL DEFAULT '',
	auto_swap_to TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (app, name)
);

CREATE TABLE deployments (
	seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id TEXT NOT NULL UNIQUE,
	app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
	slot TEXT NOT NULL,
	kind TEXT NOT NULL DEFAULT 'deploy',
	params TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL,
	phase TEXT NOT NULL DEFAULT '',
	policy TEXT NOT NULL,
	revision TEXT NOT NULL DEFAULT '',
	artifact_digest TEXT NOT NULL,
	artifact_type TEXT NOT NULL,
	message TEXT NOT NULL DEFAULT '',
	commit_sha TEXT NOT NULL DEFAULT '',
	author TEXT NOT NULL DEFAULT '',
	idempotency_key TEXT NOT NULL DEFAULT '',
	error TEXT NOT NULL DEFAULT '',
	token BIGINT NOT NULL DEFAULT 0,
	created_at TIMESTAMPTZ NOT NULL,
	started_at TIMESTAMPTZ,
	finished_at TIMESTAMPTZ,
	phase_started_at TIMESTAMPTZ
);
CREATE INDEX deployments_app_state ON deployments (app, state, seq);
CREATE INDEX deployments_idempotency ON deployments (app, idempotency_key);
-- Start-up recovery looks for running deployments across all apps.
CREATE INDEX deployments_running ON deployments (seq) WHERE state = 'running';

CREATE TABLE deployment_logs (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	deployment TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
	at TIMESTAMPTZ NOT NULL,
	text TEXT NOT NULL
);
CREATE INDEX deployment_logs_deployment ON deployment_logs (deployment, id);

CREATE TABLE revisions (
	name TEXT PRIMARY KEY,
	app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
	number BIGINT NOT NULL,
	slot TEXT NOT NULL,
	deployment TEXT NOT NULL,
	artifact_digest TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	active BOOLEAN NOT NULL DEFAULT false,
	weight INTEGER NOT NULL DEFAULT 0,
	-- the non-sticky settings the revision was created with
	env JSONB NOT NULL DEFAULT '{}',
	UNIQUE (app, number)
);

CREATE TABLE settings (
	app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
	slot TEXT NOT NULL,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	sticky BOOLEAN NOT NULL DEFAULT false,
	secret BOOLEAN NOT NULL DEFAULT false,
	updated_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (app, slot, key)
);

CREATE TABLE leases (
	key TEXT PRIMARY KEY,
	holder TEXT NOT NULL,
	token BIGINT NOT NULL,
	acquired_at TIMESTAMPTZ NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL
);

-- fences outlive leases and apps: a token is never handed out twice per key.
CREATE TABLE fences (
	key TEXT PRIMARY KEY,
	last BIGINT NOT NULL
);

CREATE TABLE audit (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at TIMESTAMPTZ NOT NULL,
	actor TEXT NOT NULL,
	action TEXT NOT NULL,
	target TEXT NOT NULL,
	detail TEXT NOT NULL,
	outcome TEXT NOT NULL,
	remote TEXT NOT NULL
);
