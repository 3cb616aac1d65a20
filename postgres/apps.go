package postgres

import (
	"context"
	"time"

	"github.com/batonhq/baton"
	"github.com/jackc/pgx/v5"
)

const appColumns = `name, revision_mode, created_at, frozen_reason, frozen_by, frozen_at, controller, kudu_on_conflict, git_on_conflict, registry_on_conflict, routing_generation`

func scanApp(row scanner) (baton.App, error) {
	var a baton.App
	var f baton.Freeze
	var frozenAt *time.Time
	err := row.Scan(&a.Name, &a.RevisionMode, &a.CreatedAt, &f.Reason, &f.By, &frozenAt, &a.Controller, &a.Options.KuduOnConflict, &a.Options.GitOnConflict, &a.Options.RegistryOnConflict, &a.RoutingGeneration)
	utc(&a.CreatedAt)
	if frozenAt != nil {
		f.At = frozenAt.UTC()
		a.Frozen = &f
	}
	return a, err
}

// CreateApp creates an app and its production slot.
func (s *DB) CreateApp(ctx context.Context, name string) (baton.App, error) {
	return s.CreateAppFor(ctx, name, "")
}

// CreateAppFor creates an app and its production slot, run by controller
// ("": none yet), assigned in the same transaction as AssignApp does.
func (s *DB) CreateAppFor(ctx context.Context, name, controller string) (baton.App, error) {
	var a baton.App
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO apps (name, created_at) VALUES ($1, now()) ON CONFLICT (name) DO NOTHING`, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return baton.Errorf(baton.ECONFLICT, "app %q already exists; pick another name or delete it first with `baton apps delete %s`", name, name)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO slots (app, name, created_at) VALUES ($1, $2, now())`, name, baton.ProductionSlot); err != nil {
			return err
		}
		if controller != "" {
			if _, err := tx.Exec(ctx, assignApp, controller, name, ""); err != nil {
				return err
			}
		}
		a, err = appQ(ctx, tx, name)
		return err
	})
	return a, err
}

// App returns one app with its slots.
func (s *DB) App(ctx context.Context, name string) (baton.App, error) {
	return appQ(ctx, s.pool, name)
}

func appQ(ctx context.Context, q querier, name string) (baton.App, error) {
	a, err := scanApp(q.QueryRow(ctx, `SELECT `+appColumns+` FROM apps WHERE name = $1`, name))
	if err != nil {
		return a, notFound(err, "app %q does not exist; create it with `baton apps create %s`", name, name)
	}
	slots, err := slotsQ(ctx, q, `WHERE app = $1`, name)
	a.Slots = slots[name]
	return a, err
}

// slotsQ returns the slots matching where, by app.
func slotsQ(ctx context.Context, q querier, where string, args ...any) (map[string][]baton.Slot, error) {
	rows, err := q.Query(ctx, `SELECT app, name, live_revision, auto_swap_to FROM slots `+where+` ORDER BY app, created_at, name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]baton.Slot{}
	for rows.Next() {
		var sl baton.Slot
		if err := rows.Scan(&sl.App, &sl.Name, &sl.LiveRevision, &sl.AutoSwapTo); err != nil {
			return nil, err
		}
		out[sl.App] = append(out[sl.App], sl)
	}
	return out, rows.Err()
}

// Apps returns every app, by name.
func (s *DB) Apps(ctx context.Context) ([]baton.App, error) {
	var out []baton.App
	// One snapshot for both queries, so every app comes with its slots.
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+appColumns+` FROM apps ORDER BY name`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (baton.App, error) { return scanApp(row) })
		if err != nil {
			return err
		}
		slots, err := slotsQ(ctx, tx, ``)
		if err != nil {
			return err
		}
		for i := range out {
			out[i].Slots = slots[out[i].Name]
		}
		return nil
	})
	return out, err
}

// DeleteApp removes an app and its slots, deployments, logs, revisions and
// lease. Fencing counters stay, so a writer from before the delete stays
// fenced out if the app is created again.
func (s *DB) DeleteApp(ctx context.Context, name string) error {
	key := baton.AppLeaseKey(name)
	return s.tx(ctx, func(tx pgx.Tx) error {
		// The lease row first: the lock order every fenced write uses.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM leases WHERE key = $1 FOR UPDATE`, key); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM apps WHERE name = $1`, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return baton.Errorf(baton.ENOTFOUND, "app %q does not exist", name)
		}
		return deleteLeases(ctx, tx, `key = $1`, key)
	})
}

// SetLive gives revision 100 % of a slot and deactivates the slot's others.
func (s *DB) SetLive(ctx context.Context, f baton.Fence, slot, revision string) error {
	return s.SetRouting(ctx, f, map[string][]baton.RevisionWeight{slot: {{Revision: revision, Weight: 100}}})
}
