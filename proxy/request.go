package proxy

import (
	"bytes"
	"net/http"
)

// request is a parsed request head of the data plane. Its slices point into
// raw and are valid until the connection reads its next request.
type request struct {
	raw    []byte
	fields []field

	method, target []byte
	// http10 is true for HTTP/1.0 clients: no chunked encoding, keep-alive
	// only when asked for.
	http10 bool
	// host is the Host header (or the authority of an absolute target).
	host []byte
	// length is the Content-Length, -1 when absent; chunked is set for
	// Transfer-Encoding: chunked. A request has a body if either says so.
	length  int64
	chunked bool
	// keepAlive: the client wants the connection kept after the response.
	keepAlive bool
	// upgrade is the Upgrade header when Connection lists "upgrade".
	upgrade []byte
	// connTokens: Connection lists field names besides close, keep-alive and
	// upgrade; those fields are hop-by-hop and must be dropped.
	connTokens bool
	connection []byte
	// pin is the Baton-Revision header; cookie the Cookie header that
	// carries the sticky revision (or the first Cookie header).
	pin, cookie []byte
	// peerKey is the Baton-Peer-Key field: on a peer listener, the
	// cluster's key the sending host's proxy added (Config.PeerKey).
	peerKey []byte
	// idempotencyKey: the client declared the request safe to repeat.
	idempotencyKey bool
}

// replayable reports whether the request may be sent a second time when
// its first sending may have reached the upstream (a pooled connection
// that turned out closed), as net/http's Transport decides it.
func (r *request) replayable() bool {
	switch string(r.method) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return r.idempotencyKey
}

// hasBody reports whether a body follows the head.
func (r *request) hasBody() bool { return r.chunked || r.length > 0 }

// parseError is a request the data plane refuses before routing it.
type parseError struct {
	status int
	detail string
}

// parse parses r.raw. It accepts only what it can forward unambiguously:
// request smuggling lives in the gaps between two parsers' leniencies.
func (r *request) parse() *parseError {
	line, rest := nextLine(r.raw)
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return &parseError{http.StatusBadRequest, "malformed request line"}
	}
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp2 <= sp1+1 {
		return &parseError{http.StatusBadRequest, "malformed request line"}
	}
	r.method, r.target = line[:sp1], line[sp1+1:sp2]
	for _, c := range r.method {
		if !isTokenChar(c) {
			return &parseError{http.StatusBadRequest, "malformed request method"}
		}
	}
	if string(r.method) == http.MethodConnect {
		// Apps are origins, not tunnels to elsewhere.
		return &parseError{http.StatusMethodNotAllowed, "CONNECT is not served"}
	}
	for _, c := range r.target {
		if c <= ' ' || c == 0x7f {
			return &parseError{http.StatusBadRequest, "malformed request target"}
		}
	}
	switch proto := line[sp2+1:]; string(proto) {
	case "HTTP/1.1":
		r.http10, r.keepAlive = false, true
	case "HTTP/1.0":
		r.http10, r.keepAlive = true, false
	default:
		return &parseError{http.StatusHTTPVersionNotSupported, "only HTTP/1.0 and HTTP/1.1 are served on this listener"}
	}

	var err error
	if r.fields, err = parseFields(rest, r.fields); err != nil {
		return &parseError{http.StatusBadRequest, "malformed header field"}
	}
	r.host, r.length, r.chunked = nil, -1, false
	r.upgrade, r.connTokens, r.connection, r.pin, r.cookie, r.peerKey = nil, false, nil, nil, nil, nil
	r.idempotencyKey = false
	hosts, upgrade := 0, []byte(nil)
	for i := range r.fields {
		f := &r.fields[i]
		switch len(f.name) {
		case 4:
			if is(f.name, "host") {
				r.host = f.value
				hosts++
			}
		case 6:
			if is(f.name, "cookie") && (r.cookie == nil || bytes.Contains(f.value, []byte(CookieName+"="))) {
				r.cookie = f.value
			}
		case 7:
			if is(f.name, "upgrade") {
				upgrade = f.value
			}
		case 10:
			if is(f.name, "connection") {
				if err := r.parseConnection(f.value); err != nil {
					return err
				}
			}
		case 14:
			if is(f.name, "content-length") {
				n := parseLength(f.value)
				if n < 0 || (r.length >= 0 && r.length != n) {
					return &parseError{http.StatusBadRequest, "invalid Content-Length"}
				}
				r.length = n
			} else if is(f.name, "baton-revision") {
				r.pin = f.value
			} else if is(f.name, "baton-peer-key") {
				r.peerKey = f.value
			}
		case 15:
			r.idempotencyKey = r.idempotencyKey || is(f.name, "idempotency-key")
		case 17:
			if is(f.name, "transfer-encoding") {
				if r.chunked || !is(f.value, "chunked") {
					return &parseError{http.StatusNotImplemented, "only Transfer-Encoding: chunked is supported"}
				}
				r.chunked = true
			}
		}
	}
	if r.chunked && (r.length >= 0 || r.http10) {
		// Both framings at once is the classic smuggling request.
		return &parseError{http.StatusBadRequest, "Transfer-Encoding with Content-Length or on HTTP/1.0"}
	}
	if hosts > 1 || (hosts == 0 && !r.http10) {
		return &parseError{http.StatusBadRequest, "exactly one Host header is required"}
	}
	// An absolute target ("GET http://app.example/ HTTP/1.1") names the
	// host it is for; RFC 9112 says it wins over the Host header.
	if auth, ok := absoluteAuthority(r.target); ok {
		r.host = auth
	}
	if r.upgrade == nil && upgrade != nil && r.connection != nil && hasToken(r.connection, "upgrade") {
		r.upgrade = upgrade
	}
	return nil
}

func (r *request) parseConnection(v []byte) *parseError {
	if r.connection != nil {
		// Two Connection fields are legal but unheard of; merging them
		// would allocate, refusing is clearer than guessing.
		return &parseError{http.StatusBadRequest, "more than one Connection header"}
	}
	r.connection = v
	for t := range bytes.SplitSeq(v, []byte(",")) {
		t = trimOWS(t)
		switch {
		case is(t, "close"):
			r.keepAlive = false
		case is(t, "keep-alive"):
			if r.http10 {
				r.keepAlive = true
			}
		case is(t, "upgrade"), len(t) == 0:
		default:
			r.connTokens = true
		}
	}
	return nil
}

// absoluteAuthority returns the authority of an absolute-form target.
func absoluteAuthority(target []byte) ([]byte, bool) {
	var rest []byte
	switch {
	case len(target) > 7 && is(target[:7], "http://"):
		rest = target[7:]
	case len(target) > 8 && is(target[:8], "https://"):
		rest = target[8:]
	default:
		return nil, false
	}
	if i := bytes.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return rest, true
}

// originForm returns the target to send upstream: the path and query of an
// absolute target, the target itself otherwise.
func originForm(target []byte) []byte {
	auth, ok := absoluteAuthority(target)
	if !ok {
		return target
	}
	i := bytes.Index(target, auth) + len(auth)
	if i >= len(target) {
		return []byte("/")
	}
	if target[i] != '/' { // "http://host?q": the path is empty
		return append([]byte("/"), target[i:]...)
	}
	return target[i:]
}
