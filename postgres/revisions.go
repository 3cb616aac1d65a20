package postgres

import (
	"context"

	"github.com/batonhq/baton"
	"github.com/jackc/pgx/v5"
)

const revisionColumns = `name, app, number, slot, deployment, artifact_digest, created_at, active, weight, env, source`

func scanRevision(row scanner) (baton.Revision, error) {
	var r baton.Revision
	err := row.Scan(&r.Name, &r.App, &r.Number, &r.Slot, &r.Deployment, &r.ArtifactDigest, &r.CreatedAt, &r.Active, &r.Weight, &r.Env, &r.Source)
	utc(&r.CreatedAt)
	return r, err
}

// CreateRevision records the app's next revision, inactive.
func (s *DB) CreateRevision(ctx context.Context, f baton.Fence, r baton.Revision) (baton.Revision, error) {
	var out baton.Revision
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := checkFence(ctx, tx, f); err != nil {
			return err
		}
		var n int
		err := tx.QueryRow(ctx, `UPDATE apps SET next_revision = next_revision + 1 WHERE name = $1 RETURNING next_revision - 1`, r.App).Scan(&n)
		if err != nil {
			return notFound(err, "app %q does not exist", r.App)
		}
		env := r.Env
		if env == nil {
			env = map[string]string{} // stored as {}, not JSON null
		}
		out, err = scanRevision(tx.QueryRow(ctx, `INSERT INTO revisions (`+revisionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, now(), false, 0, $7, $8)
			RETURNING `+revisionColumns, baton.RevisionName(r.App, n), r.App, n, r.Slot, r.Deployment, r.ArtifactDigest, env, r.Source))
		return err
	})
	return out, err
}

// Revision returns one revision by name.
func (s *DB) Revision(ctx context.Context, name string) (baton.Revision, error) {
	r, err := scanRevision(s.pool.QueryRow(ctx, `SELECT `+revisionColumns+` FROM revisions WHERE name = $1`, name))
	return r, notFound(err, "revision %q does not exist", name)
}

// Revisions returns an app's revisions, newest first (app "": every
// app's, by app).
func (s *DB) Revisions(ctx context.Context, app string) ([]baton.Revision, error) {
	q, args := `SELECT `+revisionColumns+` FROM revisions WHERE app = $1 ORDER BY number DESC`, []any{app}
	if app == "" {
		q, args = `SELECT `+revisionColumns+` FROM revisions ORDER BY app, number DESC`, nil
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (baton.Revision, error) { return scanRevision(row) })
}
