package postgres

import (
	"context"
	"time"

	"github.com/batonhq/baton"
	"github.com/jackc/pgx/v5"
)

// Controller is one `baton serve` process sharing this database.
type Controller struct {
	ID string `json:"id"`
	// Addr is where other controllers and clients reach its API.
	Addr      string    `json:"addr"`
	StartedAt time.Time `json:"started_at"`
	// LastSeen is its last heartbeat, by the database clock.
	LastSeen time.Time `json:"last_seen"`
	// Silence is how long ago LastSeen was, measured by the database clock
	// too, so that a reader on another host need not trust its own.
	Silence time.Duration `json:"silence"`
}

// RegisterController records controller id at addr as started and seen
// now. Registering an id again (a restart) resets both times.
func (s *DB) RegisterController(ctx context.Context, id, addr string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO controllers (id, addr, started_at, last_seen) VALUES ($1, $2, now(), now())
		ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, started_at = excluded.started_at, last_seen = excluded.last_seen`, id, addr)
	return err
}

// HeartbeatController records that controller id is alive now; ENOTFOUND
// if it is not registered (it was deregistered: register again).
func (s *DB) HeartbeatController(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE controllers SET last_seen = now() WHERE id = $1`, id)
	if err == nil && tag.RowsAffected() == 0 {
		return baton.Errorf(baton.ENOTFOUND, "controller %q is not registered", id)
	}
	return err
}

// DeregisterController removes controller id, on a clean shutdown.
func (s *DB) DeregisterController(ctx context.Context, id string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM controllers WHERE id = $1`, id)
	return err
}

// Controllers returns every registered controller, by id.
func (s *DB) Controllers(ctx context.Context) ([]Controller, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, addr, started_at, last_seen,
		(extract(epoch FROM now() - last_seen) * 1000000)::bigint FROM controllers ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Controller, error) {
		var c Controller
		var silence int64
		err := row.Scan(&c.ID, &c.Addr, &c.StartedAt, &c.LastSeen, &silence)
		utc(&c.StartedAt)
		utc(&c.LastSeen)
		c.Silence = time.Duration(silence) * time.Microsecond
		return c, err
	})
}
