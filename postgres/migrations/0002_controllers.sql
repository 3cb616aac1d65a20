-- Controllers are the `baton serve` processes sharing this database; each
-- registers itself and heartbeats, by the database clock.
CREATE TABLE controllers (
	id TEXT PRIMARY KEY,
	addr TEXT NOT NULL,
	started_at TIMESTAMPTZ NOT NULL,
	last_seen TIMESTAMPTZ NOT NULL
);
