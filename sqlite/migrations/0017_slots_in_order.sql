-- Slots in the order lists give them (by app, then creation): listing
-- every app's slots reads this index in order instead of sorting each
-- app's slots (GET /api/v1/apps with 1,000 apps × 3 slots).
CREATE INDEX slots_in_order ON slots (app, created_at, name);
