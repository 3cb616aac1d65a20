package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/batonhq/baton"
)

// checkFence fails with ErrStaleToken unless f is the current lease of its key.
func checkFence(ctx context.Context, tx *sql.Tx, f baton.Fence) error {
	var token int64
	err := tx.QueryRowContext(ctx, `SELECT token FROM leases WHERE key = ?`, f.Key).Scan(&token)
	if err == sql.ErrNoRows || (err == nil && token != f.Token) {
		return baton.ErrStaleToken
	}
	return err
}

// appOfKey returns the app name of an app lease key.
func appOfKey(key string) string { return strings.TrimPrefix(key, "app:") }

// AcquireLease takes key for holder unless someone else holds it unexpired.
func (s *DB) AcquireLease(ctx context.Context, key, holder string, ttl time.Duration) (baton.Lease, error) {
	var l baton.Lease
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		cur, err := leaseTx(ctx, tx, key)
		if err == nil && cur.ExpiresAt.UnixMicro() > now {
			return baton.Errorf(baton.ECONFLICT, "%s is held by %s (token %d) until %s", key, cur.Holder, cur.Token, cur.ExpiresAt.Format(time.RFC3339))
		}
		if err != nil && baton.ErrorCode(err) != baton.ENOTFOUND {
			return err
		}
		var token int64
		err = tx.QueryRowContext(ctx, `INSERT INTO fences (key, last) VALUES (?, 1)
			ON CONFLICT (key) DO UPDATE SET last = fences.last + 1 RETURNING last`, key).Scan(&token)
		if err != nil {
			return err
		}
		exp := now + ttl.Microseconds()
		_, err = tx.ExecContext(ctx, `INSERT INTO leases (key, holder, token, acquired_at, expires_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, token = excluded.token,
			acquired_at = excluded.acquired_at, expires_at = excluded.expires_at`, key, holder, token, now, exp)
		l = baton.Lease{Key: key, Holder: holder, Token: token, AcquiredAt: fromMicros(now), ExpiresAt: fromMicros(exp)}
		return err
	})
	return l, err
}

// RenewLease extends the current lease f.
func (s *DB) RenewLease(ctx context.Context, f baton.Fence, ttl time.Duration) (baton.Lease, error) {
	var l baton.Lease
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := checkFence(ctx, tx, f); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE leases SET expires_at = ? WHERE key = ?`, s.now()+ttl.Microseconds(), f.Key); err != nil {
			return err
		}
		var err error
		l, err = leaseTx(ctx, tx, f.Key)
		return err
	})
	return l, err
}

// ReleaseLease deletes the lease f if it is still current.
func (s *DB) ReleaseLease(ctx context.Context, f baton.Fence) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := checkFence(ctx, tx, f); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM leases WHERE key = ?`, f.Key)
		return err
	})
}

// Lease returns the lease of key, ENOTFOUND when none is recorded.
func (s *DB) Lease(ctx context.Context, key string) (baton.Lease, error) {
	var l baton.Lease
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		var err error
		l, err = leaseTx(ctx, tx, key)
		return err
	})
	return l, err
}

func leaseTx(ctx context.Context, tx *sql.Tx, key string) (baton.Lease, error) {
	var l baton.Lease
	var acq, exp int64
	err := tx.QueryRowContext(ctx, `SELECT key, holder, token, acquired_at, expires_at FROM leases WHERE key = ?`, key).
		Scan(&l.Key, &l.Holder, &l.Token, &acq, &exp)
	if err != nil {
		return l, notFound(err, "no lease is held on %s", key)
	}
	l.AcquiredAt, l.ExpiresAt = fromMicros(acq), fromMicros(exp)
	return l, nil
}

// Leases returns every recorded lease, expired ones included.
func (s *DB) Leases(ctx context.Context) ([]baton.Lease, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT key, holder, token, acquired_at, expires_at FROM leases ORDER BY key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []baton.Lease
	for rows.Next() {
		var l baton.Lease
		var acq, exp int64
		if err := rows.Scan(&l.Key, &l.Holder, &l.Token, &acq, &exp); err != nil {
			return nil, err
		}
		l.AcquiredAt, l.ExpiresAt = fromMicros(acq), fromMicros(exp)
		out = append(out, l)
	}
	return out, rows.Err()
}

// BreakLease deletes the lease of key whoever holds it.
func (s *DB) BreakLease(ctx context.Context, key string) (baton.Lease, error) {
	var l baton.Lease
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if l, err = leaseTx(ctx, tx, key); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM leases WHERE key = ?`, key)
		return err
	})
	return l, err
}
