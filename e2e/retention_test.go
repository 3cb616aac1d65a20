package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRetentionKill9DuringCollection: with --retain-revisions 2 and a test
// hook that pauses collection before each removal, baton is killed (-9)
// while a collection has moved old revision folders to the trash. Nothing
// half-deleted is left where a revision is looked for: every folder under
// revisions/ is whole; after a restart the trash is gone, every revision
// with a folder has its artifact, what is kept is exactly the serving
// revision and the 2 before it, and each of those can be rolled back to
// with `baton rollback --to`.
func TestRetentionKill9DuringCollection(t *testing.T) {
	t.Parallel()
	const retain, deploys = 2, 6
	b := &batonProc{t: t, data: t.TempDir(), apiAddr: freeAddr(t), proxyAddr: freeAddr(t),
		extra: []string{"--retain-revisions", fmt.Sprint(retain)}, env: []string{"BATON_TEST_COLLECT_PAUSE=2s"}}
	b.launch()
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "ret"); err != nil {
		t.Fatal(err)
	}
	pads := map[string][]byte{} // version → its padding
	padded := func(v string) func(string) {
		return func(dir string) {
			pad := make([]byte, 512<<10)
			_, _ = rand.Read(pad)
			pads[v] = pad
			if err := os.WriteFile(filepath.Join(dir, "padding.bin"), pad, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 1; i <= deploys; i++ {
		v := fmt.Sprintf("v%d", i)
		mustSucceed(t, c, "ret", appDir(t, v, padded(v)))
	}
	revDir := filepath.Join(b.data, "apps", "ret", "revisions")
	trash := filepath.Join(b.data, "apps", "ret", "trash")
	eventually(t, 60*time.Second, "a collection has moved a revision folder to the trash", func() bool {
		entries, _ := os.ReadDir(trash)
		return len(entries) > 0
	})
	b.stop(syscall.SIGKILL)
	inTrash, _ := os.ReadDir(trash)
	t.Logf("killed with %d folder(s) in the trash; revisions/ holds %v", len(inTrash), dirNames(revDir))
	checkWhole := func(when string) {
		t.Helper()
		for _, name := range dirNames(revDir) {
			dir := filepath.Join(revDir, name)
			v, err := os.ReadFile(filepath.Join(dir, "version.txt"))
			if err != nil {
				t.Errorf("%s: revision folder %s has no version.txt: %v", when, name, err)
				continue
			}
			pad, err := os.ReadFile(filepath.Join(dir, "padding.bin"))
			if want := pads[strings.TrimSpace(string(v))]; err != nil || !bytes.Equal(pad, want) {
				t.Errorf("%s: revision folder %s (%s) is not whole: padding %d bytes (%v), want %d", when, name, strings.TrimSpace(string(v)), len(pad), err, len(want))
			}
			if _, err := os.Stat(filepath.Join(dir, "baton.toml")); err != nil {
				t.Errorf("%s: revision folder %s has no baton.toml: %v", when, name, err)
			}
		}
	}
	checkWhole("after kill -9")

	b.env = nil
	b.start()
	rep, err := c.GC(ctx, false) // waits for the collection at start
	if err != nil {
		t.Fatalf("gc: %v", err)
	}
	// Start-up empties the trash the kill left; a collection running
	// since may have put something there meanwhile, but it ends with the
	// trash empty again.
	if entries, err := os.ReadDir(trash); err == nil && len(entries) > 0 {
		t.Errorf("after restart and a collection the trash still holds %d entries", len(entries))
	}
	checkWhole("after restart")
	revs, err := c.Revisions(ctx, "ret")
	if err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{}
	for _, r := range revs {
		digests[r.Name] = r.ArtifactDigest
	}
	folders := dirNames(revDir)
	for _, name := range folders {
		if _, err := os.Stat(filepath.Join(b.data, "artifacts", "sha256", digests[name])); err != nil {
			t.Errorf("revision folder %s is there but its artifact is gone: %v", name, err)
		}
	}
	var want []string
	for _, r := range revs[:retain+1] { // newest first
		want = append(want, r.Name)
	}
	sort.Strings(want)
	if strings.Join(folders, " ") != strings.Join(want, " ") || len(dirNames(filepath.Join(b.data, "artifacts", "sha256"))) != retain+1 {
		t.Errorf("after restart and gc: folders %v and %d artifacts, want %v and %d", folders, len(dirNames(filepath.Join(b.data, "artifacts", "sha256"))), want, retain+1)
	}
	t.Logf("after restart: %d bytes in use (%d before the gc), kept %v", rep.After, rep.Before, rep.Plan.Keep)

	p := newProxyClient(b.proxyAddr)
	for i := deploys - retain; i < deploys; i++ {
		rev := revs[deploys-i].Name
		if out, code := runCLI(t, b, "rollback", "ret", "--to", rev, "--wait"); code != 0 {
			t.Fatalf("baton rollback ret --to %s: exit %d\n%s", rev, code, out)
		}
		if _, body, err := p.get("ret.localhost", "/"); err != nil || version(body) != fmt.Sprintf("v%d", i) {
			t.Fatalf("after rollback to %s: %q, %v; want v%d", rev, body, err, i)
		}
	}
	out, code := runCLI(t, b, "gc", "--dry-run")
	if code != 0 || !strings.Contains(out, "would remove") {
		t.Errorf("baton gc --dry-run: exit %d\n%s", code, out)
	}
	if out, code := runCLI(t, b, "status", "ret"); code != 0 || !strings.Contains(out, "DISK") {
		t.Errorf("baton status ret shows no disk use: exit %d\n%s", code, out)
	}
}

// dirNames lists a folder's entries, sorted.
func dirNames(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
