-- sends_peer_key counts only for the registration that set it: a host
-- restarted with an older baton after a kill -9 (no clean stop to clear
-- the row) registers again without knowing the column and would leave it
-- true, and the other hosts would then refuse its key-less requests. A
-- baton that sends the key stamps the registration's started_at here; an
-- older one changes started_at and not this.
ALTER TABLE controllers ADD COLUMN peer_key_started_at TIMESTAMPTZ;
