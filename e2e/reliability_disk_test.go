package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// fileExists reports whether path exists.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// relBigArtifact is a tar.gz of dir (made by relAppDir or appDir with the
// version) plus a file of size zero bytes: tiny compressed, size bytes
// unpacked. The system tar packs it (fast; the zeros file is sparse).
func relBigArtifact(t testing.TB, version string, size int64, opts ...func(string)) string {
	t.Helper()
	return tarWithZeros(t, relAppDir(t, version, opts...), size)
}

// tarWithZeros adds a size-byte file of zeros to dir and packs it as tar.gz.
func tarWithZeros(t testing.TB, dir string, size int64) string {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "zeros"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := filepath.Join(t.TempDir(), "big.tar.gz")
	if b, err := exec.Command("tar", "-C", dir, "-czf", out, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, b)
	}
	return out
}

// mountTmpfs mounts a tmpfs of the given size (mount -o size=…) on a new
// folder and unmounts it at the test's end (after baton stopped, if baton
// was started later). It fails the test, never skips, if mounting is refused.
func mountTmpfs(t testing.TB, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a %s tmpfs on %s for the disk-full scenario: %v: %s (the suite needs root or CAP_SYS_ADMIN; it does not skip)",
			size, dir, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s; detaching it lazily", dir, err, out)
			exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

// startRelBatonOn is startRelBaton with its data directory in dir.
func startRelBatonOn(t testing.TB, dir string) *batonProc {
	t.Helper()
	// startBaton prepares the admin token (BATON_TOKEN) in the data
	// directory it made; this one needs the same.
	if tok := os.Getenv("BATON_TOKEN"); tok != "" {
		if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b := startRelBaton(t, "--data", dir)
	b.data = dir
	return b
}

// freeBytes returns the free space of the file system holding path.
func freeBytes(t testing.TB, path string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// TestReliabilityDiskFull runs baton on a 64 MiB tmpfs and deploys
// artifacts that unpack to more than that (and, in the same way, a build
// that fills the disk): each deployment fails with an error that says the
// disk is full, the old revision serves throughout (no failed request), the
// space and the temp area are given back, and the next deployment succeeds.
func TestReliabilityDiskFull(t *testing.T) {
	t.Parallel()
	cfg := reliabilityConfig()
	counts := scenarioCounts(t)
	data := mountTmpfs(t, "64m")
	b := startRelBatonOn(t, data)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "full"); err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, c, "full", appDir(t, "v0"))
	load := startRelLoad(t, b.proxyAddr, []string{"full.localhost"}, 2, 20*time.Millisecond)
	free := freeBytes(t, data)
	t.Logf("data directory on a 64 MiB tmpfs, %d MiB free with v0 live", free>>20)

	for round := 0; round < cfg.diskFullRounds && !t.Failed(); round++ {
		cases := []struct {
			name, want string
			dir        string
		}{
			{"extracting", "no space left on device", tarWithZeros(t, appDir(t, "too-big"), 96<<20)},
			{"building", "build command failed", appDir(t, "fills-disk", withBuild("head -c 100000000 /dev/zero > filler"))},
		}
		for _, tc := range cases {
			d := waitFinal(t, c, deploy(t, c, "full", tc.dir, api.DeployOptions{Message: "disk full in " + tc.name}).ID)
			counts.add(func(c *relCounts) { c.Runs++ })
			counts.note("disk full in "+tc.name, 1)
			if d.State != baton.StateFailed || !strings.Contains(d.Error, tc.want) {
				log, _ := c.Log(ctx, d.ID)
				t.Errorf("disk full in %s: deployment %s %q, want failed saying %q\n%s", tc.name, d.State, d.Error, tc.want, log)
			}
			log, _ := c.Log(ctx, d.ID)
			t.Logf("disk full in %s: %s: %s\n%s", tc.name, d.State, d.Error, log)
			counts.check()
			if ls := revisionProcesses(b.data)[d.Revision]; d.Revision != "" && len(ls) > 0 {
				t.Errorf("processes of failed %s: %v", d.Revision, ls)
			}
			eventually(t, 10*time.Second, "the space taken by the failed deployment is free again", func() bool {
				return freeBytes(t, data) >= free-(2<<20)
			})
			counts.check()
			checkInvariants(t, b, counts, "full")
		}
		// The disk is usable again.
		mustSucceed(t, c, "full", appDir(t, "after-full-"+string(rune('a'+round))))
		free = freeBytes(t, data)
	}
	checkInvariants(t, b, counts, "full")
	if _, failed := load.report(t, counts); failed > 0 {
		t.Errorf("%d requests failed while deployments failed on a full disk; the live revision should have served them all", failed)
	}
	counts.check()
	ds, _ := c.Deployments(ctx, "full", 1000)
	counts.deployments(ds)
}
