package postgres

import (
	"context"
	"slices"

	"github.com/batonhq/baton"
	"github.com/jackc/pgx/v5"
)

// SetRouting sets the active revisions and weights of the listed slots;
// revisions of those slots that are not listed become inactive. A slot's
// live revision is its heaviest (the first listed among equals).
func (s *DB) SetRouting(ctx context.Context, f baton.Fence, slots map[string][]baton.RevisionWeight) error {
	app := appOfKey(f.Key)
	names := make([]string, 0, len(slots))
	for slot := range slots {
		names = append(names, slot)
	}
	slices.Sort(names) // a fixed order of row locks
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := checkFence(ctx, tx, f); err != nil {
			return err
		}
		// The deployment's routing change is recorded: from here it
		// completes, even across a crash (see FailInterrupted).
		if _, err := tx.Exec(ctx, `UPDATE deployments SET switched = true WHERE app = $1 AND token = $2 AND state = 'running'`, app, f.Token); err != nil {
			return err
		}
		// FOR NO KEY UPDATE, what the update of live_revision takes anyway:
		// it leaves rows that refer to the slot (placements, by
		// SetPlacements) free to be written meanwhile.
		rows, err := tx.Query(ctx, `SELECT name FROM slots WHERE app = $1 AND name = ANY($2) ORDER BY name FOR NO KEY UPDATE`, app, names)
		if err != nil {
			return err
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, slot := range names {
			if !slices.Contains(found, slot) {
				return baton.Errorf(baton.ENOTFOUND, "slot %q of app %q does not exist", slot, app)
			}
		}
		// Every revision of these slots stops first, so that revisions
		// moving between them (a swap) end up only where they are listed.
		if _, err := tx.Exec(ctx, `UPDATE revisions SET active = false, weight = 0 WHERE app = $1 AND slot = ANY($2)`, app, names); err != nil {
			return err
		}
		for _, slot := range names {
			live, top := "", -1
			for _, rw := range slots[slot] {
				tag, err := tx.Exec(ctx, `UPDATE revisions SET slot = $1, active = true, weight = $2 WHERE app = $3 AND name = $4`,
					slot, rw.Weight, app, rw.Revision)
				if err != nil {
					return err
				}
				if tag.RowsAffected() == 0 {
					return baton.Errorf(baton.ENOTFOUND, "revision %q of app %q does not exist", rw.Revision, app)
				}
				if rw.Weight > top {
					live, top = rw.Revision, rw.Weight
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE slots SET live_revision = $1 WHERE app = $2 AND name = $3`, live, app, slot); err != nil {
				return err
			}
		}
		return bumpRouting(ctx, tx, app)
	})
}

// bumpRouting advances app's routing generation and notifies
// ChannelRouting (on commit): SetRouting's and SetPlacements' one way to
// make every host's proxy apply the app's routing again.
func bumpRouting(ctx context.Context, tx pgx.Tx, app string) error {
	_, err := tx.Exec(ctx, `UPDATE apps SET routing_generation = routing_generation + 1, routing_changed_at = now() WHERE name = $1`, app)
	if err == nil {
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, ChannelRouting, app)
	}
	return err
}

// SetFrozen freezes (f non-nil: its Reason and By; the time is the
// database's) or unfreezes an app.
func (s *DB) SetFrozen(ctx context.Context, app string, f *baton.Freeze) error {
	var reason, by string
	frozen := f != nil
	if frozen {
		reason, by = f.Reason, f.By
	}
	tag, err := s.pool.Exec(ctx, `UPDATE apps SET frozen_reason = $2, frozen_by = $3,
		frozen_at = CASE WHEN $4::boolean THEN now() END WHERE name = $1`, app, reason, by, frozen)
	if err == nil && tag.RowsAffected() == 0 {
		return baton.Errorf(baton.ENOTFOUND, "app %q does not exist", app)
	}
	return err
}

// SetRevisionMode sets single or multiple revision mode.
func (s *DB) SetRevisionMode(ctx context.Context, app, mode string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE apps SET revision_mode = $1 WHERE name = $2`, mode, app)
	if err == nil && tag.RowsAffected() == 0 {
		return baton.Errorf(baton.ENOTFOUND, "app %q does not exist", app)
	}
	return err
}

// SetAppOptions replaces an app's options.
func (s *DB) SetAppOptions(ctx context.Context, app string, o baton.AppOptions) error {
	tag, err := s.pool.Exec(ctx, `UPDATE apps SET kudu_on_conflict = $1, git_on_conflict = $2, registry_on_conflict = $3 WHERE name = $4`,
		string(o.KuduOnConflict), string(o.GitOnConflict), string(o.RegistryOnConflict), app)
	if err == nil && tag.RowsAffected() == 0 {
		return baton.Errorf(baton.ENOTFOUND, "app %q does not exist", app)
	}
	return err
}

// CreateSlot adds a slot to an app.
func (s *DB) CreateSlot(ctx context.Context, app, slot string) (baton.Slot, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO slots (app, name, created_at) VALUES ($1, $2, now()) ON CONFLICT (app, name) DO NOTHING`, app, slot)
	switch {
	case isForeignKeyViolation(err):
		err = baton.Errorf(baton.ENOTFOUND, "app %q does not exist; create it with `baton apps create %s`", app, app)
	case err == nil && tag.RowsAffected() == 0:
		err = baton.Errorf(baton.ECONFLICT, "slot %q of app %q already exists", slot, app)
	}
	return baton.Slot{App: app, Name: slot}, err
}

// DeleteSlot removes a slot and its settings; its revisions stay in
// history, inactive, which advances the app's routing generation.
func (s *DB) DeleteSlot(ctx context.Context, app, slot string) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM slots WHERE app = $1 AND name = $2`, app, slot)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return baton.Errorf(baton.ENOTFOUND, "slot %q of app %q does not exist", slot, app)
		}
		if _, err := tx.Exec(ctx, `UPDATE revisions SET active = false, weight = 0 WHERE app = $1 AND slot = $2`, app, slot); err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, `DELETE FROM settings WHERE app = $1 AND slot = $2`, app, slot); err != nil {
			return err
		}
		return bumpRouting(ctx, tx, app)
	})
}

// SetAutoSwap sets the slot a slot swaps into after each deployment ("" for none).
func (s *DB) SetAutoSwap(ctx context.Context, app, slot, target string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE slots SET auto_swap_to = $1 WHERE app = $2 AND name = $3`, target, app, slot)
	if err == nil && tag.RowsAffected() == 0 {
		return baton.Errorf(baton.ENOTFOUND, "slot %q of app %q does not exist", slot, app)
	}
	return err
}

// Settings returns a slot's settings by key.
func (s *DB) Settings(ctx context.Context, app, slot string) ([]baton.Setting, error) {
	rows, err := s.pool.Query(ctx, `SELECT app, slot, key, value, sticky, secret FROM settings WHERE app = $1 AND slot = $2 ORDER BY key`, app, slot)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (baton.Setting, error) {
		var st baton.Setting
		err := row.Scan(&st.App, &st.Slot, &st.Key, &st.Value, &st.Sticky, &st.Secret)
		return st, err
	})
}

// PutSetting creates or replaces a setting.
func (s *DB) PutSetting(ctx context.Context, f baton.Fence, st baton.Setting) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := checkFence(ctx, tx, f); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO settings (app, slot, key, value, sticky, secret, updated_at) VALUES ($1, $2, $3, $4, $5, $6, now())
			ON CONFLICT (app, slot, key) DO UPDATE SET value = excluded.value, sticky = excluded.sticky,
			secret = excluded.secret, updated_at = excluded.updated_at`,
			st.App, st.Slot, st.Key, st.Value, st.Sticky, st.Secret)
		return err
	})
	if isForeignKeyViolation(err) {
		return baton.Errorf(baton.ENOTFOUND, "app %q does not exist", st.App)
	}
	return err
}

// DeleteSetting removes a setting.
func (s *DB) DeleteSetting(ctx context.Context, f baton.Fence, app, slot, key string) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := checkFence(ctx, tx, f); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM settings WHERE app = $1 AND slot = $2 AND key = $3`, app, slot, key)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return baton.Errorf(baton.ENOTFOUND, "setting %s does not exist in slot %s of %s", key, slot, app)
		}
		return nil
	})
}
