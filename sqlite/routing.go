package sqlite

import (
	"context"
	"database/sql"

	"github.com/batonhq/baton"
)

// SetRouting sets the active revisions and weights of the listed slots.
func (s *DB) SetRouting(ctx context.Context, f baton.Fence, slots map[string][]baton.RevisionWeight) error {
	app := appOfKey(f.Key)
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := checkFence(ctx, tx, f); err != nil {
			return err
		}
		if err := markSwitched(ctx, tx, app, f.Token); err != nil {
			return err
		}
		for slot := range slots {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM slots WHERE app = ? AND name = ?`, app, slot).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return baton.Errorf(baton.ENOTFOUND, "slot %q of app %q does not exist", slot, app)
			}
			// Revisions moving into this slot are moved in a later loop;
			// here every revision of the slot stops first.
			if _, err := tx.ExecContext(ctx, `UPDATE revisions SET active = 0, weight = 0 WHERE app = ? AND slot = ?`, app, slot); err != nil {
				return err
			}
		}
		for slot, revs := range slots {
			live, top := "", -1
			for _, rw := range revs {
				res, err := tx.ExecContext(ctx, `UPDATE revisions SET slot = ?, active = 1, weight = ? WHERE app = ? AND name = ?`,
					slot, rw.Weight, app, rw.Revision)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n == 0 {
					return baton.Errorf(baton.ENOTFOUND, "revision %q of app %q does not exist", rw.Revision, app)
				}
				if rw.Weight > top {
					live, top = rw.Revision, rw.Weight
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE slots SET live_revision = ? WHERE app = ? AND name = ?`, live, app, slot); err != nil {
				return err
			}
		}
		return s.bumpRouting(ctx, tx, app)
	})
}

// bumpRouting advances app's routing generation: every host's proxy
// applies the app's routing again and acknowledges the new generation.
func (s *DB) bumpRouting(ctx context.Context, tx *sql.Tx, app string) error {
	_, err := tx.ExecContext(ctx, `UPDATE apps SET routing_generation = routing_generation + 1, routing_changed_at = ? WHERE name = ?`, s.now(), app)
	return err
}

// markSwitched records that the running deployment holding the app lease
// with token has changed the routing: from here it completes, even across
// a crash (see endInterrupted).
func markSwitched(ctx context.Context, tx *sql.Tx, app string, token int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE deployments SET switched = 1 WHERE app = ? AND token = ? AND state = 'running'`, app, token)
	return err
}

// SetFrozen freezes or unfreezes an app.
func (s *DB) SetFrozen(ctx context.Context, app string, f *baton.Freeze) error {
	var res sql.Result
	var err error
	if f == nil {
		res, err = s.db.ExecContext(ctx, `UPDATE apps SET frozen_reason = '', frozen_by = '', frozen_at = NULL WHERE name = ?`, app)
	} else {
		res, err = s.db.ExecContext(ctx, `UPDATE apps SET frozen_reason = ?, frozen_by = ?, frozen_at = ? WHERE name = ?`, f.Reason, f.By, s.now(), app)
	}
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return baton.Errorf(baton.ENOTFOUND, "app %q does not exist", app)
	}
	return nil
}

// SetRevisionMode sets single or multiple revision mode.
func (s *DB) SetRevisionMode(ctx context.Context, app, mode string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE apps SET revision_mode = ? WHERE name = ?`, mode, app)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return baton.Errorf(baton.ENOTFOUND, "app %q does not exist", app)
	}
	return nil
}

// SetAppOptions replaces an app's options.
func (s *DB) SetAppOptions(ctx context.Context, app string, o baton.AppOptions) error {
	res, err := s.db.ExecContext(ctx, `UPDATE apps SET kudu_on_conflict = ?, git_on_conflict = ?, registry_on_conflict = ? WHERE name = ?`,
		string(o.KuduOnConflict), string(o.GitOnConflict), string(o.RegistryOnConflict), app)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return baton.Errorf(baton.ENOTFOUND, "app %q does not exist", app)
	}
	return nil
}

// CreateSlot adds a slot to an app.
func (s *DB) CreateSlot(ctx context.Context, app, slot string) (baton.Slot, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var apps, slots int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM apps WHERE name = ?`, app).Scan(&apps); err != nil {
			return err
		}
		if apps == 0 {
			return baton.Errorf(baton.ENOTFOUND, "app %q does not exist; create it with `baton apps create %s`", app, app)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM slots WHERE app = ? AND name = ?`, app, slot).Scan(&slots); err != nil {
			return err
		}
		if slots > 0 {
			return baton.Errorf(baton.ECONFLICT, "slot %q of app %q already exists", slot, app)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO slots (app, name, created_at) VALUES (?, ?, ?)`, app, slot, s.now())
		return err
	})
	return baton.Slot{App: app, Name: slot}, err
}

// DeleteSlot removes a slot and its settings; its revisions stop being
// routed, which advances the app's routing generation.
func (s *DB) DeleteSlot(ctx context.Context, app, slot string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM slots WHERE app = ? AND name = ?`, app, slot)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return baton.Errorf(baton.ENOTFOUND, "slot %q of app %q does not exist", slot, app)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE revisions SET active = 0, weight = 0 WHERE app = ? AND slot = ?`, app, slot); err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, `DELETE FROM settings WHERE app = ? AND slot = ?`, app, slot); err != nil {
			return err
		}
		return s.bumpRouting(ctx, tx, app)
	})
}

// SetAutoSwap sets the slot a slot swaps into after each deployment ("" for none).
func (s *DB) SetAutoSwap(ctx context.Context, app, slot, target string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE slots SET auto_swap_to = ? WHERE app = ? AND name = ?`, target, app, slot)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return baton.Errorf(baton.ENOTFOUND, "slot %q of app %q does not exist", slot, app)
	}
	return nil
}

// Settings returns a slot's settings by key.
func (s *DB) Settings(ctx context.Context, app, slot string) ([]baton.Setting, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT app, slot, key, value, sticky, secret FROM settings WHERE app = ? AND slot = ? ORDER BY key`, app, slot)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []baton.Setting
	for rows.Next() {
		var st baton.Setting
		if err := rows.Scan(&st.App, &st.Slot, &st.Key, &st.Value, &st.Sticky, &st.Secret); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// PutSetting creates or replaces a setting.
func (s *DB) PutSetting(ctx context.Context, f baton.Fence, st baton.Setting) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := checkFence(ctx, tx, f); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO settings (app, slot, key, value, sticky, secret, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (app, slot, key) DO UPDATE SET value = excluded.value, sticky = excluded.sticky,
			secret = excluded.secret, updated_at = excluded.updated_at`,
			st.App, st.Slot, st.Key, st.Value, st.Sticky, st.Secret, s.now())
		return err
	})
}

// DeleteSetting removes a setting.
func (s *DB) DeleteSetting(ctx context.Context, f baton.Fence, app, slot, key string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := checkFence(ctx, tx, f); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM settings WHERE app = ? AND slot = ? AND key = ?`, app, slot, key)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return baton.Errorf(baton.ENOTFOUND, "setting %s does not exist in slot %s of %s", key, slot, app)
		}
		return nil
	})
}
