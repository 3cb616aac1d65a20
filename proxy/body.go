package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
)

// This file moves message bodies. Bodies stream: bytes are written on as
// soon as the reader would otherwise block, so nothing is held back
// (Server-Sent Events, long polls) and memory stays bounded whatever the
// size (uploads). Chunked bodies are copied verbatim, trailers included,
// after checking their framing, so the proxy knows where each message ends.

// flushAt is how much a wbuf gathers before writing even though more input
// is at hand.
const flushAt = 32 << 10

// wbuf gathers small writes to one connection into one syscall. Callers
// flush before any read that may block, which is what keeps streams
// unbuffered.
type wbuf struct {
	w   net.Conn
	b   []byte
	err error
	// bufs and vec are scratch for writev, kept here so that a write
	// allocates nothing (WriteTo consumes bufs, so it is rebuilt on vec).
	bufs net.Buffers
	vec  [2][]byte
	// n counts the bytes passed to write, for the request metrics (heads
	// are appended to b directly and not counted).
	n int64
}

// write queues p, or writes it through at once when it is large.
func (w *wbuf) write(p []byte) error {
	if w.err != nil {
		return w.err
	}
	w.n += int64(len(p))
	if len(w.b)+len(p) <= flushAt {
		w.b = append(w.b, p...)
		return nil
	}
	// Large: send what is queued and p in one writev, without copying p.
	w.vec = [2][]byte{w.b, p}
	w.bufs = w.vec[:]
	_, err := w.bufs.WriteTo(w.w)
	w.vec = [2][]byte{} // p may be a pooled buffer: hold no reference
	w.b = w.b[:0]
	w.err = err
	return err
}

// flush writes what is queued.
func (w *wbuf) flush() error {
	if w.err != nil || len(w.b) == 0 {
		return w.err
	}
	_, err := w.w.Write(w.b)
	w.b = w.b[:0]
	w.err = err
	return err
}

// reset points w at c with an empty queue.
func (w *wbuf) reset(c net.Conn) {
	w.w, w.b, w.err = c, w.b[:0], nil
}

// readError marks a failure of the reading side of a copy, so callers can
// tell which peer failed.
type readError struct{ err error }

func (e *readError) Error() string { return "read: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

var errBadChunk = errors.New("malformed chunked body")

// copyBufs are the buffers for bodies larger than the read buffers.
var copyBufs = sync.Pool{New: func() any { return new([64 << 10]byte) }}

// copyLength copies exactly n body bytes from br to w. rd, when not nil,
// is the connReader under br.
func copyLength(w *wbuf, br *bufio.Reader, rd *connReader, n int64) error {
	var big *[64 << 10]byte
	err := copyN(w, br, rd, n, &big)
	if big != nil {
		copyBufs.Put(big)
	}
	return err
}

// copyN copies n bytes from br to w, reading past br's buffer into *big,
// which it takes from copyBufs when first needed; the caller returns it.
func copyN(w *wbuf, br *bufio.Reader, rd *connReader, n int64, big **[64 << 10]byte) error {
	for n > 0 {
		if k := br.Buffered(); k > 0 {
			p, _ := br.Peek(int(min(int64(k), n)))
			if err := w.write(p); err != nil {
				return err
			}
			br.Discard(len(p))
			n -= int64(len(p))
			continue
		}
		if *big == nil {
			*big = copyBufs.Get().(*[64 << 10]byte)
		}
		buf := (*big)[:min(n, int64(len(*big)))]
		// br is empty, so reading around it keeps the stream in order.
		k, wouldBlock, err := 0, true, error(nil)
		if rd != nil {
			k, wouldBlock, err = rd.tryRead(buf)
		}
		if wouldBlock {
			// Nothing more yet: send what is gathered before waiting.
			if err := w.flush(); err != nil {
				return err
			}
			// The buffer is larger than br's, so this reads from the
			// connection straight into it.
			k, err = br.Read(buf)
		}
		if k > 0 {
			if err := w.write((*big)[:k]); err != nil {
				return err
			}
			n -= int64(k)
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return &readError{err}
		}
	}
	return nil
}

// copyUntilEOF copies a body that ends when the upstream closes.
func copyUntilEOF(w *wbuf, br *bufio.Reader) error {
	big := copyBufs.Get().(*[64 << 10]byte)
	defer copyBufs.Put(big)
	for {
		if br.Buffered() == 0 {
			if err := w.flush(); err != nil {
				return err
			}
		}
		k, err := br.Read(big[:])
		if k > 0 {
			if err := w.write(big[:k]); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return w.flush()
		}
		if err != nil {
			return &readError{err}
		}
	}
}

// maxChunkLine bounds a chunk-size line with its extensions, and each
// trailer line.
const maxChunkLine = 4 << 10

// copyChunked copies one chunked body from br to w. Verbatim, the chunk
// framing and trailers pass unchanged; with dechunk only the data passes
// (for HTTP/1.0 clients, which do not know chunked encoding) and trailers
// are dropped. Trailer fields count against maxTrailer bytes.
func copyChunked(w *wbuf, br *bufio.Reader, rd *connReader, dechunk bool, maxTrailer int) error {
	var big *[64 << 10]byte // one for the whole body, not one per chunk
	defer func() {
		if big != nil {
			copyBufs.Put(big)
		}
	}()
	for {
		line, err := readChunkLine(w, br)
		if err != nil {
			return err
		}
		size, ok := chunkSize(line)
		if !ok {
			return errBadChunk
		}
		if !dechunk {
			if err := w.write(line); err != nil {
				return err
			}
		}
		if size == 0 {
			return copyTrailer(w, br, dechunk, maxTrailer)
		}
		if err := copyN(w, br, rd, size, &big); err != nil {
			return err
		}
		crlf, err := readChunkLine(w, br)
		if err != nil {
			return err
		}
		if !isCRLF(crlf) {
			return errBadChunk
		}
		if !dechunk {
			if err := w.write(crlf); err != nil {
				return err
			}
		}
	}
}

// readChunkLine reads one line of chunk framing, flushing w first when the
// read may block. The line must end in CRLF and hold no other CR or LF:
// a proxy that takes a bare LF for a line end while the upstream does not
// (or the other way round) disagrees with it on where the body ends, and
// the bytes in between become a request the proxy never saw.
func readChunkLine(w *wbuf, br *bufio.Reader) ([]byte, error) {
	if br.Buffered() == 0 {
		if err := w.flush(); err != nil {
			return nil, err
		}
	}
	line, err := br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		return nil, errBadChunk
	case err == io.EOF:
		return nil, &readError{io.ErrUnexpectedEOF}
	case err != nil:
		return nil, &readError{err}
	case len(line) > maxChunkLine:
		return nil, errBadChunk
	case len(line) < 2 || line[len(line)-2] != '\r' || bytes.IndexByte(line[:len(line)-2], '\r') >= 0:
		return nil, errBadChunk
	}
	return line, nil
}

// isCRLF reports whether a line read by readChunkLine is empty.
func isCRLF(line []byte) bool { return len(line) == 2 }

// maxChunkDigits bounds the digits of a chunk size, leading zeros
// included, as net/http does; 16 hex digits still fit a uint64, and sizes
// at or above 2^63 are refused as they are parsed.
const maxChunkDigits = 16

// chunkSize parses a chunk line read by readChunkLine, as RFC 9112 7.1
// writes it:
//
//	chunk-size [ chunk-ext ] CRLF
//	chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//	chunk-ext-val = token / quoted-string
//
// Anything else is refused, whatever a lenient peer might make of it. It
// is stricter than the grammar in one place: no whitespace between the
// size and the first ";", which net/http (a common upstream) refuses, so
// the proxy never accepts a body that its upstream then cannot read.
func chunkSize(line []byte) (int64, bool) {
	line = line[:len(line)-2] // CRLF, checked by readChunkLine
	var n int64
	i := 0
	for ; i < len(line); i++ {
		d, ok := hexDigit(line[i])
		if !ok {
			break
		}
		if i == maxChunkDigits || n > (1<<63-1)>>4 {
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	if i == 0 || (i < len(line) && line[i] != ';') || !validChunkExt(line[i:]) {
		return 0, false
	}
	return n, true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// validChunkExt reports whether b is a well-formed chunk-ext (possibly
// empty). Extensions are forwarded as they are, never interpreted.
func validChunkExt(b []byte) bool {
	bws := func() {
		for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
			b = b[1:]
		}
	}
	token := func() bool {
		n := 0
		for n < len(b) && isTokenChar(b[n]) {
			n++
		}
		b = b[n:]
		return n > 0
	}
	for {
		bws()
		if len(b) == 0 {
			return true
		}
		if b[0] != ';' {
			return false
		}
		b = b[1:]
		bws()
		if !token() {
			return false
		}
		bws()
		if len(b) == 0 || b[0] != '=' {
			continue
		}
		b = b[1:]
		bws()
		if len(b) > 0 && b[0] == '"' {
			n, ok := quotedStringLen(b)
			if !ok {
				return false
			}
			b = b[n:]
		} else if !token() {
			return false
		}
	}
}

// quotedStringLen returns the length of the RFC 9110 quoted-string that
// starts b. Only tabs and visible characters may appear in it: no CR, LF
// or NUL hides inside quotes.
func quotedStringLen(b []byte) (int, bool) {
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c == '\\':
			if i++; i == len(b) || !isQuotedChar(b[i]) {
				return 0, false
			}
		case !isQuotedChar(c):
			return 0, false
		}
	}
	return 0, false
}

// isQuotedChar reports whether c may appear in a quoted-string, escaped
// or not: HTAB, SP, VCHAR and obs-text.
func isQuotedChar(c byte) bool {
	return c == '\t' || c == ' ' || (c > ' ' && c != 0x7f)
}

// copyTrailer copies the trailer section and the final CRLF. Each trailer
// line must be a field line, so that a missing final CRLF cannot turn a
// request line into a "trailer" that a laxer upstream runs.
func copyTrailer(w *wbuf, br *bufio.Reader, dechunk bool, maxTrailer int) error {
	total := 0
	for {
		line, err := readChunkLine(w, br)
		if err != nil {
			return err
		}
		if total += len(line); total > maxTrailer {
			return errHeadTooLarge
		}
		end := isCRLF(line)
		if !end && !validFieldLine(line[:len(line)-2]) {
			return errBadChunk
		}
		if !dechunk {
			if err := w.write(line); err != nil {
				return err
			}
		}
		if end {
			return w.flush()
		}
	}
}
