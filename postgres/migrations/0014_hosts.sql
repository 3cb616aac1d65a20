-- Hosts: each controller records the address other hosts reach it at
-- (advertise), its peer listener, the instances it runs and whether it
-- is draining, with its heartbeat.
ALTER TABLE controllers ADD COLUMN advertise TEXT NOT NULL DEFAULT '';
ALTER TABLE controllers ADD COLUMN peer TEXT NOT NULL DEFAULT '';
ALTER TABLE controllers ADD COLUMN instances INTEGER NOT NULL DEFAULT 0;
ALTER TABLE controllers ADD COLUMN draining BOOLEAN NOT NULL DEFAULT false;
