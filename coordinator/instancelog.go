package coordinator

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton"
)

// A revision's instance output goes to one file per revision, not per
// instance: the supervisor hands every instance's lines, prefixed with the
// instance's index ("[0] …"), to one writer per revision; collection and
// the disk budget count and remove files per revision; and instance
// indexes are reused across restarts, so a file per instance would only
// multiply files and open handles. Each line is stamped with the time it
// arrived. At RetentionPolicy.InstanceLogMax the file rotates (REV.log →
// REV.log.1), so a revision keeps at most twice that; readers follow the
// rotation (applogs.go).

// logTimeLayout stamps each stored line: fixed width, UTC, microseconds.
const logTimeLayout = "2006-01-02T15:04:05.000000Z"

// instanceLog receives instance output: always appended to the revision's
// log file, and to the deployment log while that deployment runs.
type instanceLog struct {
	c    *Coordinator
	app  string
	path string
	max  int64
	mu   sync.Mutex
	f    *os.File
	size int64
	// checked is when the file was last compared with the path: another
	// writer of the same revision may have rotated it.
	checked time.Time
	dep     string
	line    lineWriter
	stamp   []byte
}

func openInstanceLog(c *Coordinator, app, rev, dep string) (*instanceLog, error) {
	path := c.instanceLogPath(app, rev)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	l := &instanceLog{c: c, app: app, path: path, dep: dep, max: c.cfg.Retention.InstanceLogMax}
	if l.max <= 0 {
		l.max = baton.DefaultInstanceLogMax
	}
	if err := l.reopen(); err != nil {
		return nil, fmt.Errorf("open instance log: %w", err)
	}
	l.line.emit = func(s string) {
		if l.dep != "" {
			c.logMasked(l.dep, "app: "+s) // Write masked it
		}
	}
	return l, nil
}

// reopen opens the file at path for appending (l.mu held, or not shared yet).
func (l *instanceLog) reopen() error {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.size, l.checked = f, fi.Size(), time.Now()
	return nil
}

// Write takes whole lines from the supervisor and hides the app's
// secrets in them before they reach the revision log or the deployment's.
func (l *instanceLog) Write(p []byte) (int, error) {
	n := len(p)
	p = []byte(l.c.masker(l.app).Mask(string(p)))
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.stamp = stampLines(l.stamp[:0], p, now)
		l.rotate(now, int64(len(l.stamp)))
		if l.f != nil {
			if _, err := l.f.Write(l.stamp); err == nil {
				l.size += int64(len(l.stamp))
			}
		}
	}
	_, err := l.line.Write(p)
	return n, err
}

// rotate moves the file aside when adding n bytes would pass the cap, and
// follows a rotation another writer of the revision made (l.mu held).
// Losing log output never stops an app: errors only close the file.
func (l *instanceLog) rotate(now time.Time, n int64) {
	if now.Sub(l.checked) > time.Second {
		l.checked = now
		cur, err1 := os.Stat(l.path)
		mine, err2 := l.f.Stat()
		if err1 != nil || err2 != nil || !os.SameFile(cur, mine) {
			if err := l.reopen(); err != nil {
				l.c.log.Warn("reopen instance log", "path", l.path, "err", err)
				return
			}
		}
	}
	if l.size == 0 || l.size+n <= l.max {
		return
	}
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		l.c.log.Warn("rotate instance log", "path", l.path, "err", err)
	}
	if err := l.reopen(); err != nil {
		l.c.log.Warn("rotate instance log", "path", l.path, "err", err)
	}
}

// stampLines appends p to dst with "TIME " before each line.
func stampLines(dst, p []byte, now time.Time) []byte {
	ts := now.UTC().AppendFormat(nil, logTimeLayout)
	for len(p) > 0 {
		i := strings.IndexByte(string(p), '\n')
		line := p
		if i >= 0 {
			line, p = p[:i+1], p[i+1:]
		} else {
			p = nil
		}
		dst = append(dst, ts...)
		dst = append(dst, ' ')
		dst = append(dst, line...)
	}
	if len(dst) > 0 && dst[len(dst)-1] != '\n' {
		dst = append(dst, '\n')
	}
	return dst
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
