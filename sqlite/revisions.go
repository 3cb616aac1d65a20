package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/batonhq/baton"
)

const revisionColumns = `name, app, number, slot, deployment, artifact_digest, created_at, active, weight, env, source`

func scanRevision(row scanner) (baton.Revision, error) {
	var r baton.Revision
	var created int64
	var env string
	err := row.Scan(&r.Name, &r.App, &r.Number, &r.Slot, &r.Deployment, &r.ArtifactDigest, &created, &r.Active, &r.Weight, &env, &r.Source)
	if err != nil {
		return r, err
	}
	r.CreatedAt = fromMicros(created)
	err = json.Unmarshal([]byte(env), &r.Env)
	return r, err
}

// CreateRevision records the app's next revision.
func (s *DB) CreateRevision(ctx context.Context, f baton.Fence, r baton.Revision) (baton.Revision, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := checkFence(ctx, tx, f); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `UPDATE apps SET next_revision = next_revision + 1 WHERE name = ? RETURNING next_revision - 1`, r.App).Scan(&n); err != nil {
			return notFound(err, "app %q does not exist", r.App)
		}
		r.Number, r.Name = n, baton.RevisionName(r.App, n)
		now := s.now()
		r.CreatedAt = fromMicros(now)
		r.Active, r.Weight = false, 0
		env, err := json.Marshal(r.Env)
		if err != nil {
			return err
		}
		if r.Env == nil {
			env = []byte("{}")
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO revisions (`+revisionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?)`,
			r.Name, r.App, r.Number, r.Slot, r.Deployment, r.ArtifactDigest, now, string(env), r.Source)
		return err
	})
	return r, err
}

// Revision returns one revision by name.
func (s *DB) Revision(ctx context.Context, name string) (baton.Revision, error) {
	r, err := scanRevision(s.rdb.QueryRowContext(ctx, `SELECT `+revisionColumns+` FROM revisions WHERE name = ?`, name))
	return r, notFound(err, "revision %q does not exist", name)
}

// Revisions returns an app's revisions, newest first (app "": every
// app's, by app).
func (s *DB) Revisions(ctx context.Context, app string) ([]baton.Revision, error) {
	q, args := `SELECT `+revisionColumns+` FROM revisions WHERE app = ? ORDER BY number DESC`, []any{app}
	if app == "" {
		q, args = `SELECT `+revisionColumns+` FROM revisions ORDER BY app, number DESC`, nil
	}
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []baton.Revision
	for rows.Next() {
		r, err := scanRevision(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
