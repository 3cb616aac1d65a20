package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// logFollower is a running `baton logs APP -f`, its output collected.
type logFollower struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func followLogs(t *testing.T, b *batonProc, args ...string) *logFollower {
	t.Helper()
	return followCLI(t, b, append([]string{"logs"}, args...)...)
}

// followCLI runs a baton command that follows something (logs -f,
// status -w), collecting its output lines until the test ends.
func followCLI(t *testing.T, b *batonProc, args ...string) *logFollower {
	t.Helper()
	cmd := exec.Command(batonBin, args...)
	cmd.Env = append(os.Environ(), "BATON_URL=http://"+b.apiAddr, "BATON_TOKEN="+b.token)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &logFollower{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f.mu.Lock()
			f.lines = append(f.lines, sc.Text())
			f.mu.Unlock()
		}
	}()
	t.Cleanup(func() { f.stop(t) })
	return f
}

// stop ends the follower as Ctrl-C does; it must exit 0, promptly.
func (f *logFollower) stop(t *testing.T) {
	if f.cmd.ProcessState != nil {
		return
	}
	f.cmd.Process.Signal(syscall.SIGINT)
	exited := make(chan error, 1)
	go func() { <-f.done; exited <- f.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("baton logs -f after Ctrl-C: %v", err)
		}
	case <-time.After(10 * time.Second):
		f.cmd.Process.Kill()
		<-exited
		t.Errorf("baton logs -f did not stop within 10s of Ctrl-C")
	}
}

// find returns the first line containing s.
func (f *logFollower) find(s string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.lines {
		if strings.Contains(l, s) {
			return l, true
		}
	}
	return "", false
}

// TestAppLogsFollowSinceRevisionAndSecrets: `baton logs APP -f` shows a
// line an instance prints within a second, keeps following across a
// deployment (the new revision's output appears), and stops at Ctrl-C;
// --revision and --since select lines; a secret value is masked, also in a
// line written before the secret was set.
func TestAppLogsFollowSinceRevisionAndSecrets(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "talk"); err != nil {
		t.Fatal(err)
	}
	d1 := mustSucceed(t, c, "talk", appDir(t, "v1"))
	p := newProxyClient(b.proxyAddr)
	say := func(msg string) {
		t.Helper()
		status, body, err := p.get("talk.localhost", "/log?msg="+url.QueryEscape(msg))
		if err != nil || status != 200 {
			t.Fatalf("GET /log: %d %s %v", status, body, err)
		}
	}
	const secret = "tok-8c1f5e2d9a"
	say("before the secret: " + secret)

	f := followLogs(t, b, "talk", "-f")
	// The follower is connected once it shows what was written before.
	eventually(t, 10*time.Second, "baton logs -f shows the existing output", func() bool {
		_, ok := f.find("listening")
		return ok
	})
	for i := range 3 {
		msg := fmt.Sprintf("live line %d", i)
		said := time.Now()
		say(msg)
		var line string
		eventually(t, 10*time.Second, "baton logs -f shows "+msg, func() bool {
			var ok bool
			line, ok = f.find(msg)
			return ok
		})
		// The latency is measured, not checked (a shared machine): well
		// under a second here.
		t.Logf("%q shown after %s", msg, time.Since(said))
		if !strings.Contains(line, d1.Revision+"[1] "+msg) {
			t.Fatalf("line %q lacks revision and instance", line)
		}
	}

	// A deployment (settings with a secret make a new revision): the
	// follower goes on with the new revision's output.
	dep, err := c.SetSettings(ctx, "talk", baton.ProductionSlot, []baton.Setting{{Key: "API_TOKEN", Value: secret, Secret: true}}, baton.PolicyQueue)
	if err != nil {
		t.Fatal(err)
	}
	d2 := waitFinal(t, c, dep.ID)
	if d2.State != baton.StateSucceeded || d2.Revision == d1.Revision {
		t.Fatalf("settings deployment: %+v", d2)
	}
	said := time.Now()
	say("after the deployment")
	eventually(t, 10*time.Second, "the new revision's line in baton logs -f", func() bool {
		line, ok := f.find("after the deployment")
		return ok && strings.Contains(line, d2.Revision+"[")
	})
	t.Logf("the new revision's line shown after %s", time.Since(said))
	f.stop(t)

	// The secret is masked, though its line was written before it was set.
	out, code := runCLI(t, b, "logs", "talk", "--revision", d1.Revision)
	if code != 0 || strings.Contains(out, secret) || !strings.Contains(out, "before the secret: "+baton.SecretMask) {
		t.Fatalf("logs --revision %s: exit %d\n%s", d1.Revision, code, out)
	}
	if !strings.Contains(out, "live line 2") || strings.Contains(out, "after the deployment") {
		t.Fatalf("logs --revision %s shows another revision's lines or misses its own:\n%s", d1.Revision, out)
	}
	// Without --revision: the live revision only.
	out, _ = runCLI(t, b, "logs", "talk")
	if !strings.Contains(out, "after the deployment") || strings.Contains(out, "live line") {
		t.Fatalf("logs talk (live revision only):\n%s", out)
	}

	// --since: a line printed now is in, one printed before is out.
	say("old line")
	var old baton.AppLogLine
	eventually(t, 5*time.Second, "the old line is stored", func() bool {
		ls, err := c.AppLogs(ctx, "talk", api.AppLogOptions{})
		for _, l := range ls {
			if err == nil && l.Text == "old line" {
				old = l
				return true
			}
		}
		return false
	})
	say("new line")
	var fresh baton.AppLogLine
	eventually(t, 5*time.Second, "the new line is stored", func() bool {
		ls, _ := c.AppLogs(ctx, "talk", api.AppLogOptions{})
		for _, l := range ls {
			if l.Text == "new line" {
				fresh = l
				return true
			}
		}
		return false
	})
	since := old.Time.Add(fresh.Time.Sub(old.Time) / 2).Format(time.RFC3339Nano)
	out, code = runCLI(t, b, "logs", "talk", "--since", since, "--json")
	var got []baton.AppLogLine
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
		t.Fatalf("logs --since: exit %d, %v\n%s", code, err, out)
	}
	texts := []string{}
	for _, l := range got {
		texts = append(texts, l.Text)
	}
	if strings.Join(texts, "|") != "new line" {
		t.Fatalf("logs --since %s (old at %s, new at %s) = %q, want only the new line", since, old.Time, fresh.Time, texts)
	}
	out, code = runCLI(t, b, "logs", "talk", "--since", "10m")
	if code != 0 || !strings.Contains(out, "old line") || !strings.Contains(out, "new line") {
		t.Fatalf("logs --since 10m: exit %d\n%s", code, out)
	}
	// The SSE stream resumes after Last-Event-ID: the old line's id gives
	// the new line first.
	sseCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(sseCtx, "GET", "http://"+b.apiAddr+"/api/v1/apps/talk/logs", nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+b.token)
	req.Header.Set("Last-Event-ID", old.ID)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("SSE: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	var firstID string
	resumed := false
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok && firstID == "" {
			firstID = id
		}
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var l baton.AppLogLine
			if err := json.Unmarshal([]byte(data), &l); err != nil {
				t.Fatalf("SSE data %q: %v", data, err)
			}
			if l.Text != "new line" || firstID != l.ID {
				t.Fatalf("the first event after Last-Event-ID %s is %+v (id %s), want the new line", old.ID, l, firstID)
			}
			resumed = true
			break
		}
	}
	cancel()
	if !resumed {
		t.Fatal("the SSE stream sent no line within 10s")
	}

	if _, code := runCLI(t, b, "logs", "talk", "--revision", "other--000001"); code == 0 {
		t.Fatal("logs --revision of another app: exit 0")
	}
}
