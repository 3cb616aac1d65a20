// Package sqlitetest gives tests a fresh SQLite store file that is already
// migrated, without migrating it again for every test.
package sqlitetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/batonhq/baton/sqlite"
)

// migrated holds the bytes of an empty store that every migration has run
// on: migrating a new SQLite file takes ~0.2 CPU-seconds under the race
// detector, and the store contract opens one per subtest. The tests of
// the migrations themselves open new files and start from empty.
var migrated struct {
	once sync.Once
	db   []byte
	err  error
}

// Path writes a copy of a migrated, empty store into a new temporary
// folder of t's and returns its path, for sqlite.Open.
func Path(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "baton.db")
	Copy(t, path)
	return path
}

// Copy writes a migrated, empty store to path (a new file).
func Copy(t testing.TB, path string) {
	t.Helper()
	migrated.once.Do(func() {
		dir, err := os.MkdirTemp("", "baton-sqlitetest-")
		if err != nil {
			migrated.err = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "baton.db")
		db, err := sqlite.Open(context.Background(), path)
		if err != nil {
			migrated.err = err
			return
		}
		// Closing checkpoints the write-ahead log into the main file,
		// the only one copied.
		if err := db.Close(); err != nil {
			migrated.err = err
			return
		}
		migrated.db, migrated.err = os.ReadFile(path)
	})
	if migrated.err != nil {
		t.Fatalf("migrate the store tests copy: %v", migrated.err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, err = f.Write(migrated.db)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Open opens a copy of a migrated, empty store, closed when t ends.
func Open(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), Path(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
