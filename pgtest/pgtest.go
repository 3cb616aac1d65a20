// Package pgtest gives tests a fresh PostgreSQL database on the server that
// test.sh starts (BATON_TEST_POSTGRES).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
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
	return NewDatabaseFrom(t, "")
}

// NewDatabaseFrom is NewDatabase for a copy of the database template (a
// name from Template; "" is PostgreSQL's own empty template).
func NewDatabaseFrom(t testing.TB, template string) string {
	t.Helper()
	dsn, drop, err := create(ServerDSN(t), template)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Error(err)
		}
	})
	return dsn
}

// Template creates a database with a random name on the test server, has
// fill prepare it (migrate a store, say) through its DSN, and returns its
// name for NewDatabaseFrom, and drop, which removes it. Copying a
// migrated database is cheaper for the server than migrating each new
// one.
func Template(fill func(dsn string) error) (name string, drop func() error, err error) {
	server := os.Getenv("BATON_TEST_POSTGRES")
	if server == "" {
		return "", nil, errors.New(NoServer)
	}
	dsn, drop, err := create(server, "")
	if err != nil {
		return "", nil, err
	}
	if err := fill(dsn); err != nil {
		return "", nil, errors.Join(err, drop())
	}
	u, _ := url.Parse(dsn)
	return strings.TrimPrefix(u.Path, "/"), drop, nil
}

// create makes a database with a random name on server, a copy of
// template, and returns its DSN and how to drop it.
func create(server, template string) (dsn string, drop func() error, err error) {
	ctx := context.Background()
	u, err := url.Parse(server)
	if err != nil || u.Scheme == "" {
		return "", nil, fmt.Errorf("BATON_TEST_POSTGRES=%q is not a postgres:// URL", server)
	}
	name := "baton_test_" + baton.NewID("")
	admin := func(sql string) error {
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	// FILE_COPY (PostgreSQL 15 and later) copies the template's files (the server runs with fsync
	// off): half the server's CPU time of the default, which writes every
	// page of the template to the WAL.
	sql := `CREATE DATABASE ` + name + ` STRATEGY FILE_COPY`
	if template != "" {
		sql += ` TEMPLATE ` + template
	}
	if err := admin(sql); err != nil {
		return "", nil, fmt.Errorf("%s: %w", sql, err)
	}
	u.Path = "/" + name
	return u.String(), func() error { return admin(`DROP DATABASE ` + name + ` WITH (FORCE)`) }, nil
}
