package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// readmeMarker precedes each fenced sh block of README.md that
// TestReadmeExamples runs.
const readmeMarker = "<!-- readme-test"

// readmeSkips are the README lines the test does not run, by prefix, with
// the reason. A prefix that matches no line any more fails the test, so
// this list cannot go stale either.
var readmeSkips = []struct{ prefix, why string }{
	{"make build", "the harness built baton; it is on PATH as baton"},
	{"baton serve", "the harness runs baton serve on free ports"},
	{"[--", "continuation of the baton serve synopsis"},
	{"kill -USR2", "restart in place has its own tests (TestReliabilityRestartInPlaceUnderLoad)"},
	{"baton logs -f hello", "follows the app until Ctrl-C"},
	{"baton status hello -w", "follows the app's changes until Ctrl-C"},
}

// readmeExits are the README lines that exit non-zero when run in order
// against a fresh baton, by prefix, with the code and why.
var readmeExits = []struct {
	prefix string
	code   int
	why    string
}{
	{"baton deployments cancel", 5, "the example id names a deployment that has finished by then"},
	{"baton locks list; baton locks break", 1, "no lock is held by then: break says there is nothing to break"},
}

// readmeBlock is one marked sh block: its first line number and its lines.
type readmeBlock struct {
	line  int
	lines []string
}

// readmeBlocks returns the marked fenced sh blocks of the README at path.
func readmeBlocks(t testing.TB, path string) []readmeBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []readmeBlock
	var cur *readmeBlock
	marked := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && strings.HasPrefix(line, "```"):
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.lines = append(cur.lines, line)
		case strings.HasPrefix(line, readmeMarker):
			marked = true
		case marked && line == "```sh":
			cur, marked = &readmeBlock{line: n + 1}, false
		case marked && strings.TrimSpace(line) != "":
			t.Fatalf("README.md:%d: %s must be followed by a ```sh block, not %q", n, readmeMarker, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// TestReadmeExamples runs the README's marked shell examples — the quick
// start by hand, the access commands and the usage block — line by line
// against a real baton serve, in a folder that looks like a checkout
// (examples/, bin/baton), so the README cannot drift from the product
// again: its quick-start deploy once failed on a fresh clone ("./hello:
// not found") because only `make demo` built the example's binary.
func TestReadmeExamples(t *testing.T) {
	t.Parallel()
	blocks := readmeBlocks(t, "../README.md")
	if len(blocks) < 3 {
		t.Fatalf("README.md has %d blocks marked %s, want the quick start, the access commands and the usage block", len(blocks), readmeMarker)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// A checkout as the README's reader has it: examples/ and bin/baton.
	work := t.TempDir()
	if err := os.Symlink(filepath.Join(root, "examples"), filepath.Join(work, "examples")); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(work, "bin")
	os.Mkdir(bin, 0o755)
	if err := os.Symlink(batonBin, filepath.Join(bin, "baton")); err != nil {
		t.Fatal(err)
	}
	tgz := exec.Command("tar", "czf", filepath.Join(work, "app.tar.gz"), "-C", filepath.Join(root, "examples", "hello"), "--exclude", "hello", ".")
	if out, err := tgz.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	var mu sync.Mutex
	skipped := map[string]bool{}
	// Each block on a baton of its own, as a reader might try them, all
	// at once (the usage block deploys and builds for a while): subtests
	// run from goroutines, in this test's -parallel slot. As parallel
	// subtests they would queue for slots behind every test waiting for
	// one, and run last, at the end of the suite.
	t.Run("blocks", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, blk := range blocks {
			wg.Go(func() {
				t.Run(fmt.Sprintf("line-%d", blk.line), func(t *testing.T) {
					runReadmeBlock(t, blk, work, bin, &mu, skipped)
				})
			})
		}
		wg.Wait()
	})
	if t.Failed() {
		return // a failed block stopped before the lines it skips
	}
	for _, s := range readmeSkips {
		if !skipped[s.why] {
			t.Errorf("readmeSkips entry %q matches no README line any more: remove it", s.prefix)
		}
	}
}

// runReadmeBlock runs one marked block's lines in order against a baton
// of its own, noting which skip entries matched.
func runReadmeBlock(t *testing.T, blk readmeBlock, work, bin string, mu *sync.Mutex, skipped map[string]bool) {
	b := startBaton(t)
	env := append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOME="+t.TempDir(),
		"BATON_URL=http://"+b.apiAddr,
		"BATON_TOKEN="+b.token,
		"CI_PIPELINE_ID=4242",
	)
	subst := strings.NewReplacer("127.0.0.1:7070", b.apiAddr, "127.0.0.1:8080", b.proxyAddr)
	for i, raw := range blk.lines {
		n := blk.line + i
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if why := readmeSkip(line); why != "" {
			mu.Lock()
			skipped[why] = true
			mu.Unlock()
			continue
		}
		line = subst.Replace(line)
		if strings.Contains(line, "d-1a2b3c4d5e6f") {
			ds, err := b.client().Deployments(context.Background(), "hello", 1)
			if err != nil || len(ds) == 0 {
				t.Fatalf("README.md:%d: no deployment to stand for the example id: %v", n, err)
			}
			line = strings.ReplaceAll(line, "d-1a2b3c4d5e6f", ds[0].ID)
		}
		want, why := 0, ""
		for _, x := range readmeExits {
			if strings.HasPrefix(line, x.prefix) {
				want, why = x.code, x.why
			}
		}
		script := "set -e\n" + line
		if strings.HasPrefix(line, "export ") {
			script += "\nenv -0"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-c", script)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		cancel()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("README.md:%d: %s: %v", n, line, err)
		}
		if code != want {
			t.Fatalf("README.md:%d: %s\nexit %d, want %d %s\n%s", n, line, code, want, why, out)
		}
		if strings.HasPrefix(line, "export ") {
			env = nil
			for _, kv := range strings.Split(string(out), "\x00") {
				if strings.Contains(kv, "=") {
					env = append(env, strings.TrimLeft(kv, "\n"))
				}
			}
			continue
		}
		t.Logf("README.md:%d: %s → exit %d\n%s", n, line, code, out)
		if strings.HasPrefix(line, "curl ") && !strings.Contains(string(out), "hello") {
			t.Errorf("README.md:%d: %s did not reach the example app:\n%s", n, line, out)
		}
	}
}

func readmeSkip(line string) string {
	for _, s := range readmeSkips {
		if strings.HasPrefix(line, s.prefix) {
			return s.why
		}
	}
	return ""
}

// TestReadmeDemoDataOutsideModule: `make demo` kept its data in
// ./baton-data inside the module, so a later `go vet ./...` walked into
// baton-data/apps/hello/revisions/* as packages. Its default is outside
// the source tree now.
func TestReadmeDemoDataOutsideModule(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	// The script's own assignment, evaluated as the script would.
	cmd := exec.Command("bash", "-c", `eval "$(grep -E '^DATA=' scripts/demo.sh)"; echo "$DATA"`)
	cmd.Dir = root
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	data := strings.TrimSpace(string(out))
	if data == "" {
		t.Fatal("scripts/demo.sh has no DATA= line")
	}
	if !filepath.IsAbs(data) {
		data = filepath.Join(root, data)
	}
	if rel, err := filepath.Rel(root, data); err == nil && !strings.HasPrefix(rel, "..") {
		t.Fatalf("make demo keeps its data in %s, inside the module %s: go vet ./... would walk into its revisions", data, root)
	}
}
