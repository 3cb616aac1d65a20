package e2e

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/gitdeploy"
)

// gitWork is a working repository of the real git client, isolated from
// the machine's git configuration, committing as one author.
type gitWork struct {
	t    testing.TB
	dir  string
	home string
}

// newGitWork starts an empty repository on branch main.
func newGitWork(t testing.TB, author string) *gitWork {
	t.Helper()
	g := &gitWork{t: t, dir: t.TempDir(), home: t.TempDir()}
	g.must("init", "-q", "-b", "main")
	g.configure(author)
	return g
}

// cloneGitWork clones remote.
func cloneGitWork(t testing.TB, remote, author string) *gitWork {
	t.Helper()
	g := &gitWork{t: t, dir: filepath.Join(t.TempDir(), "clone"), home: t.TempDir()}
	g.must("clone", "-q", remote, g.dir)
	g.configure(author)
	return g
}

func (g *gitWork) configure(author string) {
	g.must("config", "user.name", author)
	g.must("config", "user.email", strings.ToLower(author)+"@example.test")
}

func (g *gitWork) command(args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	if _, err := os.Stat(g.dir); err == nil {
		cmd.Dir = g.dir
	}
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + g.home, "LANG=C",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0"}
	return cmd
}

// run runs git and returns its stdout and stderr, and an error when it
// exits non-zero.
func (g *gitWork) run(args ...string) (stdout, stderr string, err error) {
	g.t.Helper()
	cmd := g.command(args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		<-done
		g.t.Fatalf("git %s did not finish within 3 minutes:\n%s%s", strings.Join(args, " "), o.String(), e.String())
	}
	return o.String(), e.String(), err
}

func (g *gitWork) must(args ...string) string {
	g.t.Helper()
	out, errOut, err := g.run(args...)
	if err != nil {
		g.t.Fatalf("git %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return strings.TrimSpace(out)
}

// commitApp makes the tree the example app of appDir(version, opts…)
// and commits it as "version VERSION"; it returns the commit id.
func (g *gitWork) commitApp(version string, opts ...func(string)) string {
	g.t.Helper()
	src := appDir(g.t, version, opts...)
	g.must("rm", "-rq", "--ignore-unmatch", "--", ".")
	entries, err := os.ReadDir(src)
	if err != nil {
		g.t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(g.dir, e.Name()), b, 0o644)
		}
		if err != nil {
			g.t.Fatal(err)
		}
	}
	g.must("add", "-A")
	g.must("commit", "-q", "-m", "version "+version)
	return g.must("rev-parse", "HEAD")
}

// gitPush is a git command running in the background.
type gitPush struct {
	done           chan struct{}
	stdout, stderr bytes.Buffer
	err            error
}

// start runs git in the background; a test that fails before waiting for
// it has it killed at cleanup.
func (g *gitWork) start(args ...string) *gitPush {
	g.t.Helper()
	p := &gitPush{done: make(chan struct{})}
	cmd := g.command(args...)
	cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
	if err := cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		p.err = cmd.Wait()
	}()
	g.t.Cleanup(func() {
		// A push still running here belongs to a test that failed early.
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait returns the command's output (stdout then stderr) and error.
func (p *gitPush) wait(t testing.TB) (string, error) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(3 * time.Minute):
		t.Fatal("git push did not finish within 3 minutes")
	}
	return p.stdout.String() + p.stderr.String(), p.err
}

// gitRemote is app's git URL on baton.
func gitRemote(b *batonProc, app string) string {
	return gitdeploy.RemoteURL("http://baton:"+b.token+"@"+b.apiAddr, app)
}

// serverMain is the commit the app's main branch names on baton.
func serverMain(t testing.TB, remote string) string {
	t.Helper()
	g := &gitWork{t: t, dir: t.TempDir(), home: t.TempDir()}
	out := g.must("ls-remote", remote, "refs/heads/main")
	sha, _, _ := strings.Cut(out, "\t")
	return sha
}

// deploymentOf waits until app has a deployment of commit and returns it.
func deploymentOf(t testing.TB, c *api.Client, app, commit string) baton.Deployment {
	t.Helper()
	var found baton.Deployment
	eventually(t, time.Minute, "a deployment of commit "+commit[:12], func() bool {
		ds, err := c.Deployments(context.Background(), app, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.Commit == commit {
				found = d
				return true
			}
		}
		return false
	})
	return found
}

// exitCode is the exit status in err, 0 for nil.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// proxyPort is the port of baton's proxy.
func proxyPort(b *batonProc) string {
	_, port, _ := net.SplitHostPort(b.proxyAddr)
	return port
}
