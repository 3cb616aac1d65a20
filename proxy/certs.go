package proxy

import (
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Certs picks the certificate of each TLS handshake by its server name
// (SNI), for a tls.Config's GetCertificate. Static certificates (the
// operator's) win for every name they cover; other names go to a
// fallback (baton's ACME manager), whose answer is kept per name for a
// short while, so the handshakes in between cost a lock-free map lookup
// and no allocation. ACME's TLS-ALPN-01 challenge handshakes always go to
// the fallback.
type Certs struct {
	// exact and wild hold the static certificates by name and, for
	// "*.example.com", by "example.com"; def is the first, for clients
	// that send no server name.
	exact, wild map[string]*tls.Certificate
	def         *tls.Certificate
	fallback    func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	ttl         time.Duration

	// cache holds the fallback's certificates by name; it is replaced
	// whole under mu.
	cache atomic.Pointer[map[string]*cachedCert]
	mu    sync.Mutex
}

type cachedCert struct {
	cert *tls.Certificate
	// until is when the entry must be asked for again (unix ns): a short
	// while after it was cached, so a renewed certificate takes over, and
	// never after the certificate expires.
	until int64
}

// DefaultCertCacheTTL is how long Certs keeps a fallback's certificate
// before asking for it again.
const DefaultCertCacheTTL = 10 * time.Second

// ACMETLSALPNProto is the ALPN protocol of ACME's TLS-ALPN-01 challenge
// (RFC 8737).
const ACMETLSALPNProto = "acme-tls/1"

// NewCerts returns Certs serving static (each with its Leaf parsed, as
// tls.LoadX509KeyPair does) and asking fallback (may be nil) for the
// other names; ttl 0 is DefaultCertCacheTTL.
func NewCerts(static []tls.Certificate, fallback func(*tls.ClientHelloInfo) (*tls.Certificate, error), ttl time.Duration) *Certs {
	if ttl <= 0 {
		ttl = DefaultCertCacheTTL
	}
	c := &Certs{exact: map[string]*tls.Certificate{}, wild: map[string]*tls.Certificate{}, fallback: fallback, ttl: ttl}
	for i := range static {
		cert := &static[i]
		if c.def == nil {
			c.def = cert
		}
		if cert.Leaf == nil {
			continue
		}
		for _, n := range cert.Leaf.DNSNames {
			n = strings.ToLower(n)
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				if _, dup := c.wild[rest]; !dup {
					c.wild[rest] = cert
				}
			} else if _, dup := c.exact[n]; !dup {
				c.exact[n] = cert
			}
		}
	}
	empty := map[string]*cachedCert{}
	c.cache.Store(&empty)
	return c
}

// Static returns the static certificate covering name, or nil.
func (c *Certs) Static(name string) *tls.Certificate {
	name = strings.ToLower(name)
	if cert := c.exact[name]; cert != nil {
		return cert
	}
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return c.wild[name[i+1:]]
	}
	return nil
}

var errNoCertificate = errors.New("proxy: no certificate for this server name")

// GetCertificate is a tls.Config's GetCertificate.
func (c *Certs) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c.fallback != nil && len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == ACMETLSALPNProto {
		return c.fallback(hello)
	}
	name := hello.ServerName
	if name == "" {
		if c.def != nil {
			return c.def, nil
		}
		if c.fallback != nil {
			return c.fallback(hello)
		}
		return nil, errNoCertificate
	}
	if len(name) > maxHostLen {
		return nil, errNoCertificate
	}
	var buf [maxHostLen]byte
	b := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		b[i] = ch
	}
	// string(b) in a map index does not allocate; a slice of it for the
	// wildcard lookup does not either.
	if cert := c.exact[string(b)]; cert != nil {
		return cert, nil
	}
	if i := indexDot(b); i >= 0 {
		if cert := c.wild[string(b[i+1:])]; cert != nil {
			return cert, nil
		}
	}
	if c.fallback == nil {
		if c.def != nil {
			return c.def, nil
		}
		return nil, errNoCertificate
	}
	if e := (*c.cache.Load())[string(b)]; e != nil && time.Now().UnixNano() < e.until {
		return e.cert, nil
	}
	cert, err := c.fallback(hello)
	if err != nil || cert == nil {
		return cert, err
	}
	c.remember(strings.ToLower(name), cert)
	return cert, nil
}

func indexDot(b []byte) int {
	for i, ch := range b {
		if ch == '.' {
			return i
		}
	}
	return -1
}

// dueRecheck is how soon a certificate in the last third of its lifetime
// (when ACME clients renew) is asked for again: the fallback swaps in the
// renewed one some moments after it announces it, and a cached old one
// must not be served to its expiry.
const dueRecheck = time.Second

// remember caches cert for name.
func (c *Certs) remember(name string, cert *tls.Certificate) {
	now := time.Now()
	until := now.Add(c.ttl)
	if leaf := cert.Leaf; leaf != nil {
		if left := leaf.NotAfter.Sub(now); left < leaf.NotAfter.Sub(leaf.NotBefore)/3 {
			until = now.Add(min(c.ttl, dueRecheck))
		}
		if leaf.NotAfter.Before(until) {
			until = leaf.NotAfter
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.cache.Load()
	next := make(map[string]*cachedCert, len(old)+1)
	for k, v := range old {
		if v.until > now.UnixNano() { // drop the stale ones while copying
			next[k] = v
		}
	}
	next[name] = &cachedCert{cert: cert, until: until.UnixNano()}
	c.cache.Store(&next)
}

// Forget drops the cached certificates of names (all when none are
// given): the next handshake asks the fallback. Call it when a
// certificate was obtained or renewed.
func (c *Certs) Forget(names ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[string]*cachedCert{}
	if len(names) > 0 {
		for k, v := range *c.cache.Load() {
			if !slices.Contains(names, k) {
				next[k] = v
			}
		}
	}
	c.cache.Store(&next)
}
