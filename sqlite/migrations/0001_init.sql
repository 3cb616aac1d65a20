CREATE TABLE apps (
	name TEXT PRIMARY KEY,
	created_at BIGINT NOT NULL,
	next_revision BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE slots (
	app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
	name TEXT NOT NULL,
	live_revision TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	PRIMARY KEY (app, name)
);

CREATE TABLE deployments (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	id TEXT NOT NULL UNIQUE,
	app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
	slot TEXT NOT NULL,
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
	created_at BIGINT NOT NULL,
	started_at BIGINT,
	finished_at BIGINT,
	phase_started_at BIGINT
);
CREATE INDEX deployments_app_state ON deployments (app, state, seq);
CREATE INDEX deployments_idempotency ON deployments (app, idempotency_key);

CREATE TABLE deployment_logs (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	deployment TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
	at BIGINT NOT NULL,
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
	created_at BIGINT NOT NULL,
	UNIQUE (app, number)
);

CREATE TABLE leases (
	key TEXT PRIMARY KEY,
	holder TEXT NOT NULL,
	token BIGINT NOT NULL,
	acquired_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);

-- fences outlive leases and apps: a token is never handed out twice per key.
CREATE TABLE fences (
	key TEXT PRIMARY KEY,
	last BIGINT NOT NULL
);

CREATE TABLE audit (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	at BIGINT NOT NULL,
	actor TEXT NOT NULL,
	action TEXT NOT NULL,
	target TEXT NOT NULL,
	detail TEXT NOT NULL,
	outcome TEXT NOT NULL,
	remote TEXT NOT NULL
);
