-- The revision whose code a revision runs again, when a settings change
-- or a rollback with the current settings made it: an image revision's
-- manifest is found through it at the deploy that started the chain.
ALTER TABLE revisions ADD COLUMN source TEXT NOT NULL DEFAULT '';
