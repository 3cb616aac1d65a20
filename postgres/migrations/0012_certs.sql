-- The ACME client's storage (baton.CertStore): certificates, their keys
-- (sealed by the secrets wrapper), account data, challenge tokens.
CREATE TABLE certs (
	key TEXT COLLATE "C" PRIMARY KEY,
	value BYTEA NOT NULL,
	modified TIMESTAMPTZ NOT NULL
);
