package secretstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/sqlitetest"
	"github.com/batonhq/baton/secretstore"
	"github.com/batonhq/baton/sqlite"
	"github.com/batonhq/baton/storetest"
)

const secretValue = "hunter2-correct-horse-battery-staple"

func key(t testing.TB, path string) []byte {
	t.Helper()
	k, _, err := secretstore.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func wrap(t testing.TB, dir string) (*secretstore.Store, string) {
	t.Helper()
	// A copy of a migrated store, unless another wrap of dir made it.
	path := filepath.Join(dir, "baton.db")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		sqlitetest.Copy(t, path)
	}
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := secretstore.New(db, key(t, filepath.Join(dir, "secret.key")))
	if err != nil {
		t.Fatal(err)
	}
	return s, path
}

// TestContract: the wrapper is a Store like any other.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t testing.TB) baton.Store {
		s, _ := wrap(t, t.TempDir())
		return s
	})
}

// TestSecretsSealedAtRest sets a secret through every path that keeps it
// (setting, revision environment, settings operation) and then finds it
// nowhere in the database files, while the coordinator's reads get it back.
func TestSecretsSealedAtRest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, dbPath := wrap(t, dir)
	if _, err := s.CreateApp(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	ch := baton.SettingsChange{Set: []baton.Setting{
		{Key: "DB_PASSWORD", Value: secretValue, Secret: true},
		{Key: "GREETING", Value: "hi"},
	}}
	res, err := s.Enqueue(ctx, baton.EnqueueRequest{Deployment: baton.Deployment{
		ID: baton.NewID("d-"), App: "hello", Slot: baton.ProductionSlot, Kind: baton.KindConfig,
		Params: mustJSON(t, ch), Policy: baton.PolicyQueue,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(res.Deployment.Params, secretValue) || !strings.Contains(res.Deployment.Params, baton.SecretMask) {
		t.Fatalf("Enqueue answered params %s, want the secret masked", res.Deployment.Params)
	}
	l, err := s.AcquireLease(ctx, baton.AppLeaseKey("hello"), res.Deployment.ID, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	f := baton.Fence{Key: l.Key, Token: l.Token}
	started, err := s.StartDeployment(ctx, f, res.Deployment.ID)
	if err != nil || !strings.Contains(started.Params, secretValue) {
		t.Fatalf("StartDeployment = %s, %v; want the params open for the coordinator", started.Params, err)
	}
	for _, st := range ch.Set {
		st.App, st.Slot = "hello", baton.ProductionSlot
		if err := s.PutSetting(ctx, f, st); err != nil {
			t.Fatal(err)
		}
	}
	ss, err := s.Settings(ctx, "hello", baton.ProductionSlot)
	if err != nil || len(ss) != 2 {
		t.Fatalf("Settings = %+v, %v", ss, err)
	}
	for _, st := range ss {
		if st.Key == "DB_PASSWORD" && st.Value != secretValue {
			t.Fatalf("Settings opened %q, want the secret", st.Value)
		}
	}
	rev, err := s.CreateRevision(ctx, f, baton.Revision{App: "hello", Slot: baton.ProductionSlot, Deployment: started.ID,
		Env: map[string]string{"DB_PASSWORD": secretValue, "GREETING": "hi"}})
	if err != nil || rev.Env["DB_PASSWORD"] != secretValue {
		t.Fatalf("CreateRevision = %+v, %v", rev, err)
	}
	if got, err := s.Revision(ctx, rev.Name); err != nil || got.Env["DB_PASSWORD"] != secretValue || got.Env["GREETING"] != "hi" {
		t.Fatalf("Revision env = %v, %v", got.Env, err)
	}
	if rs, err := s.Revisions(ctx, "hello"); err != nil || rs[0].Env["DB_PASSWORD"] != secretValue {
		t.Fatalf("Revisions = %+v, %v", rs, err)
	}
	if d, err := s.Deployment(ctx, started.ID); err != nil || strings.Contains(d.Params, secretValue) {
		t.Fatalf("Deployment params = %s, %v; want the secret masked", d.Params, err)
	}
	ds, err := s.Deployments(ctx, baton.DeploymentFilter{App: "hello"})
	if err != nil || len(ds) != 1 || strings.Contains(ds[0].Params, secretValue) {
		t.Fatalf("Deployments = %+v, %v", ds, err)
	}
	if err := s.FinishDeployment(ctx, f, started.ID, baton.StateSucceeded, ""); err != nil {
		t.Fatal(err)
	}

	// The plain value is in the raw store nowhere, sealed or not.
	raw, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rawSettings, _ := raw.Settings(ctx, "hello", baton.ProductionSlot)
	for _, st := range rawSettings {
		if st.Key == "DB_PASSWORD" && !secretstore.Sealed(st.Value) {
			t.Fatalf("stored setting %q is not sealed", st.Value)
		}
		if st.Key == "GREETING" && st.Value != "hi" {
			t.Fatalf("a plain setting was changed: %q", st.Value)
		}
	}
	grepFiles(t, dir, secretValue)
}

// TestWrongKey: a store opened with another key refuses to hand out the
// secret instead of handing out garbage.
func TestWrongKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, dbPath := wrap(t, dir)
	if _, err := s.CreateApp(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	l, err := s.AcquireLease(ctx, baton.AppLeaseKey("hello"), "test", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	f := baton.Fence{Key: l.Key, Token: l.Token}
	if err := s.PutSetting(ctx, f, baton.Setting{App: "hello", Slot: baton.ProductionSlot, Key: "K", Value: secretValue, Secret: true}); err != nil {
		t.Fatal(err)
	}
	raw, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	other, err := secretstore.New(raw, key(t, filepath.Join(t.TempDir(), "other.key")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.Settings(ctx, "hello", baton.ProductionSlot)
	if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), "cannot be decrypted") {
		t.Fatalf("Settings with another key = %v", err)
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	k1, created, err := secretstore.LoadOrCreateKey(path)
	if err != nil || !created || len(k1) != secretstore.KeySize {
		t.Fatalf("create: %d bytes, created %v, %v", len(k1), created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	k2, created, err := secretstore.LoadOrCreateKey(path)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("reload: created %v, same %v, %v", created, bytes.Equal(k1, k2), err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := secretstore.LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key accepted: %v", err)
	}
}

// grepFiles fails if any file under dir contains s.
func grepFiles(t testing.TB, dir, s string) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("%s holds the secret in plain text", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCertStorage: certmagic's storage semantics through the wrapper, and
// private keys sealed at rest: the database file never holds them.
func TestCertStorage(t *testing.T) {
	dir := t.TempDir()
	var path string
	storetest.RunCertStorage(t, func(t testing.TB) (baton.Store, baton.Store) {
		a, p := wrap(t, dir)
		b, _ := wrap(t, dir)
		path = p
		return a, b
	})
	t.Run("sealed", func(t *testing.T) {
		s, _ := wrap(t, dir)
		ctx := context.Background()
		secret := "-----BEGIN EC PRIVATE KEY----- very secret"
		if err := s.PutCert(ctx, "certificates/ca/n/n.key", []byte(secret)); err != nil {
			t.Fatal(err)
		}
		if e, err := s.Cert(ctx, "certificates/ca/n/n.key"); err != nil || string(e.Value) != secret {
			t.Fatalf("read back %q %v", e.Value, err)
		}
		for _, f := range []string{path, path + "-wal"} {
			if b, _ := os.ReadFile(f); bytes.Contains(b, []byte("very secret")) {
				t.Fatalf("%s holds the private key in plain text", f)
			}
		}
		// Another key file (a controller set up apart) cannot open it, and says why.
		raw, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		other, err := secretstore.New(raw, key(t, filepath.Join(t.TempDir(), "other.key")))
		if err != nil {
			t.Fatal(err)
		}
		_, err = other.Cert(ctx, "certificates/ca/n/n.key")
		if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), "--secret-key") {
			t.Fatalf("a private key under another key: %v", err)
		}
		if _, err := other.Cert(ctx, "certificates/x/never.key"); baton.ErrorCode(err) != baton.ENOTFOUND {
			t.Fatalf("a missing key: %v, want ENOTFOUND", err)
		}
	})
}

// TestHookSecretSealedAtRest: a webhook's signing secret is sealed in the
// database and opened for the dispatcher's reads.
func TestHookSecretSealedAtRest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, dbPath := wrap(t, dir)
	created, err := s.CreateHook(ctx, baton.Hook{ID: "h-1", URL: "https://ci.example/hook", Secret: secretValue})
	if err != nil || created.Secret != secretValue || !created.Signed {
		t.Fatalf("CreateHook = %+v, %v", created, err)
	}
	if h, err := s.Hook(ctx, "h-1"); err != nil || h.Secret != secretValue {
		t.Fatalf("Hook = %+v, %v; want the secret open", h, err)
	}
	if hs, err := s.Hooks(ctx); err != nil || len(hs) != 1 || hs[0].Secret != secretValue {
		t.Fatalf("Hooks = %+v, %v", hs, err)
	}
	raw, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if h, err := raw.Hook(ctx, "h-1"); err != nil || !secretstore.Sealed(h.Secret) {
		t.Fatalf("stored hook secret %q (%v) is not sealed", h.Secret, err)
	}
	grepFiles(t, dir, secretValue)
}
