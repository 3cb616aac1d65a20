-- Keys the hosts sharing this database share with each other: "peer" is
-- what each host's proxy sends to the others' peer listeners, which
-- refuse requests without it (made at random by the first host to ask).
CREATE TABLE cluster_keys (
	name TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
