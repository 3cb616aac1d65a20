package supervisor

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"sync"
)

const (
	// maxLineBytes caps one output line; the rest of a longer line is
	// dropped so a program printing without newlines cannot grow memory.
	maxLineBytes = 64 << 10
	// tailLines is how many recent lines each instance keeps for errors.
	tailLines = 20
)

// outputSink serializes whole, prefixed lines from every instance of a
// group onto the caller's writer.
type outputSink struct {
	mu sync.Mutex
	w  io.Writer // nil: lines are only kept in the tails
}

// writeLine writes "[index] line\n" in one Write call. Write errors are
// ignored: losing log output must never stop an app.
func (o *outputSink) writeLine(index int, line []byte) {
	if o.w == nil {
		return
	}
	buf := make([]byte, 0, len(line)+16)
	buf = append(buf, '[')
	buf = strconv.AppendInt(buf, int64(index), 10)
	buf = append(buf, "] "...)
	buf = append(buf, line...)
	buf = append(buf, '\n')
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = o.w.Write(buf)
}

// tail is a ring of the last tailLines lines of one instance, kept across
// restarts so an error message can show why the app died.
type tail struct {
	mu    sync.Mutex
	lines [tailLines]string
	next  int // index the next line goes to
	n     int // lines held, at most tailLines
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines[t.next] = line
	t.next = (t.next + 1) % tailLines
	if t.n < tailLines {
		t.n++
	}
}

// last returns up to n of the most recent lines, oldest first.
func (t *tail) last(n int) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	n = min(n, t.n)
	out := make([]string, 0, n)
	for i := n; i > 0; i-- {
		out = append(out, t.lines[(t.next-i+tailLines)%tailLines])
	}
	return out
}

// copyLines reads r until it fails and calls emit once per line, without
// the trailing "\n" or "\r\n". A line longer than maxLineBytes is cut at
// that length and the rest of it discarded. A final line without a newline
// is emitted too. The slice passed to emit is only valid during the call.
func copyLines(r io.Reader, emit func(line []byte)) {
	br := bufio.NewReaderSize(r, maxLineBytes)
	dropping := false // inside the discarded remainder of a long line
	for {
		chunk, err := br.ReadSlice('\n')
		complete := len(chunk) > 0 && chunk[len(chunk)-1] == '\n'
		if complete {
			chunk = bytes.TrimSuffix(chunk[:len(chunk)-1], []byte{'\r'})
		}
		if !dropping && (complete || len(chunk) > 0) {
			emit(chunk)
		}
		if err == bufio.ErrBufferFull {
			dropping = true
			continue
		}
		if complete {
			dropping = false
		}
		if err != nil {
			return
		}
	}
}
