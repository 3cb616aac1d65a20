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
	os.Exit(m.Run())
}

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

// open returns a store on a fresh database.
func open(t testing.TB) *postgres.DB { return openDSN(t, newDatabase(t)) }

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
