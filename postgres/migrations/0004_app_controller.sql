-- Each app is pinned to the controller that runs its instances and operations.
ALTER TABLE apps ADD COLUMN controller TEXT NOT NULL DEFAULT '';

-- Artifacts in 4 MiB chunks, so the controller that runs an app can read an
-- artifact another controller accepted.
CREATE TABLE artifact_chunks (
	digest TEXT NOT NULL,
	n INTEGER NOT NULL,
	data BYTEA NOT NULL,
	PRIMARY KEY (digest, n)
);
