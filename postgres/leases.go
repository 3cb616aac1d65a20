package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/jackc/pgx/v5"
)

const leaseColumns = `key, holder, token, acquired_at, expires_at`

func scanLease(row scanner) (baton.Lease, error) {
	var l baton.Lease
	err := row.Scan(&l.Key, &l.Holder, &l.Token, &l.AcquiredAt, &l.ExpiresAt)
	utc(&l.AcquiredAt)
	utc(&l.ExpiresAt)
	return l, err
}

// checkFence fails with ErrStaleToken unless f is the current lease of its
// key. It locks the lease row FOR SHARE until the transaction ends, so the
// lease cannot pass to a new holder between this check and the write it
// guards; concurrent fenced writes of the same holder do not block each other.
func checkFence(ctx context.Context, tx pgx.Tx, f baton.Fence) error {
	var token int64
	err := tx.QueryRow(ctx, `SELECT token FROM leases WHERE key = $1 FOR SHARE`, f.Key).Scan(&token)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && token != f.Token) {
		return baton.ErrStaleToken
	}
	return err
}

// appOfKey returns the app name of an app lease key.
func appOfKey(key string) string { return strings.TrimPrefix(key, "app:") }

// acquireLease is one statement: it draws the next fencing token and writes
// the lease only if the key is free or its lease has expired by the
// database clock. When two acquirers race, the row locks on fences and on
// leases make the second see the first's lease and write nothing (its
// token is skipped: tokens increase, with gaps). The first CTE only avoids
// drawing tokens while the lease is plainly held.
const acquireLease = `
WITH free AS (
	SELECT NOT EXISTS (SELECT 1 FROM leases WHERE key = $1 AND expires_at > now()) AS ok
), token AS (
	INSERT INTO fences AS f (key, last) SELECT $1, 1 FROM free WHERE ok
	ON CONFLICT (key) DO UPDATE SET last = f.last + 1
	RETURNING last
)
INSERT INTO leases AS l (key, holder, token, acquired_at, expires_at)
SELECT $1, $2, last, now(), now() + $3::bigint * interval '1 microsecond' FROM token
ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, token = excluded.token,
	acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
	WHERE l.expires_at <= now()
RETURNING ` + leaseColumns

// AcquireLease takes key for holder unless another lease of key is
// unexpired by the database clock.
func (s *DB) AcquireLease(ctx context.Context, key, holder string, ttl time.Duration) (baton.Lease, error) {
	for attempt := 1; ; attempt++ {
		l, err := scanLease(s.pool.QueryRow(ctx, acquireLease, key, holder, micros(ttl)))
		if !errors.Is(err, pgx.ErrNoRows) {
			return l, err
		}
		cur, err := scanLease(s.pool.QueryRow(ctx, `SELECT `+leaseColumns+` FROM leases WHERE key = $1 AND expires_at > now()`, key))
		switch {
		case err == nil:
			return baton.Lease{}, baton.Errorf(baton.ECONFLICT, "%s is held by %s (token %d) until %s", key, cur.Holder, cur.Token, cur.ExpiresAt.Format(time.RFC3339))
		case !errors.Is(err, pgx.ErrNoRows):
			return baton.Lease{}, err
		case attempt == maxAttempts:
			return baton.Lease{}, baton.Errorf(baton.ECONFLICT, "%s is changing hands too quickly to take; try again", key)
		}
		// The holder let go between the two statements: try again.
	}
}

// RenewLease extends the current lease f to ttl from the database's now.
func (s *DB) RenewLease(ctx context.Context, f baton.Fence, ttl time.Duration) (baton.Lease, error) {
	l, err := scanLease(s.pool.QueryRow(ctx, `UPDATE leases SET expires_at = now() + $3::bigint * interval '1 microsecond'
		WHERE key = $1 AND token = $2 RETURNING `+leaseColumns, f.Key, f.Token, micros(ttl)))
	if errors.Is(err, pgx.ErrNoRows) {
		return l, baton.ErrStaleToken
	}
	return l, err
}

// ReleaseLease deletes the lease f if it is still current, and notifies
// ChannelLeaseReleased.
func (s *DB) ReleaseLease(ctx context.Context, f baton.Fence) error {
	n, err := deleteLeasesN(ctx, s.pool, `key = $1 AND token = $2`, f.Key, f.Token)
	if err == nil && n == 0 {
		return baton.ErrStaleToken
	}
	return err
}

// deleteLeases deletes the leases matching where and notifies
// ChannelLeaseReleased with each key, in one statement (so within the
// caller's transaction, if any: the notification is sent on commit).
func deleteLeases(ctx context.Context, q querier, where string, args ...any) error {
	_, err := deleteLeasesN(ctx, q, where, args...)
	return err
}

func deleteLeasesN(ctx context.Context, q querier, where string, args ...any) (int64, error) {
	tag, err := q.Exec(ctx, `WITH gone AS (DELETE FROM leases WHERE `+where+` RETURNING key)
		SELECT pg_notify('`+ChannelLeaseReleased+`', key) FROM gone`, args...)
	return tag.RowsAffected(), err
}

// Lease returns the lease of key, ENOTFOUND when none is recorded.
func (s *DB) Lease(ctx context.Context, key string) (baton.Lease, error) {
	l, err := scanLease(s.pool.QueryRow(ctx, `SELECT `+leaseColumns+` FROM leases WHERE key = $1`, key))
	return l, notFound(err, "no lease is held on %s", key)
}

// Leases returns every recorded lease, expired ones included.
func (s *DB) Leases(ctx context.Context) ([]baton.Lease, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+leaseColumns+` FROM leases ORDER BY key`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (baton.Lease, error) { return scanLease(row) })
}

// BreakLease deletes the lease of key whoever holds it, and notifies
// ChannelLeaseReleased.
func (s *DB) BreakLease(ctx context.Context, key string) (baton.Lease, error) {
	var l baton.Lease
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		l, err = scanLease(tx.QueryRow(ctx, `DELETE FROM leases WHERE key = $1 RETURNING `+leaseColumns, key))
		if err != nil {
			return notFound(err, "no lease is held on %s", key)
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, ChannelLeaseReleased, key)
		return err
	})
	return l, err
}
