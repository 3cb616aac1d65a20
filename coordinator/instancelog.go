package coordinator

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// instanceLog receives instance output: always appended to the revision's
// log file, and to the deployment log while that deployment runs.
type instanceLog struct {
	c    *Coordinator
	app  string
	mu   sync.Mutex
	f    *os.File
	dep  string
	line lineWriter
}

func openInstanceLog(c *Coordinator, app, rev, dep string) (*instanceLog, error) {
	path := c.instanceLogPath(app, rev)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open instance log: %w", err)
	}
	l := &instanceLog{c: c, app: app, f: f, dep: dep}
	l.line.emit = func(s string) {
		if l.dep != "" {
			c.logf(l.dep, "app: %s", s)
		}
	}
	return l, nil
}

// Write takes whole lines from the supervisor and hides the app's
// secrets in them before they reach the revision log or the deployment's.
func (l *instanceLog) Write(p []byte) (int, error) {
	n := len(p)
	p = []byte(l.c.masker(l.app).Mask(string(p)))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		_, _ = l.f.Write(p)
	}
	_, err := l.line.Write(p)
	return n, err
}

// Detach stops copying output into the deployment log.
func (l *instanceLog) Detach() {
	l.mu.Lock()
	l.dep = ""
	l.mu.Unlock()
}

// Close closes the log file.
func (l *instanceLog) Close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	l.dep = ""
}

// lineWriter splits written bytes into lines.
type lineWriter struct {
	buf  []byte
	emit func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		w.emit(strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 {
		w.flush()
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = w.buf[:0]
	}
}
