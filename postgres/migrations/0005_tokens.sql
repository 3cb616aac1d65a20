-- Access tokens: the SHA-256 of each secret, never the secret.
CREATE TABLE tokens (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	scope TEXT NOT NULL,
	apps TEXT[] NOT NULL DEFAULT '{}', -- empty: every app
	hash TEXT NOT NULL UNIQUE,
	created_at TIMESTAMPTZ NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	last_used_at TIMESTAMPTZ,
	expires_at TIMESTAMPTZ
);
