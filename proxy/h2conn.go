package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// This file holds h2Conn, which the HTTP/2 server (tls.go) reads client
// connections through. net/http's HTTP/2 server (and x/net's, the same
// code) departs from RFC 9113 in two places that h2spec checks and that
// its options cannot change:
//
//   - A SETTINGS frame naming one setting twice closes the connection
//     (PROTOCOL_ERROR). RFC 9113 §6.5.3 says to apply the values in order,
//     so the last one stands.
//   - A request with a connection-specific field (Connection, Keep-Alive,
//     Proxy-Connection, Transfer-Encoding, Upgrade) or a TE other than
//     "trailers" gets a 400 answer on a stream left open
//     (golang/go#26321). §8.2.2 makes the request malformed, and §8.1.1
//     a malformed request a stream error of type PROTOCOL_ERROR: the
//     stream is reset (RST_STREAM), and an intermediary forwards nothing.
//
// h2Conn passes every byte through unchanged except in those two cases.
// It follows the client's frames with a Framer of its own, which reads
// only SETTINGS frames and header blocks (never a DATA payload), one
// frame at a time, and decodes every header block with an HPACK decoder
// like the server's, so that its dynamic table stays the server's. A
// SETTINGS frame with repeats is rewritten with the last value of each
// setting. A malformed header block is handed on with one field
// appended, an unknown pseudo-header after the regular fields, which the
// server's Framer rejects with RST_STREAM(PROTOCOL_ERROR) while keeping
// the connection: it still decodes the block whole, so its HPACK state
// stays right. (Should the block also hold a field the server rejects
// itself, the server closes the connection instead: RFC 9113 §5.4.1
// allows that for any stream error.) Where h2Conn cannot follow, after
// an error for which the server closes the connection, it stops looking
// and passes the rest as it comes.

const (
	// h2MaxFrameSize is the largest frame the HTTP/2 server reads
	// (SETTINGS_MAX_FRAME_SIZE): RFC 9113's initial 16 KiB, which h2spec
	// requires and no client needs more than.
	h2MaxFrameSize = 16 << 10
	// h2HeaderTableSize is the HPACK dynamic table size of the server's
	// decoder, and so of h2Conn's.
	h2HeaderTableSize = 4096
	// frameHeaderLen is the length of an HTTP/2 frame header (§4.1).
	frameHeaderLen = 9
)

// malformedField is the HPACK encoding of a pseudo-header field no
// request has (":malformed"), never indexed, so that it leaves the
// dynamic table alone; h2Conn appends it to a malformed header block.
var malformedField = func() []byte {
	var b bytes.Buffer
	hpack.NewEncoder(&b).WriteField(hpack.HeaderField{Name: ":malformed", Sensitive: true})
	return b.Bytes()
}()

// h2Conn is a client's h2 connection as the HTTP/2 server reads it; see
// the top of this file. Only the server's frame-reading goroutine calls
// Read. It has no ConnectionState method, or net/http would take it for
// an HTTP/1.1 connection over TLS; tlsState is its TLS state.
type h2Conn struct {
	net.Conn
	tlsState *tls.ConnectionState

	out  []byte // bytes for the server before any more are read
	left int    // bytes of the current frame that pass straight through
	off  bool   // stopped following: everything passes straight through

	hdr  [frameHeaderLen]byte
	peek []byte // hdr, read ahead, for fr to read again
	// rec is the frame fr read (hdr included), with any rewrite.
	rec  []byte
	fr   *http2.Framer
	wbuf bytes.Buffer // fr's writes: rewritten frames
	dec  *hpack.Decoder
	// inBlock is set from a HEADERS frame without END_HEADERS to the
	// CONTINUATION frame with it, as in the Framer.
	inBlock bool
	// block is the header block being decoded.
	block struct {
		// stream is 0 outside a block, and in a block whose HEADERS frame
		// the Framer rejected: the server decodes none of it either.
		stream    uint32
		malformed bool
		te        int // TE fields
	}
}

// newH2Conn returns tc read through an h2Conn, for an HTTP/2 server that
// takes header lists of maxHeaderBytes.
func newH2Conn(tc *tls.Conn, maxHeaderBytes int) *h2Conn {
	st := tc.ConnectionState()
	c := &h2Conn{Conn: tc, tlsState: &st, left: len(http2.ClientPreface)}
	c.fr = http2.NewFramer(&c.wbuf, recorder{c})
	c.fr.SetMaxReadFrameSize(h2MaxFrameSize)
	c.dec = hpack.NewDecoder(h2HeaderTableSize, c.field)
	// The server's limit on one string: its header list limit, which
	// net/http takes as MaxHeaderBytes plus 32 bytes for each of 10 fields.
	// A string over it ends the connection there, and h2Conn stops too.
	c.dec.SetMaxStringLength(maxHeaderBytes + 10*32)
	return c
}

// recorder reads the connection for c's Framer, after c.peek, and keeps
// what it read in c.rec.
type recorder struct{ c *h2Conn }

func (r recorder) Read(p []byte) (int, error) {
	c := r.c
	if len(c.peek) > 0 {
		n := copy(p, c.peek)
		c.peek = c.peek[n:]
		return n, nil
	}
	n, err := c.Conn.Read(p)
	c.rec = append(c.rec, p[:n]...)
	return n, err
}

func (c *h2Conn) Read(p []byte) (int, error) {
	for len(c.out) == 0 && c.left == 0 && !c.off {
		if err := c.next(); err != nil {
			return 0, err
		}
	}
	if len(c.out) > 0 {
		n := copy(p, c.out)
		c.out = c.out[n:]
		return n, nil
	}
	if !c.off && len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= n
	return n, err
}

// next reads the next frame's header and, if it is one to inspect, the
// frame, and sets what the server reads next.
func (c *h2Conn) next() error {
	hdr := c.hdr[:]
	if _, err := io.ReadFull(c.Conn, hdr); err != nil {
		return err
	}
	switch http2.FrameType(hdr[3]) {
	case http2.FrameHeaders, http2.FrameContinuation:
		c.inBlock = hdr[4]&byte(http2.FlagHeadersEndHeaders) == 0
	case http2.FrameSettings:
	default:
		// Inside a header block fr reads it too, to find the error the
		// server finds.
		if !c.inBlock {
			c.out, c.left = hdr, frameLen(hdr)
			return nil
		}
	}
	c.rec = append(c.rec[:0], hdr...)
	c.peek = hdr
	f, err := c.fr.ReadFrame()
	c.out, c.peek = c.rec, nil
	if err != nil {
		// A stream error leaves the connection and the HPACK state as
		// they are, here and in the server alike; anything else ends the
		// connection, and fr cannot follow it further.
		var se http2.StreamError
		if !errors.As(err, &se) {
			c.off = true
		}
		return nil
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if settings, dup := dedupSettings(f); dup {
			c.wbuf.Reset()
			c.fr.WriteSettings(settings...)
			c.out = c.wbuf.Bytes()
		}
	case *http2.HeadersFrame:
		c.block.stream, c.block.malformed, c.block.te = f.StreamID, false, 0
		c.decode(f.HeaderBlockFragment(), f.HeadersEnded())
	case *http2.ContinuationFrame:
		if c.block.stream != 0 {
			c.decode(f.HeaderBlockFragment(), f.HeadersEnded())
		}
	}
	return nil
}

// decode decodes the fragment of the header block in c.rec; at its end
// it marks a malformed block as such.
func (c *h2Conn) decode(frag []byte, end bool) {
	if _, err := c.dec.Write(frag); err != nil {
		c.off = true // COMPRESSION_ERROR: the server closes the connection
		return
	}
	if !end {
		return
	}
	if err := c.dec.Close(); err != nil {
		c.off = true
		return
	}
	if c.block.malformed {
		// The frame loses END_HEADERS (the same bit in HEADERS and
		// CONTINUATION), and a CONTINUATION with malformedField ends
		// the block.
		c.rec[4] &^= byte(http2.FlagHeadersEndHeaders)
		c.wbuf.Reset()
		c.fr.WriteContinuation(c.block.stream, true, malformedField)
		c.rec = append(c.rec, c.wbuf.Bytes()...)
		c.out = c.rec
	}
	c.block.stream = 0
}

// field notes a field of the header block being decoded.
func (c *h2Conn) field(f hpack.HeaderField) {
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		c.block.malformed = true
	case "te":
		c.block.te++
		if c.block.te > 1 || !strings.EqualFold(f.Value, "trailers") {
			c.block.malformed = true
		}
	}
}

// dedupSettings reports whether f names a setting more than once and if
// so returns the settings it amounts to when applied in order (§6.5.3):
// the last value of each; or, when a value is invalid, that first invalid
// one alone, which the server rejects with the error the RFC asks for.
func dedupSettings(f *http2.SettingsFrame) ([]http2.Setting, bool) {
	if f.IsAck() || !f.HasDuplicates() {
		return nil, false
	}
	var out []http2.Setting
	errInvalid := errors.New("invalid setting")
	f.ForeachSetting(func(s http2.Setting) error {
		if s.Valid() != nil {
			out = []http2.Setting{s}
			return errInvalid
		}
		for i := range out {
			if out[i].ID == s.ID {
				out[i].Val = s.Val
				return nil
			}
		}
		out = append(out, s)
		return nil
	})
	return out, true
}

// frameLen is the payload length in the frame header at the start of b.
func frameLen(b []byte) int { return int(b[0])<<16 | int(b[1])<<8 | int(b[2]) }
