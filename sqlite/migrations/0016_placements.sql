-- Placements: a slot's scale (how many instances each of its revisions
-- runs, at most how many per host) and each host's share of a revision's
-- instances, with how it stands. Both go with their slot, and so with
-- their app. host has no foreign key: a lost or deregistered host's
-- placements stay until the app's owner replaces them.
CREATE TABLE scales (
	app TEXT NOT NULL,
	slot TEXT NOT NULL,
	instances INTEGER NOT NULL DEFAULT 0,
	max_per_host INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (app, slot),
	FOREIGN KEY (app, slot) REFERENCES slots(app, name) ON DELETE CASCADE
);
CREATE TABLE placements (
	app TEXT NOT NULL,
	slot TEXT NOT NULL,
	revision TEXT NOT NULL,
	host TEXT NOT NULL,
	instances INTEGER NOT NULL,
	state TEXT NOT NULL,
	message TEXT NOT NULL DEFAULT '',
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (app, slot, revision, host),
	FOREIGN KEY (app, slot) REFERENCES slots(app, name) ON DELETE CASCADE
);
CREATE INDEX placements_host ON placements (host);

-- An operator's request that a host drain (baton hosts drain): unlike
-- draining, which the host reports while it stops, it outlives restarts.
ALTER TABLE controllers ADD COLUMN drain_requested INTEGER NOT NULL DEFAULT 0;
