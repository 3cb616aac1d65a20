package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/pgtest"
)

// TestReleaseMigratesRealPostgres: two apps whose release steps run a real
// migration (psql) against the same PostgreSQL database, declared as the
// shared resource postgres:main, migrate one after the other.
func TestReleaseMigratesRealPostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	// The migration is a script in the artifact, as a real app ships it.
	migration := `psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -q \
  -c "CREATE TABLE IF NOT EXISTS migrations (app text, started timestamptz, ended timestamptz)" \
  -c "INSERT INTO migrations (app, started) VALUES ('$BATON_APP', clock_timestamp())" \
  -c "SELECT pg_sleep(0.3)" \
  -c "UPDATE migrations SET ended = clock_timestamp() WHERE app = '$BATON_APP' AND ended IS NULL"
`
	withScript := func(dir string) {
		if err := os.WriteFile(filepath.Join(dir, "migrate.sh"), []byte(migration), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for _, app := range []string{"pg1", "pg2"} {
		if _, err := c.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
		d, err := c.SetSettings(ctx, app, baton.ProductionSlot, []baton.Setting{{Key: "DATABASE_URL", Value: dsn, Secret: true}}, "")
		if err != nil {
			t.Fatal(err)
		}
		waitFinal(t, c, d.ID)
	}
	for _, app := range []string{"pg1", "pg2"} {
		ids = append(ids, deploy(t, c, app, appDir(t, "v1", withScript, withRelease("sh migrate.sh", "postgres:main")), api.DeployOptions{}).ID)
	}
	for _, id := range ids {
		if d := waitFinal(t, c, id); d.State != baton.StateSucceeded {
			log, _ := c.Log(ctx, id)
			t.Fatalf("%s: %s %s\n%s", id, d.State, d.Error, log)
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT app, started, ended FROM migrations ORDER BY started`)
	if err != nil {
		t.Fatal(err)
	}
	type run struct {
		app          string
		start, ended time.Time
	}
	var runs []run
	for rows.Next() {
		var r run
		if err := rows.Scan(&r.app, &r.start, &r.ended); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	if len(runs) != 2 || runs[0].app == runs[1].app {
		t.Fatalf("migrations recorded: %+v", runs)
	}
	if runs[1].start.Before(runs[0].ended) {
		t.Fatalf("migrations overlapped: %+v", runs)
	}
	noLocks(t, c)
}
