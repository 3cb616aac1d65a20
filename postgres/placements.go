package postgres

import (
	"context"
	"errors"

	"github.com/batonhq/baton"
	"github.com/jackc/pgx/v5"
)

// SetScale records a slot's scale under the app's lease.
func (s *DB) SetScale(ctx context.Context, f baton.Fence, sc baton.Scale) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if err := checkFence(ctx, tx, f); err != nil {
			return err
		}
		if err := lockSlot(ctx, tx, sc.App, sc.Slot); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO scales (app, slot, instances, max_per_host) VALUES ($1, $2, $3, $4)
			ON CONFLICT (app, slot) DO UPDATE SET instances = excluded.instances, max_per_host = excluded.max_per_host`,
			sc.App, sc.Slot, sc.Instances, sc.MaxPerHost)
		return err
	})
}

// Scale returns a slot's scale, zero when never set.
func (s *DB) Scale(ctx context.Context, app, slot string) (baton.Scale, error) {
	sc := baton.Scale{App: app, Slot: slot}
	err := s.pool.QueryRow(ctx, `SELECT instances, max_per_host FROM scales WHERE app = $1 AND slot = $2`, app, slot).
		Scan(&sc.Instances, &sc.MaxPerHost)
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil
	}
	return sc, err
}

// SetPlacements replaces the placements of one revision in a slot,
// advances the app's routing generation and notifies ChannelRouting.
//
// Row locks in the order DeleteApp and DeleteSlot take them (app, slot,
// placements), so that neither can deadlock with it: the app row as
// bumpRouting will lock it, then the slot row as the foreign key of the
// inserts will (FOR KEY SHARE, which leaves SetRouting's updates of the
// slot free).
func (s *DB) SetPlacements(ctx context.Context, app, slot, revision string, ps []baton.Placement) error {
	if err := baton.ValidatePlacements(app, slot, revision, ps); err != nil {
		return err
	}
	hosts := make([]string, len(ps))
	instances := make([]int64, len(ps))
	states := make([]string, len(ps))
	messages := make([]string, len(ps))
	for i, p := range ps {
		hosts[i], instances[i], states[i], messages[i] = p.Host, int64(p.Instances), string(p.State), p.Message
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT name FROM apps WHERE name = $1 FOR NO KEY UPDATE`, app).Scan(new(string))
		if err != nil {
			return notFound(err, "app %q does not exist", app)
		}
		if err := lockSlot(ctx, tx, app, slot); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM placements WHERE app = $1 AND slot = $2 AND revision = $3`, app, slot, revision); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO placements (app, slot, revision, host, instances, state, message, updated_at)
			SELECT $1, $2, $3, h, n, st, m, now() FROM unnest($4::text[], $5::bigint[], $6::text[], $7::text[]) AS t(h, n, st, m)`,
			app, slot, revision, hosts, instances, states, messages); err != nil {
			return err
		}
		return bumpRouting(ctx, tx, app)
	})
}

// ReportPlacement sets the state and message of one host's placement and
// notifies ChannelRouting (every proxy routes by the placements' states).
func (s *DB) ReportPlacement(ctx context.Context, p baton.Placement) error {
	tag, err := s.pool.Exec(ctx, `WITH reported AS (UPDATE placements SET state = $5, message = $6, updated_at = now()
			WHERE app = $1 AND slot = $2 AND revision = $3 AND host = $4 RETURNING app)
		SELECT pg_notify('`+ChannelRouting+`', app) FROM reported`,
		p.App, p.Slot, p.Revision, p.Host, string(p.State), p.Message)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return baton.ErrNoSuchPlacement(p)
	}
	return nil
}

// Placements lists the placements matching f.
func (s *DB) Placements(ctx context.Context, f baton.PlacementFilter) ([]baton.Placement, error) {
	rows, err := s.pool.Query(ctx, `SELECT app, slot, revision, host, instances, state, message, updated_at FROM placements
		WHERE ($1 = '' OR app = $1) AND ($2 = '' OR slot = $2) AND ($3 = '' OR revision = $3) AND ($4 = '' OR host = $4)
		ORDER BY app, slot, revision, host`, f.App, f.Slot, f.Revision, f.Host)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (baton.Placement, error) {
		var p baton.Placement
		err := row.Scan(&p.App, &p.Slot, &p.Revision, &p.Host, &p.Instances, &p.State, &p.Message, &p.UpdatedAt)
		utc(&p.UpdatedAt)
		return p, err
	})
	if out == nil {
		out = []baton.Placement{}
	}
	return out, err
}

// lockSlot locks the row of app's slot FOR KEY SHARE (it stays while the
// transaction writes rows that refer to it), or fails with ENOTFOUND,
// naming what is missing.
func lockSlot(ctx context.Context, tx pgx.Tx, app, slot string) error {
	err := tx.QueryRow(ctx, `SELECT name FROM slots WHERE app = $1 AND name = $2 FOR KEY SHARE`, app, slot).Scan(new(string))
	if !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if _, err := appQ(ctx, tx, app); err != nil {
		return err
	}
	return baton.Errorf(baton.ENOTFOUND, "slot %q of app %q does not exist", slot, app)
}
