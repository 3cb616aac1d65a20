-- baton's own per-app options (baton.AppOptions), kept apart from the
-- app's settings, which are its environment. Options that were kept as
-- production settings move here: the app no longer sees them.
ALTER TABLE apps ADD COLUMN kudu_on_conflict TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN git_on_conflict TEXT NOT NULL DEFAULT '';
UPDATE apps SET kudu_on_conflict = (SELECT value FROM settings WHERE settings.app = apps.name AND slot = 'production' AND key = 'kudu_on_conflict')
	WHERE EXISTS (SELECT 1 FROM settings WHERE settings.app = apps.name AND slot = 'production' AND key = 'kudu_on_conflict'
		AND value IN ('queue', 'fail', 'cancel', 'supersede', 'newer-only'));
UPDATE apps SET git_on_conflict = (SELECT value FROM settings WHERE settings.app = apps.name AND slot = 'production' AND key = 'git_on_conflict')
	WHERE EXISTS (SELECT 1 FROM settings WHERE settings.app = apps.name AND slot = 'production' AND key = 'git_on_conflict'
		AND value IN ('queue', 'fail', 'cancel', 'supersede', 'newer-only'));
DELETE FROM settings WHERE key IN ('kudu_on_conflict', 'git_on_conflict');
