package gitdeploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// session is one push: the Unix socket its hooks call back on and what the
// hooks have agreed so far. It lives exactly as long as the receive-pack
// request; the socket sits in a fresh 0700 folder, so only processes of
// baton's own user (the hooks git starts for this push) can reach it.
type session struct {
	h       *Handler
	app     string
	repo    string
	targets []Target

	ctx    context.Context // ends with the push request or at close
	cancel context.CancelFunc
	dir    string
	socket string
	srv    *http.Server
	served chan struct{} // closed when Serve has returned

	mu sync.Mutex
	// deployed is the deploy-branch update whose deployment succeeded in
	// pre-receive, for proc-receive to record.
	deployed *deployedRef
}

// deployedRef is a deploy-branch update that went live, or that was live
// already.
type deployedRef struct {
	update     refUpdate
	target     Target
	deployment string
	// unchanged is set when the pushed commit was live already (no
	// deployment ran): the revision that serves it, which must still be
	// active in the slot for the branch to move.
	unchanged string
}

// openSession starts the hook callback server of one push.
func (h *Handler) openSession(parent context.Context, app, repo string, targets []Target) (*session, error) {
	dir, err := os.MkdirTemp("", "baton-git-")
	if err != nil {
		return nil, fmt.Errorf("create hook socket folder: %w", err)
	}
	socket := filepath.Join(dir, "hook.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("listen for git hooks: %w", err)
	}
	ctx, cancel := context.WithCancel(parent)
	s := &session{h: h, app: app, repo: repo, targets: targets, ctx: ctx, cancel: cancel,
		dir: dir, socket: socket, served: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHook),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.log.Warn("git hook server", "app", app, "err", err)
		}
	}()
	return s, nil
}

// close ends the push's callbacks, waits for them and removes the socket.
func (s *session) close() {
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	<-s.served
	os.RemoveAll(s.dir)
}

func (s *session) setDeployed(d *deployedRef) {
	s.mu.Lock()
	s.deployed = d
	s.mu.Unlock()
}

func (s *session) getDeployed() *deployedRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deployed
}

// maxHookRequest bounds what a hook sends: ref updates and push options.
const maxHookRequest = 16 << 20

// serveHook answers the hook script's one request per hook run.
func (s *session) serveHook(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/hook" {
		http.NotFound(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxHookRequest)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad hook request: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	out := &reply{w: w, rc: http.NewResponseController(w)}
	var status int
	switch hook := r.PostForm.Get("hook"); hook {
	case "pre-receive":
		status = s.h.preReceive(r.Context(), s, r.PostForm, out)
	case "proc-receive":
		status = s.h.procReceive(r.Context(), s, out)
	default:
		out.say("baton: unknown hook %q", hook)
		status = 1
	}
	out.exit(status)
}

// reply writes instructions for the hook script (see hook.sh), one line
// each, and sends each line at once.
type reply struct {
	w  io.Writer
	rc *http.ResponseController
}

func (r *reply) line(verb, text string) {
	fmt.Fprintf(r.w, "%s %s\n", verb, text)
	_ = r.rc.Flush()
}

// say shows a message to the pusher, one "remote:" line per line of text.
func (r *reply) say(format string, args ...any) {
	text := strings.ReplaceAll(fmt.Sprintf(format, args...), "\r", "")
	for _, l := range strings.Split(text, "\n") {
		r.line("say", l)
	}
}

// pkt writes one pkt-line (proc-receive protocol) with payload text.
func (r *reply) pkt(text string) { r.line("pkt", strings.ReplaceAll(text, "\n", " ")) }

// flush writes a flush-pkt.
func (r *reply) flush() {
	fmt.Fprint(r.w, "flush\n")
	_ = r.rc.Flush()
}

// exit sets the hook's exit status.
func (r *reply) exit(status int) { r.line("exit", fmt.Sprint(status)) }
