package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"unsafe"
)

// This file reads and parses HTTP/1.x message heads for the proxy's own
// data plane (Serve). Heads are copied into a per-connection buffer and
// parsed in place: fields are slices into that buffer, valid until the
// next head is read, so parsing allocates nothing.

// field is one header field of a parsed head, as slices into its buffer.
type field struct{ name, value []byte }

var (
	errHeadTooLarge = errors.New("header too large")
	errMalformed    = errors.New("malformed message head")
)

// readHead appends one message head (start line through the empty line)
// from br to dst[:0] and returns it. Empty lines before the start line are
// skipped, as RFC 9112 allows. It fails with errHeadTooLarge past limit
// bytes and returns io.EOF only when the connection ended cleanly before a
// new head began.
func readHead(br *bufio.Reader, dst []byte, limit int) ([]byte, error) {
	dst = dst[:0]
	lineStart := 0
	for {
		line, err := br.ReadSlice('\n')
		if len(dst)+len(line) > limit {
			return dst, errHeadTooLarge
		}
		dst = append(dst, line...)
		switch {
		case err == bufio.ErrBufferFull:
			continue // a long line: keep appending to it
		case err != nil:
			if err == io.EOF && len(dst) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return dst, err
		}
		n := len(dst) - lineStart
		if n == 1 || (n == 2 && dst[lineStart] == '\r') {
			if lineStart == 0 {
				dst = dst[:0] // a stray CRLF before the start line
				continue
			}
			return dst, nil
		}
		lineStart = len(dst)
	}
}

// nextLine splits the first line off b, without its CRLF or LF.
func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// parseFields parses the field lines in b (the head after its start line)
// into fields, appended to dst[:0].
func parseFields(b []byte, dst []field) ([]field, error) {
	dst = dst[:0]
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if len(line) == 0 {
			break
		}
		name, value, ok := parseFieldLine(line)
		if !ok {
			return dst, errMalformed
		}
		dst = append(dst, field{name: name, value: value})
	}
	return dst, nil
}

// parseFieldLine splits one field line (without its CRLF) into name and
// value. It refuses obsolete line folding, a name that is not a token
// (which also refuses "Name :", a smuggling vector), and CR or NUL in the
// value.
func parseFieldLine(line []byte) (name, value []byte, ok bool) {
	if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
		return nil, nil, false // empty, or obsolete line folding
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, false
	}
	name = line[:colon]
	for _, c := range name {
		if !isTokenChar(c) {
			return nil, nil, false
		}
	}
	value = trimOWS(line[colon+1:])
	for _, c := range value {
		// RFC 9110 5.5: no control characters but HTAB in a value (CR,
		// LF and NUL among them); net/http refuses them too, so an
		// upstream would read a trailer the proxy passed differently.
		if (c < ' ' && c != '\t') || c == 0x7f {
			return nil, nil, false
		}
	}
	return name, value, true
}

// validFieldLine reports whether line (without its CRLF) is a field line.
func validFieldLine(line []byte) bool {
	_, _, ok := parseFieldLine(line)
	return ok
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// isTokenChar reports whether c may appear in an RFC 9110 token.
func isTokenChar(c byte) bool {
	return c < 0x80 && tokenTable[c]
}

var tokenTable = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// is reports whether the field name b equals the lowercase name, ignoring
// case. Names are short; this is cheaper than bytes.EqualFold's Unicode
// handling.
func is(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v contains token
// (case-insensitive), as in Connection: keep-alive, Upgrade.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			t, v = v[:i], v[i+1:]
		} else {
			t, v = v, nil
		}
		if is(trimOWS(t), token) {
			return true
		}
	}
	return false
}

// parseLength parses a Content-Length value; -1 means invalid.
func parseLength(v []byte) int64 {
	if len(v) == 0 || len(v) > 18 {
		return -1
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// b2s views b as a string without copying. The string is valid only while
// b's buffer is unchanged: the data plane uses it for values that live no
// longer than the request whose head holds them (routing keys, the pin).
func b2s(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
