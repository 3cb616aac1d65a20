package artifact

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writeTree(tb testing.TB, root string, files map[string]string) {
	tb.Helper()
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

func TestPackExtractRoundTrip(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"index.js":             "console.log(1)",
		"bin/start":            "#!/bin/sh\n",
		"public/css/site.css":  "body{}",
		".git/HEAD":            "ref: refs/heads/main",
		"vendor/lib/.git":      "gitdir: ../../.git/modules/lib",
		"vendor/lib/lib.js":    "x",
		"baton-data/baton.db":  "secret",
		"nested/baton-data/ok": "kept: only the top-level baton-data is skipped",
	})
	if err := os.Chmod(filepath.Join(src, "bin/start"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"public/main.css": "css/site.css",
		"current":         "public",
		"escape":          "../outside",
		"abs":             "/etc/passwd",
	} {
		if err := os.Symlink(target, filepath.Join(src, link)); err != nil {
			t.Fatal(err)
		}
	}

	var first bytes.Buffer
	if err := Pack(src, &first); err != nil {
		t.Fatal(err)
	}
	r, err := extractBytes(t, t.Context(), KindZip, first.Bytes(), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	wantFile(t, r.dest, "index.js", "console.log(1)", 0o644)
	wantFile(t, r.dest, "bin/start", "#!/bin/sh\n", 0o755)
	wantFile(t, r.dest, "public/css/site.css", "body{}", 0o644)
	wantFile(t, r.dest, "vendor/lib/lib.js", "x", 0o644)
	wantFile(t, r.dest, "nested/baton-data/ok", "kept: only the top-level baton-data is skipped", 0o644)
	wantLink(t, r.dest, "public/main.css", "css/site.css")
	wantLink(t, r.dest, "current", "public")
	for _, gone := range []string{".git", "vendor/lib/.git", "baton-data", "escape", "abs"} {
		if _, err := os.Lstat(filepath.Join(r.dest, gone)); !os.IsNotExist(err) {
			t.Errorf("%s was packed: %v", gone, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(r.dest, "empty")); err != nil || !fi.IsDir() {
		t.Errorf("empty folder: %v", err)
	}

	// Same content, new times: same bytes, so the same digest.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(src, "index.js"), later, later); err != nil {
		t.Fatal(err)
	}
	var second bytes.Buffer
	if err := Pack(src, &second); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Error("packing the same folder twice gave different bytes")
	}
}

func TestPackMissingFolder(t *testing.T) {
	if err := Pack(filepath.Join(t.TempDir(), "nope"), &bytes.Buffer{}); err == nil {
		t.Fatal("Pack of a missing folder succeeded")
	}
}
