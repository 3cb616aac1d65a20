package proxy

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"
)

// AccessLog writes one JSON line per request the proxy answers, off the
// request path: requests append their line to a bounded buffer and a
// goroutine writes it out. When the writer cannot keep up and the buffer
// is full, lines are dropped and counted (Dropped) rather than slowing
// requests. NewAccessLog builds it, Open starts the writer, Close flushes
// and stops it. A Proxy whose Config has no AccessLog spends one nil check
// per request on it.
type AccessLog struct {
	w   io.Writer
	max int

	mu      sync.Mutex
	buf     []byte // lines waiting for the writer
	spare   []byte // the writer's buffer, swapped with buf
	closed  bool
	dropped atomic.Uint64
	errs    atomic.Uint64

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// accessLogBuffer bounds the lines waiting to be written.
const accessLogBuffer = 1 << 20

// NewAccessLog returns an access log that writes to w; it starts nothing.
func NewAccessLog(w io.Writer) *AccessLog {
	return &AccessLog{w: w, max: accessLogBuffer, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
}

// Open starts the goroutine that writes the lines.
func (l *AccessLog) Open() {
	l.once.Do(func() { go l.run() })
}

// Close writes what is buffered, stops the writer goroutine and waits for
// it. Lines added afterwards are dropped.
func (l *AccessLog) Close() error {
	l.Open() // so that done is closed even if Open was never called
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.stop)
	}
	l.mu.Unlock()
	<-l.done
	return nil
}

// Dropped is how many lines were dropped because the buffer was full.
func (l *AccessLog) Dropped() uint64 { return l.dropped.Load() }

// add queues one line; it never waits for the writer.
func (l *AccessLog) add(line []byte) {
	l.mu.Lock()
	if l.closed || len(l.buf)+len(line) > l.max {
		l.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	l.buf = append(l.buf, line...)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *AccessLog) run() {
	defer close(l.done)
	for {
		stopping := false
		select {
		case <-l.wake:
		case <-l.stop:
			stopping = true
		}
		l.mu.Lock()
		l.buf, l.spare = l.spare[:0], l.buf
		l.mu.Unlock()
		if len(l.spare) > 0 {
			if _, err := l.w.Write(l.spare); err != nil {
				l.errs.Add(1)
			}
		}
		if stopping {
			return
		}
	}
}

// accessEntry is what one access log line says.
type accessEntry struct {
	start                      time.Time
	st                         *reqStats // nil: the request reached no app
	host, method, target, peer []byte
	status                     int
	cause                      Cause
	in, out                    int64
	took                       time.Duration
}

// appendAccessLine appends e as one JSON line to b.
func appendAccessLine(b []byte, e *accessEntry) []byte {
	b = append(b, `{"time":"`...)
	b = e.start.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","host":`...)
	b = appendJSONString(b, e.host)
	if e.st != nil {
		b = append(b, `,"app":`...)
		b = appendJSONString(b, s2b(e.st.app))
		b = append(b, `,"slot":`...)
		b = appendJSONString(b, s2b(e.st.slot))
		if e.st.revision != "" {
			b = append(b, `,"revision":`...)
			b = appendJSONString(b, s2b(e.st.revision))
		}
	}
	b = append(b, `,"method":`...)
	b = appendJSONString(b, e.method)
	b = append(b, `,"target":`...)
	b = appendJSONString(b, e.target)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	if e.cause != CauseNone {
		b = append(b, `,"cause":"`...)
		b = append(b, e.cause.String()...)
		b = append(b, '"')
	}
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(e.took.Microseconds())/1000, 'f', 3, 64)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, e.in, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, e.out, 10)
	b = append(b, `,"client":`...)
	b = appendJSONString(b, e.peer)
	return append(b, "}\n"...)
}

// s2b views a string as bytes without copying; the bytes are only read.
func s2b(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced.
func appendJSONString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// logServeHTTP writes the access log line of a ServeHTTP request: the
// request's strings are read in place and the line built in a pooled
// buffer (add copies it).
func (p *Proxy) logServeHTTP(r *http.Request, start time.Time, took time.Duration, st *reqStats, status int, cause Cause, in, out int64) {
	e := accessEntry{start: start, st: st, host: s2b(r.Host), method: s2b(r.Method),
		target: s2b(r.RequestURI), peer: s2b(r.RemoteAddr), status: status, cause: cause,
		in: in, out: out, took: took}
	if len(e.target) == 0 {
		e.target = s2b(r.URL.RequestURI())
	}
	b := lineBufs.Get().(*[]byte)
	*b = appendAccessLine((*b)[:0], &e)
	p.access.add(*b)
	lineBufs.Put(b)
}

// lineBufs are the scratch buffers of logServeHTTP's lines.
var lineBufs = sync.Pool{New: func() any { return new([]byte) }}
