package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/batonhq/baton"
)

// SetScale records a slot's scale under the app's lease.
func (s *DB) SetScale(ctx context.Context, f baton.Fence, sc baton.Scale) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := checkFence(ctx, tx, f); err != nil {
			return err
		}
		if err := checkSlot(ctx, tx, sc.App, sc.Slot); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO scales (app, slot, instances, max_per_host) VALUES (?, ?, ?, ?)
			ON CONFLICT (app, slot) DO UPDATE SET instances = excluded.instances, max_per_host = excluded.max_per_host`,
			sc.App, sc.Slot, sc.Instances, sc.MaxPerHost)
		return err
	})
}

// Scale returns a slot's scale, zero when never set.
func (s *DB) Scale(ctx context.Context, app, slot string) (baton.Scale, error) {
	sc := baton.Scale{App: app, Slot: slot}
	err := s.rdb.QueryRowContext(ctx, `SELECT instances, max_per_host FROM scales WHERE app = ? AND slot = ?`, app, slot).
		Scan(&sc.Instances, &sc.MaxPerHost)
	if errors.Is(err, sql.ErrNoRows) {
		err = nil
	}
	return sc, err
}

// SetPlacements replaces the placements of one revision in a slot and
// advances the app's routing generation.
func (s *DB) SetPlacements(ctx context.Context, app, slot, revision string, ps []baton.Placement) error {
	if err := baton.ValidatePlacements(app, slot, revision, ps); err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := checkSlot(ctx, tx, app, slot); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM placements WHERE app = ? AND slot = ? AND revision = ?`, app, slot, revision); err != nil {
			return err
		}
		now := s.now()
		for _, p := range ps {
			if _, err := tx.ExecContext(ctx, `INSERT INTO placements (app, slot, revision, host, instances, state, message, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, app, slot, revision, p.Host, p.Instances, string(p.State), p.Message, now); err != nil {
				return err
			}
		}
		return s.bumpRouting(ctx, tx, app)
	})
}

// ReportPlacement sets the state and message of one host's placement.
func (s *DB) ReportPlacement(ctx context.Context, p baton.Placement) error {
	res, err := s.db.ExecContext(ctx, `UPDATE placements SET state = ?, message = ?, updated_at = ?
		WHERE app = ? AND slot = ? AND revision = ? AND host = ?`,
		string(p.State), p.Message, s.now(), p.App, p.Slot, p.Revision, p.Host)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return baton.ErrNoSuchPlacement(p)
	}
	return nil
}

// Placements lists the placements matching f.
func (s *DB) Placements(ctx context.Context, f baton.PlacementFilter) ([]baton.Placement, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT app, slot, revision, host, instances, state, message, updated_at FROM placements
		WHERE (?1 = '' OR app = ?1) AND (?2 = '' OR slot = ?2) AND (?3 = '' OR revision = ?3) AND (?4 = '' OR host = ?4)
		ORDER BY app, slot, revision, host`, f.App, f.Slot, f.Revision, f.Host)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []baton.Placement{}
	for rows.Next() {
		var p baton.Placement
		var updated int64
		if err := rows.Scan(&p.App, &p.Slot, &p.Revision, &p.Host, &p.Instances, &p.State, &p.Message, &updated); err != nil {
			return nil, err
		}
		p.UpdatedAt = fromMicros(updated)
		out = append(out, p)
	}
	return out, rows.Err()
}

// checkSlot fails with ENOTFOUND, naming what is missing, unless app
// exists and has slot.
func checkSlot(ctx context.Context, tx *sql.Tx, app, slot string) error {
	var apps, slots int
	err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM apps WHERE name = ?), (SELECT COUNT(*) FROM slots WHERE app = ? AND name = ?)`,
		app, app, slot).Scan(&apps, &slots)
	switch {
	case err != nil:
		return err
	case apps == 0:
		return baton.Errorf(baton.ENOTFOUND, "app %q does not exist", app)
	case slots == 0:
		return baton.Errorf(baton.ENOTFOUND, "slot %q of app %q does not exist", slot, app)
	}
	return nil
}
