package gitdeploy

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"os"
	"path/filepath"
	"sync"

	"github.com/batonhq/baton"
)

// serveBackend runs git http-backend for one request on the app's
// repository. The backend sees only that repository: its project root is
// the app's folder and the path names repo.git.
func (h *Handler) serveBackend(w http.ResponseWriter, r *http.Request, app, repo, sub string, env []string) {
	backend, err := h.gitBackend()
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if r.ContentLength > h.cfg.MaxUpload {
		h.fail(w, r, tooLarge(h.cfg.MaxUpload))
		return
	}
	r2 := r.Clone(r.Context())
	u := *r.URL
	u.Path, u.RawPath = "/"+filepath.Base(repo)+"/"+sub, ""
	r2.URL = &u
	if len(r.TransferEncoding) > 0 {
		// git sends pushes over http.postBuffer (1 MiB) chunked, and CGI
		// needs a length: the body is spooled to a file first.
		f, n, err := h.spool(r.Body)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		defer os.Remove(f.Name())
		defer f.Close()
		r2.Body, r2.ContentLength, r2.TransferEncoding = f, n, nil
		r2.Header.Del("Transfer-Encoding")
	} else if r.Body != nil {
		r2.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxUpload)
	}
	stderr := &lineLogger{log: h.log, msg: "git http-backend", args: []any{"app", app}}
	defer stderr.Close()
	ch := &cgi.Handler{
		Path: backend,
		Dir:  repo,
		Env: gitEnv(append([]string{
			"GIT_PROJECT_ROOT=" + filepath.Dir(repo),
			"GIT_HTTP_EXPORT_ALL=1",
		}, env...)...),
		Logger: slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
		Stderr: stderr,
	}
	ch.ServeHTTP(flushWriter{w, http.NewResponseController(w)}, r2)
}

// spool copies a request body of unknown length into a temporary file,
// refusing it past MaxUpload.
func (h *Handler) spool(body io.Reader) (*os.File, int64, error) {
	f, err := os.CreateTemp("", "baton-git-push-*")
	if err != nil {
		return nil, 0, err
	}
	n, err := io.Copy(f, io.LimitReader(body, h.cfg.MaxUpload+1))
	if err == nil && n > h.cfg.MaxUpload {
		err = tooLarge(h.cfg.MaxUpload)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, err
	}
	return f, n, nil
}

func tooLarge(limit int64) error {
	return baton.Errorf(baton.ETOOLARGE, "the push is larger than the upload limit of %d bytes (baton serve --max-upload)", limit)
}

// flushWriter sends each write of the backend to the client at once, so
// the pusher sees the deployment's phases as they happen rather than when
// a buffer fills. It deliberately hides ReadFrom so copies go through Write.
type flushWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.ResponseWriter.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

// lineLogger logs what a child process writes to stderr, one record per line.
type lineLogger struct {
	log  *slog.Logger
	msg  string
	args []any
	mu   sync.Mutex
	buf  []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > 64<<10 {
		l.emit(l.buf)
		l.buf = nil
	}
	return len(p), nil
}

// Close logs a last line without a newline.
func (l *lineLogger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = nil
	}
	return nil
}

func (l *lineLogger) emit(line []byte) {
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	l.log.Warn(l.msg, append(l.args, "line", string(line))...)
}

// fail answers with the RFC 9457 problem for err.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *baton.Error
	if !errors.As(err, &e) {
		h.log.Error("git request", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeProblem(w, r, err)
}
