// Package sqlite implements baton.Store on an embedded SQLite database
// (pure Go, no cgo), in WAL mode, with migrations embedded in the binary.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a baton.Store backed by one SQLite file.
type DB struct {
	db *sql.DB
	// rdb is a pool of read-only connections for reads outside a
	// transaction: in WAL mode they read the last commit without waiting
	// for the writer's one connection (a deployment's phase writes, a
	// registration), so status and lists are not queued behind writes.
	rdb *sql.DB
	// path is the database file, for Snapshot's own connection.
	path string
	// catalog is the last list of every app read (catalog.go).
	catalog catalog
	// Now is the clock used for lease expiry and timestamps; tests pin it.
	Now func() time.Time
}

var _ baton.Store = (*DB)(nil)

// Open opens (creating if needed) the database at path and migrates it.
func Open(ctx context.Context, path string) (*DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	rq := url.Values{}
	rq.Add("_pragma", "busy_timeout(10000)")
	rq.Add("_pragma", "query_only(1)")
	q.Set("_txlock", "immediate")
	db, err := openPool("file:" + path + "?" + q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	// One connection: SQLite has one writer anyway, and a single connection
	// turns lock contention into Go-level queueing instead of SQLITE_BUSY.
	db.SetMaxOpenConns(1)
	s := &DB{db: db, path: path, Now: time.Now}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	// The readers open after the migration, once the file is in WAL mode
	// (a connection's journal mode is the file's). Deferred transactions:
	// a read transaction takes no write lock.
	if s.rdb, err = openPool("file:" + path + "?" + rq.Encode()); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite readers: %w", err)
	}
	s.rdb.SetMaxOpenConns(readConns)
	s.rdb.SetMaxIdleConns(readConns)
	return s, nil
}

// openPool opens a pool of connections to the database at dsn that keep
// the statements they run prepared (stmtcache.go).
func openPool(dsn string) (*sql.DB, error) {
	c, err := newCachingConnector(dsn)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// readConns is the size of the read pool: enough for a few concurrent API
// reads on a small machine; more would only queue on the CPUs.
const readConns = 4

// Close closes the database.
func (s *DB) Close() error { return errors.Join(s.rdb.Close(), s.db.Close()) }

// readTx runs fn in one read transaction on the read pool: every query in
// it sees the same commit.
func (s *DB) readTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}

// Ping checks the database answers.
func (s *DB) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func (s *DB) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var applied sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&applied); err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	if known := SchemaVersion(); int(applied.Int64) > known {
		return fmt.Errorf("the store is of schema %d, newer than this baton knows (schema %d): a newer baton migrated it; run that version or a newer one (`baton version` says which schema a binary knows)", applied.Int64, known)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with a number", name)
		}
		err = s.tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, s.now())
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
	}
	return nil
}

// tx runs fn in one transaction, committing when it returns nil.
func (s *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// now returns the store clock in unix microseconds, the stored time format.
func (s *DB) now() int64 { return s.Now().UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func fromNullMicros(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromMicros(n.Int64)
	return &t
}

// notFound converts sql.ErrNoRows to a baton ENOTFOUND error.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return baton.Errorf(baton.ENOTFOUND, format, args...)
	}
	return err
}
