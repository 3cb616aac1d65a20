-- Access tokens: the SHA-256 of each secret, never the secret.
CREATE TABLE tokens (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	scope TEXT NOT NULL,
	apps TEXT NOT NULL DEFAULT '[]', -- JSON array; empty: every app
	hash TEXT NOT NULL UNIQUE,
	created_at BIGINT NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	last_used_at BIGINT,
	expires_at BIGINT
);
