package coordinator_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/server"
)

// TestScenarioRetention60Deploys: 60 deploys of a small app (256 KiB of
// incompressible padding each) with --retain-revisions 5 keep disk use
// bounded: 6 revision folders (the serving one and 5 to roll back to), 6
// artifacts, and the bytes of about 6 deploys instead of 60; every kept
// revision can be rolled back to, one beyond the policy is refused naming
// the kept ones; gc --dry-run then gc reclaim nothing more; status shows
// the app's disk use.
func TestScenarioRetention60Deploys(t *testing.T) {
	t.Parallel()
	const deploys, retain = 60, 5
	b := startBaton(t, func(c *server.Config) { c.RetainRevisions = retain; c.DiskBudget = -1 })
	ctx := context.Background()
	b.createApp("ret")
	padded := func(dir string) {
		pad := make([]byte, 256<<10)
		_, _ = rand.Read(pad)
		if err := os.WriteFile(filepath.Join(dir, "padding.bin"), pad, 0o644); err != nil {
			panic(err)
		}
	}
	var revs []string
	var perDeploy int64
	for i := 1; i <= deploys; i++ {
		d := b.mustDeploy("ret", appDir(t, fmt.Sprintf("v%d", i), padded), api.DeployOptions{})
		revs = append(revs, d.Revision)
		if i == 1 {
			perDeploy = b.diskBytes("ret")
		}
	}
	b.serves(host("ret", ""), fmt.Sprintf("v%d", deploys))

	// The collection after the last deploy may still run: this one waits
	// for it, then finds nothing more to do.
	if _, err := b.c.GC(ctx, false); err != nil {
		t.Fatalf("gc: %v", err)
	}
	dry, err := b.c.GC(ctx, true)
	if err != nil || len(dry.Plan.RemoveFiles)+len(dry.Plan.RemoveArtifacts)+len(dry.Plan.RemoveLogs) > 0 {
		t.Fatalf("gc --dry-run after a collection: %+v, %v; want nothing to remove", dry.Plan, err)
	}
	folders := b.revisionFolders("ret")
	arts := b.artifacts()
	total := b.diskBytes("ret")
	t.Logf("disk use after %d deploys with --retain-revisions %d: %d bytes (%s) in %d revision folders and %d artifacts; one deploy takes %d bytes (%s), %d would take %s without retention",
		deploys, retain, total, baton.FormatSize(total), len(folders), len(arts), perDeploy, baton.FormatSize(perDeploy), deploys, baton.FormatSize(perDeploy*deploys))
	if len(folders) != retain+1 || len(arts) != retain+1 {
		t.Errorf("kept %d revision folders %v and %d artifacts, want %d of each", len(folders), folders, len(arts), retain+1)
	}
	if limit := perDeploy * (retain + 2); total > limit {
		t.Errorf("disk use %d bytes, want at most %d (the footprint of %d deploys)", total, limit, retain+2)
	}
	want := revs[deploys-retain-1:]
	for _, r := range want {
		if !contains(folders, r) {
			t.Errorf("revision folder %s is gone; kept %v", r, folders)
		}
	}
	st, err := b.c.Status(ctx, "ret")
	if err != nil || st.Disk == nil || st.Disk.Total != total || st.Disk.Kept != retain+1 {
		t.Fatalf("status disk use: %+v, %v; want %d bytes, %d revisions kept", st.Disk, err, total, retain+1)
	}

	// Beyond the policy: refused at once, naming the revisions it keeps.
	_, err = b.c.Rollback(ctx, "ret", "", baton.RollbackParams{To: revs[deploys-retain-2]}, "", "")
	if baton.ErrorCode(err) != baton.EUNPROCESSABLE || !strings.Contains(baton.ErrorMessage(err), "no longer kept") || !strings.Contains(baton.ErrorMessage(err), revs[deploys-2]) {
		t.Fatalf("rollback beyond the policy: %v, want 422 saying its artifact is gone, naming %s", err, revs[deploys-2])
	}
	// Every kept revision, oldest first (so each rollback leaves the
	// others inside the policy): it serves again.
	for i := deploys - retain; i < deploys; i++ {
		d, err := b.c.Rollback(ctx, "ret", "", baton.RollbackParams{To: revs[i-1]}, "", "")
		if err != nil {
			t.Fatalf("rollback to kept revision %s: %v", revs[i-1], err)
		}
		b.succeed(d.ID)
		b.serves(host("ret", ""), fmt.Sprintf("v%d", i))
	}
}

// diskBytes is what app's revision folders and logs and every artifact
// take on b's disk.
func (b *batonEnv) diskBytes(app string) int64 {
	b.t.Helper()
	var n int64
	for _, dir := range []string{filepath.Join(b.data, "apps", app), filepath.Join(b.data, "artifacts")} {
		_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					n += fi.Size()
				}
			}
			return nil
		})
	}
	return n
}

// revisionFolders lists app's revision folders on b's disk.
func (b *batonEnv) revisionFolders(app string) []string {
	entries, _ := os.ReadDir(filepath.Join(b.data, "apps", app, "revisions"))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// artifacts lists the stored artifacts' digests.
func (b *batonEnv) artifacts() []string {
	entries, _ := os.ReadDir(filepath.Join(b.data, "artifacts", "sha256"))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
