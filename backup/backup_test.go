package backup_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/artifact"
	"github.com/batonhq/baton/backup"
	"github.com/batonhq/baton/secretstore"
	"github.com/batonhq/baton/sqlite"
)

// fixture is a data directory with a store, two artifacts (one used by a
// revision, one not) and a secret key.
type fixture struct {
	dir           string
	db            *sqlite.DB
	used, unused  string
	keyFile       string
	key           []byte
	artifactStore *artifact.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{dir: t.TempDir()}
	var err error
	if f.db, err = sqlite.Open(ctx, filepath.Join(f.dir, "baton.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.db.Close() })
	if _, err := f.db.CreateApp(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if f.artifactStore, err = artifact.NewStore(filepath.Join(f.dir, "artifacts")); err != nil {
		t.Fatal(err)
	}
	if f.used, _, err = f.artifactStore.Put(strings.NewReader("the used artifact"), 0); err != nil {
		t.Fatal(err)
	}
	if f.unused, _, err = f.artifactStore.Put(strings.NewReader("an artifact nothing needs"), 0); err != nil {
		t.Fatal(err)
	}
	// A revision row naming the used artifact, written as a second
	// connection would (the store makes revisions only through deployments).
	raw, err := sql.Open("sqlite", filepath.Join(f.dir, "baton.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`INSERT INTO revisions (name, app, number, slot, deployment, artifact_digest, created_at)
		VALUES ('hello--000001', 'hello', 1, 'production', 'd-1', ?, 0)`, f.used); err != nil {
		t.Fatal(err)
	}
	f.keyFile = filepath.Join(f.dir, "secret.key")
	if f.key, _, err = secretstore.LoadOrCreateKey(f.keyFile); err != nil {
		t.Fatal(err)
	}
	// A secret setting, sealed with the key.
	lease, err := f.db.AcquireLease(ctx, "app:hello", "test", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := secretstore.New(f.db, f.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := sealed.PutSetting(ctx, baton.Fence{Key: lease.Key, Token: lease.Token},
		baton.Setting{App: "hello", Slot: baton.ProductionSlot, Key: "DB_PASSWORD", Value: "pw", Secret: true}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) source(includeKey bool) backup.Source {
	return backup.Source{Snapshot: f.db.Snapshot, ArtifactDir: filepath.Join(f.dir, "artifacts"), KeyFile: f.keyFile,
		IncludeKey: includeKey, TempDir: filepath.Join(f.dir, "tmp"), Version: "test"}
}

func (f *fixture) archive(t *testing.T, includeKey bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := backup.Write(context.Background(), &buf, f.source(includeKey)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func restore(archive []byte, o backup.RestoreOptions) (backup.Manifest, error) {
	return backup.Restore(context.Background(), bytes.NewReader(archive), o)
}

// leftovers lists what is in parent besides keep.
func leftovers(t *testing.T, parent string, keep ...string) []string {
	t.Helper()
	des, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
outer:
	for _, de := range des {
		for _, k := range keep {
			if de.Name() == k {
				continue outer
			}
		}
		out = append(out, de.Name())
	}
	return out
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	f := newFixture(t)
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	m, err := restore(f.archive(t, true), backup.RestoreOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if m.Store != "sqlite" || m.SchemaVersion != sqlite.SchemaVersion() || !m.KeyIncluded || m.Artifacts() != 1 {
		t.Errorf("manifest: %+v", m)
	}
	if _, err := os.Stat(filepath.Join(dir, "artifacts", "sha256", f.used)); err != nil {
		t.Errorf("the used artifact was not restored: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "artifacts", "sha256", f.unused)); err == nil {
		t.Error("an artifact no revision needs was backed up")
	}
	key, created, err := secretstore.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
	if err != nil || created || !bytes.Equal(key, f.key) {
		t.Errorf("restored key: created %v, equal %v, err %v", created, bytes.Equal(key, f.key), err)
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.App(context.Background(), "hello"); err != nil {
		t.Errorf("restored store lacks the app: %v", err)
	}
	if l := leftovers(t, parent, "data"); len(l) > 0 {
		t.Errorf("restore left %v beside the data directory", l)
	}
}

func TestRestoreRefusesNonEmptyDir(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "baton.db"), []byte("someone's"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := restore(f.archive(t, true), backup.RestoreOptions{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Fatalf("restore into a non-empty folder: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "baton.db")); string(b) != "someone's" {
		t.Error("restore changed the folder it refused")
	}
	// An empty folder is fine.
	empty := t.TempDir()
	if _, err := restore(f.archive(t, true), backup.RestoreOptions{DataDir: empty}); err != nil {
		t.Fatalf("restore into an empty folder: %v", err)
	}
}

func TestRestoreRefusesNewerSchema(t *testing.T) {
	f := newFixture(t)
	parent := t.TempDir()
	older := sqlite.SchemaVersion() - 1
	_, err := restore(f.archive(t, true), backup.RestoreOptions{DataDir: filepath.Join(parent, "data"), SchemaVersion: older})
	if err == nil {
		t.Fatal("an older baton restored a backup of a newer schema")
	}
	for _, want := range []string{"schema " + strconv.Itoa(sqlite.SchemaVersion()), "schema " + strconv.Itoa(older), "baton test"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if l := leftovers(t, parent); len(l) > 0 {
		t.Errorf("a refused restore left %v", l)
	}
}

// TestRestoreDamagedLeavesNothing: a cut archive, and archives with one
// byte changed at several places, are refused and leave nothing behind.
func TestRestoreDamagedLeavesNothing(t *testing.T) {
	f := newFixture(t)
	good := f.archive(t, true)
	cases := map[string][]byte{"cut in half": good[:len(good)/2], "cut before the end": good[:len(good)-4], "empty": nil}
	for _, at := range []int{20, len(good) / 3, len(good) / 2, len(good) - 20} {
		bad := bytes.Clone(good)
		bad[at] ^= 0x55
		cases["byte "+strconv.Itoa(at)+" changed"] = bad
	}
	for name, archive := range cases {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			if _, err := restore(archive, backup.RestoreOptions{DataDir: filepath.Join(parent, "data")}); err == nil {
				t.Fatal("a damaged archive was restored")
			}
			if l := leftovers(t, parent); len(l) > 0 {
				t.Errorf("a failed restore left %v", l)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "cut.tar.gz")
	if err := os.WriteFile(path, good[:len(good)-4], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.ReadManifest(path); err == nil {
		t.Error("ReadManifest accepted a cut archive")
	}
}

func TestRestoreWithoutKeyNeedsKeyFile(t *testing.T) {
	f := newFixture(t)
	archive := f.archive(t, false)
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	_, err := restore(archive, backup.RestoreOptions{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "--key") {
		t.Fatalf("restore without a key: %v", err)
	}
	if l := leftovers(t, parent); len(l) > 0 {
		t.Errorf("a refused restore left %v", l)
	}
	if _, err := restore(archive, backup.RestoreOptions{DataDir: dir, KeyFile: f.keyFile}); err != nil {
		t.Fatal(err)
	}
	key, created, err := secretstore.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
	if err != nil || created || !bytes.Equal(key, f.key) {
		t.Errorf("key from --key: created %v, equal %v, err %v", created, bytes.Equal(key, f.key), err)
	}
	other := filepath.Join(parent, "nokey")
	if _, err := restore(archive, backup.RestoreOptions{DataDir: other, NoKey: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(other, "secret.key")); err == nil {
		t.Error("--no-key restored a key")
	}
	if _, err := restore(f.archive(t, true), backup.RestoreOptions{DataDir: filepath.Join(parent, "both"), KeyFile: f.keyFile}); err == nil {
		t.Error("--key was taken for a backup that holds its own key")
	}
	// A key file of another baton is refused before anything is written.
	wrong := filepath.Join(t.TempDir(), "other.key")
	if _, _, err := secretstore.LoadOrCreateKey(wrong); err != nil {
		t.Fatal(err)
	}
	_, err = restore(archive, backup.RestoreOptions{DataDir: filepath.Join(parent, "wrong"), KeyFile: wrong})
	if err == nil || !strings.Contains(err.Error(), "does not open the secret settings") {
		t.Errorf("restore with another baton's key: %v", err)
	}
	if l := leftovers(t, parent, "data", "nokey", "both"); len(l) > 0 {
		t.Errorf("a refused restore left %v", l)
	}
}

// TestPostgresArchive: without a snapshot (PostgreSQL), the archive holds
// every stored artifact and the note, and no database.
func TestPostgresArchive(t *testing.T) {
	f := newFixture(t)
	src := f.source(false)
	src.Snapshot = nil
	var buf bytes.Buffer
	m, err := backup.Write(context.Background(), &buf, src)
	if err != nil {
		t.Fatal(err)
	}
	if m.Store != "postgres" || m.Artifacts() != 2 {
		t.Errorf("manifest: %+v", m)
	}
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := restore(buf.Bytes(), backup.RestoreOptions{DataDir: dir, KeyFile: f.keyFile}); err != nil {
		t.Fatal(err)
	}
	note, err := os.ReadFile(filepath.Join(dir, backup.PostgresNote))
	if err != nil || !strings.Contains(string(note), "pg_dump") {
		t.Errorf("note: %q, %v", note, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "baton.db")); err == nil {
		t.Error("a PostgreSQL backup restored a SQLite database")
	}
}

// TestRestoreStoreNeedsDump: --store is refused, before anything is
// written, for a SQLite backup and for a PostgreSQL one without a dump.
func TestRestoreStoreNeedsDump(t *testing.T) {
	f := newFixture(t)
	parent := t.TempDir()
	dsn := "postgres://baton@127.0.0.1:1/new"
	_, err := restore(f.archive(t, true), backup.RestoreOptions{DataDir: filepath.Join(parent, "a"), Store: dsn})
	if err == nil || !strings.Contains(err.Error(), "SQLite store") {
		t.Errorf("restore --store of a SQLite backup: %v", err)
	}
	src := f.source(true)
	src.Snapshot = nil
	var buf bytes.Buffer
	if _, err := backup.Write(context.Background(), &buf, src); err != nil {
		t.Fatal(err)
	}
	_, err = restore(buf.Bytes(), backup.RestoreOptions{DataDir: filepath.Join(parent, "b"), Store: dsn})
	if err == nil || !strings.Contains(err.Error(), "--store-dump") {
		t.Errorf("restore --store of a backup without a dump: %v", err)
	}
	if l := leftovers(t, parent); len(l) > 0 {
		t.Errorf("a refused restore left %v", l)
	}
}
