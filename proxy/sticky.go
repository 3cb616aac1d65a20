package proxy

import "strings"

// CookieName is the cookie that keeps a client on one revision while a
// route splits traffic between several (see Backend.Weight). The proxy
// sets it on responses of such routes; its value is the revision name.
const CookieName = "baton_revision"

// PinHeader is the request header that pins a request to a revision of
// the route, whatever its weight (for testing a revision before it gets
// traffic). An unknown revision is a 404 problem.
const PinHeader = "Baton-Revision"

// PeerKeyHeader carries the cluster's peer key on requests one host's
// proxy sends to another's peer listener (Config.PeerKey).
const PeerKeyHeader = "Baton-Peer-Key"

// cookieSuffix completes the Set-Cookie field after the revision name.
// Lax keeps the cookie on top-level navigation from other sites, which is
// how users arrive; HttpOnly because scripts have no business with it.
const cookieSuffix = "; Path=/; HttpOnly; SameSite=Lax"

// stickyRevision returns the value of the baton_revision cookie in a Cookie
// header value, or "". It does not allocate: the result is a substring.
func stickyRevision(cookie string) string {
	for len(cookie) > 0 {
		var pair string
		if i := strings.IndexByte(cookie, ';'); i >= 0 {
			pair, cookie = cookie[:i], cookie[i+1:]
		} else {
			pair, cookie = cookie, ""
		}
		pair = strings.TrimLeft(pair, " \t")
		if len(pair) > len(CookieName) && pair[len(CookieName)] == '=' && pair[:len(CookieName)] == CookieName {
			v := strings.TrimRight(pair[len(CookieName)+1:], " \t")
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v
		}
	}
	return ""
}

// secureSuffix ends the cookie on a TLS connection: the browser then never
// sends it over plain HTTP.
const secureSuffix = "; Secure"

// appendSetCookie appends the Set-Cookie field line for revision; secure
// on a TLS connection.
func appendSetCookie(b []byte, revision string, secure bool) []byte {
	b = append(b, "Set-Cookie: "+CookieName+"="...)
	b = append(b, revision...)
	b = append(b, cookieSuffix...)
	if secure {
		b = append(b, secureSuffix...)
	}
	return append(b, "\r\n"...)
}

// setCookieValue is the Set-Cookie value for revision (net/http path).
func setCookieValue(revision string, secure bool) string {
	if secure {
		return CookieName + "=" + revision + cookieSuffix + secureSuffix
	}
	return CookieName + "=" + revision + cookieSuffix
}
