package proxy

import (
	"bufio"
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
}

// write queues p, or writes it through at once when it is large.
func (w *wbuf) write(p []byte) error {
	if w.err != nil {
		return w.err
	}
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
// read may block.
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
	}
	return line, nil
}

func isCRLF(b []byte) bool {
	return (len(b) == 2 && b[0] == '\r') || len(b) == 1
}

// chunkSize parses "1a3f[;ext]\r\n".
func chunkSize(line []byte) (int64, bool) {
	var n int64
	digits := 0
	for _, c := range line {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		case c == ';' || c == '\r' || c == '\n' || c == ' ' || c == '\t':
			return n, digits > 0
		default:
			return 0, false
		}
		if digits++; digits > 15 {
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return 0, false
}

// copyTrailer copies the trailer section and the final CRLF.
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
		if !dechunk {
			if err := w.write(line); err != nil {
				return err
			}
		}
		if isCRLF(line) {
			return w.flush()
		}
	}
}
