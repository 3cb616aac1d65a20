package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/postgres"
	"github.com/batonhq/baton/storetest"
	"github.com/jackc/pgx/v5"
)

// noServer is why the tests fail, once, when no server is configured.
// They never skip: a store that is not tested does not work.
const noServer = `BATON_TEST_POSTGRES is not set: the PostgreSQL store is tested against a real server. ` +
	`Run ./test.sh, which starts one, or start one yourself with eval "$(scripts/postgres.sh start)" ` +
	`(from the repository root) and run the tests again`

func TestMain(m *testing.M) {
	if os.Getenv("BATON_TEST_POSTGRES") == "" {
		fmt.Fprintln(os.Stderr, "FAIL: "+noServer)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// serverDSN is the server the tests create their databases on.
func serverDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("BATON_TEST_POSTGRES")
	if dsn == "" {
		t.Fatal(noServer)
	}
	return dsn
}

// newDatabase creates an empty database with a random name on the test
// server, drops it when the test ends, and returns its DSN.
func newDatabase(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	server := serverDSN(t)
	u, err := url.Parse(server)
	if err != nil || u.Scheme == "" {
		t.Fatalf("BATON_TEST_POSTGRES=%q is not a postgres:// URL", server)
	}
	name := "baton_test_" + baton.NewID("")
	admin := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	admin(`CREATE DATABASE ` + name)
	t.Cleanup(func() { admin(`DROP DATABASE ` + name + ` WITH (FORCE)`) })
	u.Path = "/" + name
	return u.String()
}

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
