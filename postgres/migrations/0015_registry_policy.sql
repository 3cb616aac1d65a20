-- The conflict policy of an image pushed to baton's registry
-- (baton.AppOptions.RegistryOnConflict); '' is queue.
ALTER TABLE apps ADD COLUMN registry_on_conflict TEXT NOT NULL DEFAULT '';
