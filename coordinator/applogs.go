package coordinator

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/batonhq/baton"
)

// defaultAppLogLimit is how many of the newest lines AppLogs answers
// unless asked otherwise.
const defaultAppLogLimit = 1000

// AppLogs returns the selected lines of an app's instance output, oldest
// first, the newest q.Limit of them. Secret values are masked as they are
// read too, so a line written before a secret was set hides it as well.
func (c *Coordinator) AppLogs(ctx context.Context, q baton.AppLogQuery) ([]baton.AppLogLine, error) {
	revs, err := c.logRevisions(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []baton.AppLogLine
	for _, r := range revs {
		t := c.newLogTail(q, r, time.Time{})
		out = append(out, t.read()...)
		t.close()
	}
	return newestLines(sortLines(out), q.Limit), nil
}

// FollowAppLogs sends the lines AppLogs would, then every new line of
// the selected revisions, within a fifth of a second (a batch, maybe
// empty, every fifth of a second), until ctx ends or send fails. Without q.Revision the set of revisions follows the app:
// those that become active (a deployment, a swap) are followed from the
// moment following began.
func (c *Coordinator) FollowAppLogs(ctx context.Context, q baton.AppLogQuery, send func([]baton.AppLogLine) error) error {
	began := time.Now()
	revs, err := c.logRevisions(ctx, q)
	if err != nil {
		return err
	}
	tails := map[string]*logTail{}
	defer func() {
		for _, t := range tails {
			t.close()
		}
	}()
	var first []baton.AppLogLine
	for _, r := range revs {
		t := c.newLogTail(q, r, time.Time{})
		tails[r.Name] = t
		first = append(first, t.read()...)
	}
	if err := send(newestLines(sortLines(first), q.Limit)); err != nil {
		return err
	}
	poll := time.NewTicker(200 * time.Millisecond)
	defer poll.Stop()
	lastResolve := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
		}
		if q.Revision == "" && time.Since(lastResolve) >= time.Second {
			lastResolve = time.Now()
			if revs, err := c.logRevisions(ctx, q); err == nil {
				for _, r := range revs {
					if tails[r.Name] == nil {
						tails[r.Name] = c.newLogTail(q, r, began)
					}
				}
			}
		}
		var batch []baton.AppLogLine
		for _, t := range tails {
			batch = append(batch, t.read()...)
		}
		// An empty batch too: the sender may need to keep its stream alive.
		if err := send(sortLines(batch)); err != nil {
			return err
		}
	}
}

// logRevisions are the revisions q selects.
func (c *Coordinator) logRevisions(ctx context.Context, q baton.AppLogQuery) ([]baton.Revision, error) {
	if _, err := c.cfg.Store.App(ctx, q.App); err != nil {
		return nil, err
	}
	if q.Revision != "" {
		r, err := c.cfg.Store.Revision(ctx, q.Revision)
		if err != nil || r.App != q.App {
			return nil, baton.Errorf(baton.ENOTFOUND, "%s has no revision %s; `baton revisions %s` lists them", q.App, q.Revision, q.App)
		}
		return []baton.Revision{r}, nil
	}
	all, err := c.cfg.Store.Revisions(ctx, q.App)
	if err != nil {
		return nil, err
	}
	var out []baton.Revision
	for _, r := range all {
		if r.Active && (q.Slot == "" || r.Slot == q.Slot) {
			out = append(out, r)
		}
	}
	return out, nil
}

// logTail reads one revision's instance log from where it left off,
// across rotations: it holds the file open, so after a rotation it reads
// the rest of the renamed file before it opens the new one.
type logTail struct {
	c     *Coordinator
	q     baton.AppLogQuery
	rev   baton.Revision
	path  string
	f     *os.File
	since time.Time
	after time.Time
	// partial is a line not finished yet.
	partial []byte
	started bool
}

func (c *Coordinator) newLogTail(q baton.AppLogQuery, r baton.Revision, notBefore time.Time) *logTail {
	t := &logTail{c: c, q: q, rev: r, path: c.instanceLogPath(r.App, r.Name), since: q.Since}
	if notBefore.After(t.since) {
		t.since = notBefore
	}
	if at, ok := baton.ParseLogCursor(q.After); ok {
		t.after = at
	}
	return t
}

func (t *logTail) close() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
}

// read returns the lines written since the last read.
func (t *logTail) read() []baton.AppLogLine {
	var raw []byte
	if !t.started {
		// The first read takes the rotated file whole, then the current one.
		t.started = true
		if b, err := os.ReadFile(t.path + ".1"); err == nil {
			raw = append(raw, b...)
		}
	}
	if t.f != nil {
		raw = append(raw, t.drain()...)
		// Rotated away: what was left is read; go on with the new file.
		if cur, err := os.Stat(t.path); err == nil {
			if mine, err := t.f.Stat(); err == nil && !os.SameFile(cur, mine) {
				raw = append(raw, t.drain()...) // written just before the rotation
				t.close()
			}
		}
	}
	if t.f == nil {
		f, err := os.Open(t.path)
		if err == nil {
			t.f = f
			raw = append(raw, t.drain()...)
		} else if !errors.Is(err, fs.ErrNotExist) {
			t.c.log.Warn("read instance log", "path", t.path, "err", err)
		}
	}
	if len(raw) == 0 {
		return nil
	}
	raw = append(t.partial, raw...)
	end := bytes.LastIndexByte(raw, '\n')
	if end < 0 {
		t.partial = raw
		return nil
	}
	t.partial = append([]byte(nil), raw[end+1:]...)
	m := t.c.masker(t.rev.App)
	var out []baton.AppLogLine
	for _, line := range bytes.Split(raw[:end], []byte{'\n'}) {
		l, ok := parseLogLine(string(line))
		if !ok || l.Time.Before(t.since) || (!t.after.IsZero() && !l.Time.After(t.after)) {
			continue
		}
		l.Revision, l.Slot, l.Text = t.rev.Name, t.rev.Slot, m.Mask(l.Text)
		out = append(out, l)
	}
	return out
}

// drain reads t.f to its end.
func (t *logTail) drain() []byte {
	b, err := io.ReadAll(t.f)
	if err != nil {
		t.c.log.Warn("read instance log", "path", t.path, "err", err)
	}
	return b
}

// parseLogLine reads "TIME [INDEX] TEXT", as instanceLog writes it. Lines
// of older batons have no time; they are kept with a zero time.
func parseLogLine(s string) (baton.AppLogLine, bool) {
	var l baton.AppLogLine
	if len(s) > len(logTimeLayout) && s[len(logTimeLayout)] == ' ' {
		if at, err := time.Parse(logTimeLayout, s[:len(logTimeLayout)]); err == nil {
			l.Time, l.ID = at, baton.LogCursor(at)
			s = s[len(logTimeLayout)+1:]
		}
	}
	if len(s) > 2 && s[0] == '[' {
		if i := bytes.IndexByte([]byte(s), ']'); i > 1 {
			if n, err := strconv.Atoi(s[1:i]); err == nil {
				l.Instance = n
				s = s[i+1:]
				if len(s) > 0 && s[0] == ' ' {
					s = s[1:]
				}
			}
		}
	}
	l.Text = s
	return l, s != "" || !l.Time.IsZero()
}

// sortLines orders lines by time; lines of one revision keep their order.
func sortLines(ls []baton.AppLogLine) []baton.AppLogLine {
	sort.SliceStable(ls, func(i, j int) bool { return ls[i].Time.Before(ls[j].Time) })
	return ls
}

// newestLines keeps the last limit lines (default defaultAppLogLimit).
func newestLines(ls []baton.AppLogLine, limit int) []baton.AppLogLine {
	if limit <= 0 {
		limit = defaultAppLogLimit
	}
	if len(ls) > limit {
		ls = ls[len(ls)-limit:]
	}
	return ls
}
