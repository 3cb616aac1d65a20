package postgres

import (
	"context"
	"time"

	"github.com/batonhq/baton"
	"github.com/jackc/pgx/v5"
)

const tokenColumns = `id, name, scope, apps, hash, created_at, created_by, last_used_at, expires_at`

func scanToken(row scanner) (baton.Token, error) {
	var t baton.Token
	err := row.Scan(&t.ID, &t.Name, &t.Scope, &t.Apps, &t.Hash, &t.CreatedAt, &t.CreatedBy, &t.LastUsedAt, &t.ExpiresAt)
	utc(&t.CreatedAt)
	utc(t.LastUsedAt)
	utc(t.ExpiresAt)
	if len(t.Apps) == 0 {
		t.Apps = nil
	}
	return t, err
}

// CreateToken stores a token, timed by the database clock; ECONFLICT if
// its name is taken.
func (s *DB) CreateToken(ctx context.Context, t baton.Token) (baton.Token, error) {
	if err := baton.ValidateToken(t); err != nil {
		return t, err
	}
	apps := t.Apps
	if apps == nil {
		apps = []string{}
	}
	err := s.pool.QueryRow(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, now(), $6, NULL, $7)
		ON CONFLICT (name) DO NOTHING RETURNING created_at`,
		t.ID, t.Name, t.Scope, apps, t.Hash, t.CreatedBy, t.ExpiresAt).Scan(&t.CreatedAt)
	if err == pgx.ErrNoRows {
		return t, baton.Errorf(baton.ECONFLICT, "a token named %q exists; revoke it first with `baton tokens revoke %s`, or pick another name", t.Name, t.Name)
	}
	utc(&t.CreatedAt)
	return t, err
}

// TokenByHash returns the token whose secret has the given hash.
func (s *DB) TokenByHash(ctx context.Context, hash string) (baton.Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, hash))
	return t, notFound(err, "no such token")
}

// Tokens lists every token, oldest first.
func (s *DB) Tokens(ctx context.Context) ([]baton.Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at, name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (baton.Token, error) { return scanToken(row) })
}

// DeleteToken removes the named token, but never the last admin token
// that has not expired at now. The admin rows are locked first, so two
// controllers revoking the last two admin tokens at once cannot both win.
func (s *DB) DeleteToken(ctx context.Context, name string, now time.Time) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT name, expires_at FROM tokens WHERE scope = $1 ORDER BY name FOR UPDATE`, baton.ScopeAdmin)
		if err != nil {
			return err
		}
		type admin struct {
			name    string
			expires *time.Time
		}
		admins, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (admin, error) {
			var a admin
			return a, row.Scan(&a.name, &a.expires)
		})
		if err != nil {
			return err
		}
		isAdmin, others := false, 0
		for _, a := range admins {
			switch {
			case a.name == name:
				isAdmin = true
			case a.expires == nil || a.expires.After(now):
				others++
			}
		}
		if isAdmin && others == 0 {
			return baton.Errorf(baton.ECONFLICT, "token %q is the last admin token: create another admin token before revoking it", name)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM tokens WHERE name = $1`, name)
		if err == nil && tag.RowsAffected() == 0 {
			return baton.Errorf(baton.ENOTFOUND, "token %q does not exist; `baton tokens list` shows the tokens", name)
		}
		return err
	})
}

// TouchToken records a use of the token.
func (s *DB) TouchToken(ctx context.Context, id string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE tokens SET last_used_at = $2 WHERE id = $1`, id, at)
	return err
}
