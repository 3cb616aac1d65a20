// Package postgres implements baton.Store on PostgreSQL, the store several
// `baton serve` controllers share. Leases and fencing tokens live in the
// database and expire by its clock (now()), never by a controller's, and
// LISTEN/NOTIFY wakes controllers when a lease frees or a deployment is
// queued.
//
// Concurrency model: transactions run at READ COMMITTED and serialize
// where it matters with row locks, always taken in the same order — the
// lease row, then the app row, then deployment rows — so they cannot
// deadlock. Enqueue locks the app row (one policy decision per app at a
// time); every fenced write locks the lease row FOR SHARE while it checks
// the token, so a new holder cannot take the lease between the check and
// the write.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is a baton.Store backed by a PostgreSQL database.
type DB struct {
	pool *pgxpool.Pool

	// ctx ends when Close is called; listeners derive from it.
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex // guards closed and wg.Add
	closed bool
	wg     sync.WaitGroup // listener goroutines
}

var _ baton.Store = (*DB)(nil)

// Open connects to the database named by dsn (a postgres:// URL or a
// key=value string, as libpq takes; pool settings such as pool_max_conns
// go in it too) and applies the embedded migrations. Several controllers
// may Open the same empty database at once.
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	s := &DB{pool: pool}
	// The store outlives Open's context: it is stopped by Close.
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := s.migrate(ctx); err != nil {
		s.cancel()
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close stops the listeners, waits for them, and closes the connections.
func (s *DB) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.pool.Close()
	return nil
}

// Ping checks the database answers.
func (s *DB) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Clock returns the database's current time, the clock every lease and
// timestamp of this store is measured by. Controllers on other hosts use it
// instead of their own clock to judge an expiry.
func (s *DB) Clock(ctx context.Context) (time.Time, error) {
	var now time.Time
	err := s.pool.QueryRow(ctx, `SELECT now()`).Scan(&now)
	return now.UTC(), err
}

// querier is what a pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// scanner is a pgx.Row or pgx.Rows.
type scanner interface{ Scan(dest ...any) error }

// maxAttempts bounds the retries of a transaction the database aborted to
// break a deadlock or a serialization conflict.
const maxAttempts = 5

// tx runs fn in one transaction, committing when it returns nil. fn may run
// more than once (after a deadlock or serialization failure), so it must
// set its results rather than append to them.
func (s *DB) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, s.pool, fn)
		if attempt < maxAttempts && retryable(err) {
			continue
		}
		return err
	}
}

// retryable reports whether err aborted a transaction that can simply be
// run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01") // serialization_failure, deadlock_detected
}

// isForeignKeyViolation reports whether err is a foreign key violation.
func isForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// notFound converts pgx.ErrNoRows to a baton ENOTFOUND error.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return baton.Errorf(baton.ENOTFOUND, format, args...)
	}
	return err
}

// micros is how a duration travels to SQL: `$n::bigint * interval '1 microsecond'`.
func micros(d time.Duration) int64 { return d.Microseconds() }

// utc returns times in UTC, as the SQLite store does, whatever the session's
// time zone.
func utc(t *time.Time) {
	if t != nil {
		*t = t.UTC()
	}
}
