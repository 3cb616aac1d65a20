package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrateLock is the advisory lock key under which migrations run ("baton"
// in ASCII). Advisory locks are per database, so stores in other databases
// of the same server do not wait for each other.
const migrateLock int64 = 0x6261746f6e

// migrate applies the embedded migrations that schema_migrations does not
// list, all in one transaction under a transaction-level advisory lock: a
// second controller starting at the same moment waits, then finds nothing
// left to do. The lock is released by commit or rollback, so a controller
// that dies while migrating leaves neither a lock nor half a schema.
func (s *DB) migrate(ctx context.Context) error {
	type migration struct {
		version int64
		name    string
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	var all []migration
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		v, err := strconv.ParseInt(strings.SplitN(base, "_", 2)[0], 10, 64)
		if err != nil {
			return fmt.Errorf("migration %s: name must start with a number", base)
		}
		all = append(all, migration{v, name})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].version < all[j].version })

	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
			return fmt.Errorf("take the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version BIGINT PRIMARY KEY,
			name TEXT NOT NULL,
			applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		done := map[int64]bool{}
		for _, v := range applied {
			done[v] = true
		}
		// A database a newer baton migrated has tables this one does not
		// know how to keep consistent: refuse rather than run on it.
		if newest, known := slices.Max(append(applied, 0)), all[len(all)-1].version; newest > known {
			return fmt.Errorf("the store is of schema %d, newer than this baton knows (schema %d): a newer baton migrated it; run that version or a newer one (`baton version` says which schema a binary knows)", newest, known)
		}
		for _, m := range all {
			if done[m.version] {
				continue
			}
			body, err := migrations.ReadFile(m.name)
			if err != nil {
				return err
			}
			// Without arguments pgx uses the simple protocol, which runs
			// a file of several statements.
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			base := strings.TrimPrefix(m.name, "migrations/")
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, base); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
	}
	return nil
}
