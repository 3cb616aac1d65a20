-- A deploy's order key (a CI run number): policy newer-only refuses a key
-- lower than the slot's newest, whatever order requests arrive in. 0: none.
ALTER TABLE deployments ADD COLUMN order_key BIGINT NOT NULL DEFAULT 0;
