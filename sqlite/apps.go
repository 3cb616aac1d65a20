package sqlite

import (
	"context"
	"database/sql"

	"github.com/batonhq/baton"
)

// CreateApp creates an app and its production slot.
func (s *DB) CreateApp(ctx context.Context, name string) (baton.App, error) {
	return s.CreateAppFor(ctx, name, "")
}

// CreateAppFor creates an app and its production slot, run by controller
// ("": none yet), assigned in the same transaction as AssignApp does.
func (s *DB) CreateAppFor(ctx context.Context, name, controller string) (baton.App, error) {
	now := s.now()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM apps WHERE name = ?`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return baton.Errorf(baton.ECONFLICT, "app %q already exists; pick another name or delete it first with `baton apps delete %s`", name, name)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO apps (name, created_at) VALUES (?, ?)`, name, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO slots (app, name, created_at) VALUES (?, ?, ?)`, name, baton.ProductionSlot, now); err != nil {
			return err
		}
		if controller == "" {
			return nil
		}
		_, err := tx.ExecContext(ctx, assignApp, controller, now, name, "")
		return err
	})
	if err != nil {
		return baton.App{}, err
	}
	return s.App(ctx, name)
}

// appColumns are the columns scanApp reads.
const appColumns = `name, revision_mode, created_at, frozen_reason, frozen_by, frozen_at, controller, kudu_on_conflict, git_on_conflict, registry_on_conflict, routing_generation`

func scanApp(row scanner) (baton.App, error) {
	var a baton.App
	var created int64
	var frozenReason, frozenBy string
	var frozenAt sql.NullInt64
	if err := row.Scan(&a.Name, &a.RevisionMode, &created, &frozenReason, &frozenBy, &frozenAt, &a.Controller, &a.Options.KuduOnConflict, &a.Options.GitOnConflict, &a.Options.RegistryOnConflict, &a.RoutingGeneration); err != nil {
		return a, err
	}
	a.CreatedAt = fromMicros(created)
	if frozenAt.Valid {
		a.Frozen = &baton.Freeze{Reason: frozenReason, By: frozenBy, At: fromMicros(frozenAt.Int64)}
	}
	return a, nil
}

// App returns one app with its slots.
func (s *DB) App(ctx context.Context, name string) (baton.App, error) {
	var a baton.App
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		if a, err = scanApp(tx.QueryRowContext(ctx, `SELECT `+appColumns+` FROM apps WHERE name = ?`, name)); err != nil {
			return notFound(err, "app %q does not exist; create it with `baton apps create %s`", name, name)
		}
		apps := []baton.App{a}
		err = attachSlots(ctx, tx, apps, `WHERE app = ?`, name)
		a = apps[0]
		return err
	})
	return a, err
}

// attachSlots reads the slots matching where and gives each app in apps
// (sorted by name) its own, in creation order. Both lists are in app
// order, so each slot's app is found by walking apps along with the rows,
// and the slots_in_order index gives the rows in that order unsorted.
func attachSlots(ctx context.Context, tx *sql.Tx, apps []baton.App, where string, args ...any) error {
	rows, err := tx.QueryContext(ctx, `SELECT app, name, live_revision, auto_swap_to FROM slots `+where+` ORDER BY app, created_at, name`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		var sl baton.Slot
		if err := rows.Scan(&sl.App, &sl.Name, &sl.LiveRevision, &sl.AutoSwapTo); err != nil {
			return err
		}
		for i < len(apps) && apps[i].Name < sl.App {
			i++
		}
		if i < len(apps) && apps[i].Name == sl.App {
			apps[i].Slots = append(apps[i].Slots, sl)
		}
	}
	return rows.Err()
}

// Apps returns every app, by name, each with its slots: two queries in
// one read transaction, whatever the number of apps, or none beyond the
// catalog's version while no app or slot changed (catalog.go).
func (s *DB) Apps(ctx context.Context) ([]baton.App, error) {
	var out []baton.App
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		var version int64
		if err := tx.QueryRowContext(ctx, `SELECT version FROM catalog_version`).Scan(&version); err != nil {
			return err
		}
		if kept, ok := s.catalog.get(version); ok {
			out = kept
			return nil
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+appColumns+` FROM apps ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			a, err := scanApp(rows)
			if err != nil {
				return err
			}
			out = append(out, a)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		if err := attachSlots(ctx, tx, out, ``); err != nil {
			return err
		}
		s.catalog.put(version, out)
		return nil
	})
	if out == nil && err == nil {
		out = make([]baton.App, 0)
	}
	return out, err
}

// DeleteApp removes an app and its slots, deployments, logs, revisions and
// lease. Fencing counters stay.
func (s *DB) DeleteApp(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM apps WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return baton.Errorf(baton.ENOTFOUND, "app %q does not exist", name)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM leases WHERE key = ?`, baton.AppLeaseKey(name))
		return err
	})
}

// SetLive gives revision 100 % of a slot and deactivates the slot's others.
func (s *DB) SetLive(ctx context.Context, f baton.Fence, slot, revision string) error {
	return s.SetRouting(ctx, f, map[string][]baton.RevisionWeight{slot: {{Revision: revision, Weight: 100}}})
}
