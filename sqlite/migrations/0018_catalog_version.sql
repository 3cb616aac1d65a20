-- A counter that every change of an app or a slot advances. Triggers
-- advance it, so no write path can forget to: listing every app reads it
-- first and gives out the list it read last at the same count
-- (sqlite/catalog.go) instead of stepping every row again.
CREATE TABLE catalog_version (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL
);
INSERT INTO catalog_version (id, version) VALUES (1, 0);
CREATE TRIGGER apps_inserted AFTER INSERT ON apps BEGIN UPDATE catalog_version SET version = version + 1; END;
CREATE TRIGGER apps_updated AFTER UPDATE ON apps BEGIN UPDATE catalog_version SET version = version + 1; END;
CREATE TRIGGER apps_deleted AFTER DELETE ON apps BEGIN UPDATE catalog_version SET version = version + 1; END;
CREATE TRIGGER slots_inserted AFTER INSERT ON slots BEGIN UPDATE catalog_version SET version = version + 1; END;
CREATE TRIGGER slots_updated AFTER UPDATE ON slots BEGIN UPDATE catalog_version SET version = version + 1; END;
CREATE TRIGGER slots_deleted AFTER DELETE ON slots BEGIN UPDATE catalog_version SET version = version + 1; END;
