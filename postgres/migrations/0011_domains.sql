-- Custom domains: a name served by one slot of one app (baton.Domain).
-- The primary key makes a claim atomic; a slot's domains go with it.
CREATE TABLE domains (
	name TEXT PRIMARY KEY,
	app TEXT NOT NULL,
	slot TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	FOREIGN KEY (app, slot) REFERENCES slots(app, name) ON DELETE CASCADE
);
CREATE INDEX domains_app ON domains (app, name);
