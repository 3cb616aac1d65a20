package postgres

import (
	"context"
	"crypto/rand"
	"fmt"
)

// PeerKey returns the key the hosts sharing this database send to each
// other's peer listeners (proxy.Config.PeerKey). The first host to ask
// makes it at random; every later call, on any host, reads that one.
func (s *DB) PeerKey(ctx context.Context) (string, error) {
	// Two statements: the SELECT's snapshot then sees a key another host
	// inserted while this INSERT waited on it.
	if _, err := s.pool.Exec(ctx, `INSERT INTO cluster_keys (name, value) VALUES ('peer', $1) ON CONFLICT (name) DO NOTHING`, rand.Text()); err != nil {
		return "", fmt.Errorf("make the cluster's peer key: %w", err)
	}
	var key string
	if err := s.pool.QueryRow(ctx, `SELECT value FROM cluster_keys WHERE name = 'peer'`).Scan(&key); err != nil {
		return "", fmt.Errorf("read the cluster's peer key: %w", err)
	}
	return key, nil
}
