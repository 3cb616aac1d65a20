-- Hosts: each controller records the address other hosts reach it at
-- (advertise), its peer listener, the instances it runs and whether it
-- is draining, with its heartbeat.
ALTER TABLE controllers ADD COLUMN advertise TEXT NOT NULL DEFAULT '';
ALTER TABLE controllers ADD COLUMN peer TEXT NOT NULL DEFAULT '';
ALTER TABLE controllers ADD COLUMN instances INTEGER NOT NULL DEFAULT 0;
ALTER TABLE controllers ADD COLUMN draining INTEGER NOT NULL DEFAULT 0;

-- Routing generations: each change of an app's routing (a switch, a move
-- to another host) advances its generation in the same transaction; each
-- host records the generation its proxy applied (its ack).
ALTER TABLE apps ADD COLUMN routing_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN routing_changed_at BIGINT NOT NULL DEFAULT 0;
CREATE TABLE routing_acks (
	controller TEXT NOT NULL,
	app TEXT NOT NULL,
	generation BIGINT NOT NULL,
	applied_at BIGINT NOT NULL,
	PRIMARY KEY (controller, app)
);
