package proxy

import (
	"bytes"
	"net"
	"strconv"
)

// This file writes the heads the data plane sends: the request to the
// upstream and the response to the client. Both drop hop-by-hop fields
// (RFC 9110 7.6.1): they describe one connection, not the message.

// appendUpstreamRequest appends the head forwarded to the upstream for r.
// fwd is the client connection's precomputed forwarding fields (see
// forwardedFor); the client's own X-Forwarded-* and Forwarded fields are
// dropped because baton is the edge and they would be spoofable. On a peer
// listener (trusted: the client is another host's proxy, which set them
// from its own client) they pass through instead, and are only added when
// the request came without an X-Forwarded-For. pin, when set, is the
// revision a request sent to another host's peer listener must be served
// by (the client's own Baton-Revision, if it sent one, names it already);
// peerKey, when set, is the cluster's key that listener asks for.
func appendUpstreamRequest(b []byte, r *request, fwd *clientAddr, trusted bool, pin string, peerKey []byte) []byte {
	b = append(b, r.method...)
	b = append(b, ' ')
	b = append(b, originForm(r.target)...)
	b = append(b, " HTTP/1.1\r\n"...)
	// An absolute target names the host, and the Host field must agree
	// with what the request was routed by (RFC 9112 3.2.2).
	_, absolute := absoluteAuthority(r.target)
	trusted = trusted && hasField(r, "x-forwarded-for")
	for _, f := range r.fields {
		passed := trusted && isForwardingField(f.name)
		if !passed && (dropRequestField(f, r) || (absolute && is(f.name, "host"))) {
			continue
		}
		b = append(b, f.name...)
		b = append(b, ": "...)
		b = append(b, f.value...)
		b = append(b, "\r\n"...)
	}
	if r.host != nil && (absolute || (r.http10 && !hasField(r, "host"))) {
		b = appendField(b, "Host", r.host)
	}
	if r.upgrade != nil {
		b = append(b, "Connection: Upgrade\r\nUpgrade: "...)
		b = append(b, r.upgrade...)
		b = append(b, "\r\n"...)
	}
	if pin != "" && r.pin == nil {
		b = append(b, PinHeader+": "...)
		b = append(b, pin...)
		b = append(b, "\r\n"...)
	}
	if peerKey != nil {
		b = append(b, PeerKeyHeader+": "...)
		b = append(b, peerKey...)
		b = append(b, "\r\n"...)
	}
	if trusted {
		return append(b, "\r\n"...)
	}
	b = append(b, "X-Forwarded-For: "...)
	b = append(b, fwd.ip...)
	b = append(b, "\r\nX-Forwarded-Host: "...)
	b = append(b, r.host...)
	b = append(b, "\r\nX-Forwarded-Proto: "...)
	b = append(b, fwd.proto...)
	b = append(b, "\r\nForwarded: "...)
	b = append(b, fwd.forwardedFor...)
	b = append(b, ";host=\""...)
	b = appendQuotedContent(b, r.host)
	b = append(b, "\";proto="...)
	b = append(b, fwd.proto...)
	return append(b, "\r\n\r\n"...)
}

// isForwardingField reports whether name is one of the fields that say
// who the client was (X-Forwarded-For, -Host, -Proto, Forwarded).
func isForwardingField(name []byte) bool {
	switch len(name) {
	case 9:
		return is(name, "forwarded")
	case 15:
		return is(name, "x-forwarded-for")
	case 16:
		return is(name, "x-forwarded-host")
	case 17:
		return is(name, "x-forwarded-proto")
	}
	return false
}

func hasField(r *request, name string) bool {
	for _, f := range r.fields {
		if is(f.name, name) {
			return true
		}
	}
	return false
}

func appendField(b []byte, name string, value []byte) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// dropRequestField reports whether f must not be forwarded upstream: the
// hop-by-hop fields, and the client's forwarding fields (baton sets its
// own).
func dropRequestField(f field, r *request) bool {
	n := f.name
	if isForwardingField(n) {
		return true
	}
	switch len(n) {
	case 2:
		// TE: only "trailers" means something end to end (gRPC needs it).
		return is(n, "te") && !is(f.value, "trailers")
	case 14:
		// The cluster's peer key is for peer listeners, never for apps;
		// appendUpstreamRequest adds this host's own toward a peer.
		if is(n, "baton-peer-key") {
			return true
		}
	case 7:
		return is(n, "upgrade") // re-added for upgrade requests
	case 10:
		if is(n, "connection") || is(n, "keep-alive") {
			return true
		}
	case 16:
		if is(n, "proxy-connection") {
			return true
		}
	case 19:
		if is(n, "proxy-authorization") {
			return true
		}
	}
	return r.connTokens && listsName(r.connection, n)
}

// listsName reports whether the Connection value v names the field name.
func listsName(v, name []byte) bool {
	for t := range bytes.SplitSeq(v, []byte(",")) {
		if asciiEqualFold(trimOWS(t), name) {
			return true
		}
	}
	return false
}

func asciiEqualFold(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// appendQuotedContent appends v escaped for a quoted-string.
func appendQuotedContent(b, v []byte) []byte {
	for _, c := range v {
		if c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return b
}

// respFraming is how the data plane frames a response body to the client.
type respFraming int

const (
	frameNone    respFraming = iota // no body
	frameLength                     // Content-Length, copied as is
	frameChunked                    // chunked, copied verbatim (trailers included)
	frameDechunk                    // chunked from upstream, raw to an HTTP/1.0 client
	frameEOF                        // read until the upstream closes
)

// appendClientResponse appends the head sent to the client for resp.
// cookieRev, when set, is the revision the sticky cookie is set to (Secure
// when secure: the client connection is TLS).
func appendClientResponse(b []byte, resp *response, framing respFraming, keepAlive, http10 bool, cookieRev string, secure bool) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = append(b, resp.statusLine...)
	b = append(b, "\r\n"...)
	for _, f := range resp.fields {
		if dropResponseField(f, resp, framing) {
			continue
		}
		b = append(b, f.name...)
		b = append(b, ": "...)
		b = append(b, f.value...)
		b = append(b, "\r\n"...)
	}
	if cookieRev != "" {
		b = appendSetCookie(b, cookieRev, secure)
	}
	switch {
	case !keepAlive:
		b = append(b, "Connection: close\r\n"...)
	case http10:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	return append(b, "\r\n"...)
}

func dropResponseField(f field, resp *response, framing respFraming) bool {
	n := f.name
	switch len(n) {
	case 2:
		return is(n, "te")
	case 7:
		return is(n, "upgrade")
	case 10:
		if is(n, "connection") || is(n, "keep-alive") {
			return true
		}
	case 14:
		if is(n, "content-length") {
			return framing == frameChunked || framing == frameDechunk
		}
	case 16:
		if is(n, "proxy-connection") {
			return true
		}
	case 17:
		if is(n, "transfer-encoding") {
			return framing == frameDechunk
		}
	case 18:
		if is(n, "proxy-authenticate") {
			return true
		}
	}
	return resp.connTokens && listsName(resp.connection, n)
}

// appendSwitchingProtocols appends the 101 head for an upgrade: the
// upstream's fields plus the Connection and Upgrade it agreed to.
func appendSwitchingProtocols(b []byte, resp *response) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = append(b, resp.statusLine...)
	b = append(b, "\r\n"...)
	for _, f := range resp.fields {
		if is(f.name, "connection") || is(f.name, "keep-alive") || is(f.name, "proxy-connection") {
			continue
		}
		b = append(b, f.name...)
		b = append(b, ": "...)
		b = append(b, f.value...)
		b = append(b, "\r\n"...)
	}
	return append(b, "Connection: Upgrade\r\n\r\n"...)
}

// clientAddr is what the forwarding fields say about one client
// connection, computed once per connection rather than per request.
type clientAddr struct {
	ip           []byte // X-Forwarded-For value
	forwardedFor []byte // `for=...` of the Forwarded field
	proto        string // "https" on a TLS connection, else "http"
}

func newClientAddr(a net.Addr, https bool) clientAddr {
	proto := "http"
	if https {
		proto = "https"
	}
	var ip string
	if ta, ok := a.(*net.TCPAddr); ok {
		ip = ta.IP.String()
	} else if host, _, err := net.SplitHostPort(a.String()); err == nil {
		ip = host
	} else {
		ip = a.String()
	}
	ff := "for=" + ip
	if parsed := net.ParseIP(ip); parsed == nil || parsed.To4() == nil {
		// IPv6 (and anything odd) must be a quoted string (RFC 7239 6).
		ff = "for=" + strconv.Quote("["+ip+"]")
	}
	return clientAddr{ip: []byte(ip), forwardedFor: []byte(ff), proto: proto}
}
