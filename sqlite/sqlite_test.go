package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/sqlitetest"
	"github.com/batonhq/baton/sqlite"
	"github.com/batonhq/baton/storetest"
)

// open opens a copy of a migrated store: the contract's subtests test the
// store, not the migrations (TestReopenKeepsData and migrate_test.go start
// from empty files).
func open(t testing.TB) baton.Store { return sqlitetest.Open(t) }

func TestContract(t *testing.T) { storetest.Run(t, open) }

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "baton.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateApp(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = sqlite.Open(ctx, path) // migrations run again: must be a no-op
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.App(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
}

// TestCertStorage: certmagic's storage semantics over two handles of one
// database file, as two processes would have.
func TestCertStorage(t *testing.T) {
	storetest.RunCertStorage(t, func(t testing.TB) (baton.Store, baton.Store) {
		path := filepath.Join(t.TempDir(), "baton.db")
		var two [2]baton.Store
		for i := range two {
			db, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			two[i] = db
		}
		return two[0], two[1]
	})
}
