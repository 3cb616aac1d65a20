package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"github.com/batonhq/baton"
)

const tokenColumns = `id, name, scope, apps, hash, created_at, created_by, last_used_at, expires_at`

func scanToken(row scanner) (baton.Token, error) {
	var t baton.Token
	var apps string
	var created int64
	var used, expires sql.NullInt64
	if err := row.Scan(&t.ID, &t.Name, &t.Scope, &apps, &t.Hash, &created, &t.CreatedBy, &used, &expires); err != nil {
		return t, err
	}
	t.CreatedAt, t.LastUsedAt, t.ExpiresAt = fromMicros(created), fromNullMicros(used), fromNullMicros(expires)
	if err := json.Unmarshal([]byte(apps), &t.Apps); err != nil || len(t.Apps) == 0 {
		t.Apps = nil
		return t, err
	}
	return t, nil
}

func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// CreateToken stores a token; ECONFLICT if its name is taken.
func (s *DB) CreateToken(ctx context.Context, t baton.Token) (baton.Token, error) {
	if err := baton.ValidateToken(t); err != nil {
		return t, err
	}
	if t.Apps == nil {
		t.Apps = []string{}
	}
	apps, _ := json.Marshal(t.Apps)
	now := s.now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)`,
		t.ID, t.Name, t.Scope, string(apps), t.Hash, now, t.CreatedBy, nullMicros(t.ExpiresAt))
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return t, baton.Errorf(baton.ECONFLICT, "a token named %q exists; revoke it first with `baton tokens revoke %s`, or pick another name", t.Name, t.Name)
		}
		return t, err
	}
	t.CreatedAt = fromMicros(now)
	return t, nil
}

// TokenByHash returns the token whose secret has the given hash.
func (s *DB) TokenByHash(ctx context.Context, hash string) (baton.Token, error) {
	t, err := scanToken(s.rdb.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, hash))
	return t, notFound(err, "no such token")
}

// Tokens lists every token, oldest first.
func (s *DB) Tokens(ctx context.Context) ([]baton.Token, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at, name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []baton.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteToken removes the named token, but never the last admin token
// that has not expired at now.
func (s *DB) DeleteToken(ctx context.Context, name string, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var scope string
		if err := tx.QueryRowContext(ctx, `SELECT scope FROM tokens WHERE name = ?`, name).Scan(&scope); err != nil {
			return notFound(err, "token %q does not exist; `baton tokens list` shows the tokens", name)
		}
		if baton.Scope(scope) == baton.ScopeAdmin {
			var others int
			err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens WHERE scope = ? AND name <> ? AND (expires_at IS NULL OR expires_at > ?)`,
				baton.ScopeAdmin, name, now.UnixMicro()).Scan(&others)
			if err != nil {
				return err
			}
			if others == 0 {
				return baton.Errorf(baton.ECONFLICT, "token %q is the last admin token: create another admin token before revoking it", name)
			}
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE name = ?`, name)
		return err
	})
}

// TouchToken records a use of the token.
func (s *DB) TouchToken(ctx context.Context, id string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, at.UnixMicro(), id)
	return err
}
