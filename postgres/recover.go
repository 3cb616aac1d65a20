package postgres

import (
	"context"

	"github.com/batonhq/baton"
	"github.com/jackc/pgx/v5"
)

// FailExpired is the recovery step for several controllers sharing the
// store: it ends (see endInterrupted) the running deployments whose lease
// has expired by the database clock or is gone — their controller died or lost the
// database — deletes those leases, and notifies ChannelLeaseReleased for
// each, so the next queued deployment can run. Deployments whose
// controller still renews its lease are left alone, which is why this,
// not FailInterrupted(nil), is what a controller runs on start and when a
// lease it waits for expires.
//
// A controller that was merely slow to renew finds out at its next fenced
// write or renewal: ErrStaleToken.
func (s *DB) FailExpired(ctx context.Context) ([]baton.Deployment, error) {
	const dead = `NOT EXISTS (SELECT 1 FROM leases l
		WHERE l.key = 'app:' || d.app AND l.token = d.token AND l.expires_at > now())`
	var out []baton.Deployment
	err := s.tx(ctx, func(tx pgx.Tx) error {
		// Lease rows before deployment rows: the order fenced writes use.
		// Locking them also stops a late renewal from reviving one.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM leases l JOIN deployments d ON l.key = 'app:' || d.app AND l.token = d.token
			WHERE d.state = 'running' AND l.expires_at <= now() ORDER BY l.key FOR UPDATE OF l`); err != nil {
			return err
		}
		var err error
		out, err = endInterrupted(ctx, tx, dead, "its controller stopped renewing the lock during phase")
		if err != nil {
			return err
		}
		keys, tokens := make([]string, len(out)), make([]int64, len(out))
		for i, d := range out {
			keys[i], tokens[i] = baton.AppLeaseKey(d.App), d.Token
		}
		return deleteLeases(ctx, tx, `(key, token) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))`, keys, tokens)
	})
	return out, err
}
