-- The ACME client's storage (baton.CertStore): certificates, their keys
-- (sealed by the secrets wrapper), account data, challenge tokens.
CREATE TABLE certs (
	key TEXT PRIMARY KEY,
	value BLOB NOT NULL,
	modified BIGINT NOT NULL
);
