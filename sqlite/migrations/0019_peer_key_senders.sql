-- Whether each host's proxy sends the cluster's peer key to the others'
-- peer listeners; they ask for it once every live host does (a cluster
-- mid-upgrade keeps older hosts' requests served). Hosts of an older baton
-- leave it false.
ALTER TABLE controllers ADD COLUMN sends_peer_key INTEGER NOT NULL DEFAULT 0;
