package gitdeploy

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hookServer serves the hook's callback on a Unix socket with a canned
// answer and records the request's form.
type hookServer struct {
	socket string
	forms  chan url.Values
}

func startHookServer(t *testing.T, answer string) *hookServer {
	t.Helper()
	dir, err := os.MkdirTemp("", "baton-hooktest-") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	hs := &hookServer{socket: filepath.Join(dir, "s"), forms: make(chan url.Values, 4)}
	ln, err := net.Listen("unix", hs.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		hs.forms <- r.PostForm
		w.Write([]byte(answer))
	})}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done; os.RemoveAll(dir) })
	return hs
}

// runHook runs hook.sh under the given hook name and returns its exit
// code, stdout and stderr.
func runHook(t *testing.T, name, stdin string, env ...string) (int, string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, hookScript, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("run hook: %v", err)
	return 0, "", ""
}

func TestHookPreReceiveSendsPushAndRelaysAnswer(t *testing.T) {
	hs := startHookServer(t, "say deploying\nsay \nsay done: 100% & more\nexit 1\n")
	refs := "0000000000000000000000000000000000000000 1111111111111111111111111111111111111111 refs/heads/main\n"
	code, stdout, stderr := runHook(t, "pre-receive", refs,
		"BATON_GIT_SOCKET="+hs.socket, "GIT_QUARANTINE_PATH=/x/objects/tmp_objdir-incoming-1",
		"GIT_PUSH_OPTION_COUNT=2", "GIT_PUSH_OPTION_0=on-conflict=fail", "GIT_PUSH_OPTION_1=a b&c=d")
	if code != 1 || stdout != "" || stderr != "deploying\n\ndone: 100% & more\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	f := <-hs.forms
	if f.Get("hook") != "pre-receive" || f.Get("refs") != refs || f.Get("quarantine") != "/x/objects/tmp_objdir-incoming-1" {
		t.Fatalf("form %v", f)
	}
	if got := f["option"]; len(got) != 2 || got[0] != "on-conflict=fail" || got[1] != "a b&c=d" {
		t.Fatalf("options %q", got)
	}
}

func TestHookProcReceiveWritesPktLines(t *testing.T) {
	hs := startHookServer(t, "pkt version=1\nflush\nsay recorded\npkt ok refs/heads/main\nflush\nexit 0\n")
	code, stdout, stderr := runHook(t, "proc-receive", "0000", "BATON_GIT_SOCKET="+hs.socket)
	want := "000eversion=1\n0000" + "0017ok refs/heads/main\n0000"
	if code != 0 || stdout != want || stderr != "recorded\n" {
		t.Fatalf("exit %d, stdout %q (want %q), stderr %q", code, stdout, want, stderr)
	}
	if f := <-hs.forms; f.Get("hook") != "proc-receive" || f.Has("refs") {
		t.Fatalf("form %v", f)
	}
}

func TestHookRefusesWithoutBaton(t *testing.T) {
	code, _, stderr := runHook(t, "pre-receive", "")
	if code != 1 || !strings.Contains(stderr, "/git/") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestHookRefusesWhenBatonGivesNoAnswer(t *testing.T) {
	hs := startHookServer(t, "say half an answer\n")
	code, _, stderr := runHook(t, "pre-receive", "", "BATON_GIT_SOCKET="+hs.socket)
	if code != 1 || !strings.Contains(stderr, "half an answer") || !strings.Contains(stderr, "no answer") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	missing := filepath.Join(t.TempDir(), "gone.sock")
	code, _, stderr = runHook(t, "pre-receive", "", "BATON_GIT_SOCKET="+missing)
	if code != 1 || !strings.Contains(stderr, "no answer") {
		t.Fatalf("without a server: exit %d, stderr %q", code, stderr)
	}
}
