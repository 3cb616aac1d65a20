// Package pgtest gives tests a fresh PostgreSQL database on the server that
// test.sh starts (BATON_TEST_POSTGRES).
package pgtest

import (
	"context"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/batonhq/baton"
)

// NoServer is the failure message when no test server is configured.
const NoServer = "BATON_TEST_POSTGRES is not set: run the tests with ./test.sh, or start a server first with: eval \"$(scripts/postgres.sh start)\""

// ServerDSN is the server the tests create their databases on.
func ServerDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("BATON_TEST_POSTGRES")
	if dsn == "" {
		t.Fatal(NoServer)
	}
	return dsn
}

// NewDatabase creates an empty database with a random name on the test
// server, drops it when the test ends, and returns its DSN.
func NewDatabase(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	server := ServerDSN(t)
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
	// FILE_COPY (PostgreSQL 15 and later) copies the template's files (the server runs with fsync
	// off): half the server's CPU time of the default, which writes every
	// page of the template to the WAL.
	admin(`CREATE DATABASE ` + name + ` STRATEGY FILE_COPY`)
	t.Cleanup(func() { admin(`DROP DATABASE ` + name + ` WITH (FORCE)`) })
	u.Path = "/" + name
	return u.String()
}
