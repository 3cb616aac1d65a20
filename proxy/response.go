package proxy

import (
	"bytes"
)

// response is a parsed response head from an upstream. Its slices point
// into raw.
type response struct {
	raw    []byte
	fields []field

	status int
	// statusLine is the status code and reason phrase ("200 OK").
	statusLine []byte
	http10     bool
	length     int64
	chunked    bool
	// close: the upstream closes the connection after this response.
	close      bool
	connTokens bool
	connection []byte
}

// parse parses resp.raw; false means the upstream sent something that is
// not an HTTP/1.x response head.
func (resp *response) parse() bool {
	line, rest := nextLine(resp.raw)
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return false
	}
	switch line[7] {
	case '0':
		resp.http10 = true
	case '1':
		resp.http10 = false
	default:
		return false
	}
	code := line[9:12]
	if code[0] < '1' || code[0] > '5' || code[1] < '0' || code[1] > '9' || code[2] < '0' || code[2] > '9' {
		return false
	}
	resp.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	resp.statusLine = line[9:]
	var err error
	if resp.fields, err = parseFields(rest, resp.fields); err != nil {
		return false
	}
	resp.length, resp.chunked, resp.close, resp.connTokens, resp.connection = -1, false, resp.http10, false, nil
	for i := range resp.fields {
		f := &resp.fields[i]
		switch len(f.name) {
		case 10:
			if is(f.name, "connection") {
				resp.connection = f.value
				for t := range bytes.SplitSeq(f.value, []byte(",")) {
					t = trimOWS(t)
					switch {
					case is(t, "close"):
						resp.close = true
					case is(t, "keep-alive"):
						if resp.http10 {
							resp.close = false
						}
					case is(t, "upgrade"), len(t) == 0:
					default:
						resp.connTokens = true
					}
				}
			}
		case 14:
			if is(f.name, "content-length") {
				n := parseLength(f.value)
				if n < 0 || (resp.length >= 0 && resp.length != n) {
					return false
				}
				resp.length = n
			}
		case 17:
			if is(f.name, "transfer-encoding") {
				// Anything but plain chunked (gzip, chunked) is read to EOF,
				// as RFC 9112 says for a final encoding other than chunked.
				if is(f.value, "chunked") && !resp.chunked {
					resp.chunked = true
				} else {
					resp.chunked, resp.close = false, true
					resp.length = -1
				}
			}
		}
	}
	if resp.chunked {
		resp.length = -1 // chunked wins over Content-Length (RFC 9112 6.3)
	}
	return true
}

// bodyless reports whether the response has no body whatever its headers
// say: answers to HEAD, 1xx, 204 and 304.
func (resp *response) bodyless(head bool) bool {
	return head || resp.status < 200 || resp.status == 204 || resp.status == 304
}
