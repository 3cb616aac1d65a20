package sqlite

import (
	"context"
	"database/sql"

	"github.com/batonhq/baton"
)

// CreateApp creates an app and its production slot.
func (s *DB) CreateApp(ctx context.Context, name string) (baton.App, error) {
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
		_, err := tx.ExecContext(ctx, `INSERT INTO slots (app, name, created_at) VALUES (?, ?, ?)`, name, baton.ProductionSlot, now)
		return err
	})
	if err != nil {
		return baton.App{}, err
	}
	return s.App(ctx, name)
}

// App returns one app with its slots.
func (s *DB) App(ctx context.Context, name string) (baton.App, error) {
	var a baton.App
	var created int64
	var frozenReason, frozenBy string
	var frozenAt sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT name, revision_mode, created_at, frozen_reason, frozen_by, frozen_at, controller, kudu_on_conflict, git_on_conflict, registry_on_conflict, routing_generation
		FROM apps WHERE name = ?`, name).
		Scan(&a.Name, &a.RevisionMode, &created, &frozenReason, &frozenBy, &frozenAt, &a.Controller, &a.Options.KuduOnConflict, &a.Options.GitOnConflict, &a.Options.RegistryOnConflict, &a.RoutingGeneration)
	if err != nil {
		return a, notFound(err, "app %q does not exist; create it with `baton apps create %s`", name, name)
	}
	a.CreatedAt = fromMicros(created)
	if frozenAt.Valid {
		a.Frozen = &baton.Freeze{Reason: frozenReason, By: frozenBy, At: fromMicros(frozenAt.Int64)}
	}
	a.Slots, err = s.slots(ctx, name)
	return a, err
}

func (s *DB) slots(ctx context.Context, app string) ([]baton.Slot, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT app, name, live_revision, auto_swap_to FROM slots WHERE app = ? ORDER BY created_at, name`, app)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []baton.Slot
	for rows.Next() {
		var sl baton.Slot
		if err := rows.Scan(&sl.App, &sl.Name, &sl.LiveRevision, &sl.AutoSwapTo); err != nil {
			return nil, err
		}
		out = append(out, sl)
	}
	return out, rows.Err()
}

// Apps returns every app, by name.
func (s *DB) Apps(ctx context.Context) ([]baton.App, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM apps ORDER BY name`)
	if err != nil {
		return nil, err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]baton.App, 0, len(names))
	for _, n := range names {
		a, err := s.App(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
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
