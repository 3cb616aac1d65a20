package postgres_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/testparallel"
	"github.com/batonhq/baton/pgtest"
	"github.com/batonhq/baton/postgres"
	"github.com/batonhq/baton/storetest"
)

func TestMain(m *testing.M) {
	// The tests spend their time waiting on the server (a database
	// created per test, migrations, round trips), not on this process's
	// CPU: unless -parallel is given, run more of them at once than
	// GOMAXPROCS (the contract's 50-odd subtests took 45 s two at a time).
	testparallel.Default(8)
	if os.Getenv("BATON_TEST_POSTGRES") == "" {
		fmt.Fprintln(os.Stderr, "FAIL: "+pgtest.NoServer)
		os.Exit(1)
	}
	// The store contract's stores start from a copy of one migrated
	// database; the migration tests still start from empty ones.
	name, drop, err := pgtest.Template(func(dsn string) error {
		db, err := postgres.Open(context.Background(), dsn)
		if err == nil {
			db.Close()
		}
		return err
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: migrate the database the tests copy:", err)
		os.Exit(1)
	}
	migrated = name
	code := m.Run()
	if err := drop(); err != nil {
		fmt.Fprintln(os.Stderr, "drop the migrated template:", err)
	}
	os.Exit(code)
}

// migrated is a migrated, empty database the stores of open copy.
var migrated string

// newDatabase creates an empty database on the test server for one test.
func newDatabase(t testing.TB) string { return pgtest.NewDatabase(t) }

// openDSN opens the store at dsn and closes it when the test ends.
func openDSN(t testing.TB, dsn string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// open returns a store on a fresh database (a copy of a migrated one).
func open(t testing.TB) *postgres.DB { return openDSN(t, pgtest.NewDatabaseFrom(t, migrated)) }

func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t testing.TB) baton.Store { return open(t) })
}

func BenchmarkLeases(b *testing.B) {
	storetest.BenchmarkLeases(b, func(t testing.TB) baton.Store { return open(t) })
}

// TestCertStorage: certmagic's storage semantics over two connections to
// one database, as two controllers have.
func TestCertStorage(t *testing.T) {
	storetest.RunCertStorage(t, func(t testing.TB) (baton.Store, baton.Store) {
		dsn := newDatabase(t)
		return openDSN(t, dsn), openDSN(t, dsn)
	})
}
