// Package acme obtains and renews the proxy's certificates over ACME with
// certmagic: for the names baton serves (each slot's APP.DOMAIN /
// APP-SLOT.DOMAIN and the custom domains), answering HTTP-01 on the
// plain-HTTP listener and TLS-ALPN-01 on the proxy's TLS listener, and
// keeping everything in baton's store (Storage), so every controller
// sharing the store serves the same certificates and each is obtained
// once.
package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonhq/baton"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// Config configures a Manager.
type Config struct {
	// Email is the ACME account's contact; CA the directory URL (default
	// Let's Encrypt); CARoot, when set, a PEM file of the roots that sign
	// the CA's own HTTPS certificate (a private or test CA).
	Email, CA, CARoot string
	// Storage keeps certificates, keys, the account and challenges.
	Storage *Storage
	// Names lists every name baton serves now (for the store: all apps).
	Names func(ctx context.Context) ([]string, error)
	// HTTPAddr and TLSAddr are the bound plain-HTTP and TLS listeners that
	// answer the challenges (certmagic does not listen itself).
	HTTPAddr, TLSAddr string
	// RenewCheckInterval is how often certificates are checked for
	// renewal (default certmagic's, 10 minutes).
	RenewCheckInterval time.Duration
	// DisableARI renews by the certificate's lifetime alone (the last
	// third), not in the window the CA suggests (ACME Renewal Info).
	DisableARI bool
	// OnChange, when set, is called with the names whose certificate was
	// obtained or renewed (the proxy forgets what it cached).
	OnChange func(names ...string)
	Logger   *slog.Logger
}

// Manager keeps certificates for the names baton serves.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	cache *certmagic.Cache
	// magic manages the served names: obtains them (ManageAsync) and
	// renews them (certmagic's maintenance skips on-demand configs);
	// demand answers handshakes, obtaining a certificate on demand for a
	// served name not managed yet. Both share the cache and the storage.
	magic, demand *certmagic.Config
	issuer        *certmagic.ACMEIssuer

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	kick   chan struct{}

	mu sync.Mutex
	// served is the set of names baton serves, as last synced; managed
	// those handed to certmagic.
	served, managed map[string]bool
	lastLoad        time.Time
	// events holds what this controller saw of each name's certificate.
	events map[string]*nameEvents

	obtained, renewed, failed atomic.Uint64
}

type nameEvents struct {
	renewedAt, errorAt time.Time
	err                string
}

// New builds a Manager; Open starts it.
func New(cfg Config) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Email == "" {
		return nil, errors.New("--acme-email is required for ACME")
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1),
		served: map[string]bool{}, managed: map[string]bool{}, events: map[string]*nameEvents{}}
	m.ctx, m.cancel = context.WithCancelCause(context.Background())
	var roots *x509.CertPool
	if cfg.CARoot != "" {
		pem, err := os.ReadFile(cfg.CARoot)
		if err != nil {
			return nil, fmt.Errorf("--acme-ca-root: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--acme-ca-root %s: no PEM certificate in it", cfg.CARoot)
		}
	}
	host, httpPort, err := splitPort(cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("ACME needs the plain-HTTP listener (--proxy-http) for HTTP-01: %w", err)
	}
	_, tlsPort, err := splitPort(cfg.TLSAddr)
	if err != nil {
		return nil, fmt.Errorf("ACME needs the proxy's TLS listener: %w", err)
	}
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.magic, nil },
		RenewCheckInterval: cfg.RenewCheckInterval,
		Logger:             zap.NewNop(),
	})
	template := certmagic.Config{Storage: cfg.Storage, OnEvent: m.onEvent, DisableARI: cfg.DisableARI, Logger: zap.NewNop()}
	m.magic = certmagic.New(m.cache, template)
	template.OnDemand = &certmagic.OnDemandConfig{DecisionFunc: m.decide}
	m.demand = certmagic.New(m.cache, template)
	ca := cfg.CA
	if ca == "" {
		ca = certmagic.LetsEncryptProductionCA
	}
	m.issuer = certmagic.NewACMEIssuer(m.magic, certmagic.ACMEIssuer{
		CA: ca, Email: cfg.Email, Agreed: true, TrustedRoots: roots,
		// baton's own listeners answer; certmagic, finding these ports
		// taken, listens on nothing.
		ListenHost: host, AltHTTPPort: httpPort, AltTLSALPNPort: tlsPort,
		Logger: zap.NewNop(),
	})
	m.magic.Issuers = []certmagic.Issuer{m.issuer}
	m.demand.Issuers = []certmagic.Issuer{m.issuer}
	return m, nil
}

func splitPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	var p int
	if _, err := fmt.Sscan(port, &p); err != nil || p <= 0 {
		return "", 0, fmt.Errorf("address %s has no port", addr)
	}
	return host, p, nil
}

// Open starts the Manager: it syncs the served names now (in the
// background: issuance must not hold up start-up) and whenever Sync asks.
func (m *Manager) Open() {
	m.wg.Add(1)
	go m.loop()
	m.Sync()
}

// Sync asks for the served names to be read again (an app, slot or
// domain changed); it does not block.
func (m *Manager) Sync() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// syncEvery also catches changes made through other controllers.
const syncEvery = 5 * time.Second

func (m *Manager) loop() {
	defer m.wg.Done()
	t := time.NewTicker(syncEvery)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.kick:
		case <-t.C:
		}
		if err := m.sync(m.ctx); err != nil && m.ctx.Err() == nil {
			m.log.Warn("acme: read the served names", "err", err)
		}
	}
}

// sync hands new names to certmagic and stops renewing removed ones.
func (m *Manager) sync(ctx context.Context) error {
	names, err := m.cfg.Names(ctx)
	if err != nil {
		return err
	}
	next := map[string]bool{}
	for _, n := range names {
		if certmagic.SubjectQualifiesForCert(n) {
			next[strings.ToLower(n)] = true
		}
	}
	m.mu.Lock()
	m.served, m.lastLoad = next, time.Now()
	var add []string
	var gone []certmagic.SubjectIssuer
	for n := range next {
		if !m.managed[n] {
			m.managed[n] = true
			add = append(add, n)
		}
	}
	for n := range m.managed {
		if !next[n] {
			delete(m.managed, n)
			gone = append(gone, certmagic.SubjectIssuer{Subject: n, IssuerKey: m.issuer.IssuerKey()})
		}
	}
	m.mu.Unlock()
	if len(gone) > 0 {
		m.cache.RemoveManaged(gone)
	}
	if len(add) == 0 {
		return nil
	}
	slices.Sort(add)
	m.log.Info("acme: managing certificates", "names", add)
	// The manager's context, not ctx: certmagic's obtain jobs outlive
	// the call (ctx may be a handshake's, cancelled as it returns, and
	// the names are marked managed already).
	return m.magic.ManageAsync(m.ctx, add)
}

// decide is the on-demand DecisionFunc: a certificate only for a name
// baton serves, never for whatever a client puts in its SNI. A name not
// seen yet (added a moment ago) reads the names again, at most once a
// second.
func (m *Manager) decide(ctx context.Context, name string) error {
	name = strings.ToLower(name)
	m.mu.Lock()
	ok, stale := m.served[name], time.Since(m.lastLoad) > time.Second
	m.mu.Unlock()
	if ok {
		return nil
	}
	if stale {
		if err := m.sync(ctx); err != nil {
			return err
		}
		m.mu.Lock()
		ok = m.served[name]
		m.mu.Unlock()
		if ok {
			return nil
		}
	}
	return fmt.Errorf("baton serves no app at %s", name)
}

// onEvent records what happened to each name's certificate.
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	switch event {
	case "cert_obtained":
		renewal, _ := data["renewal"].(bool)
		if renewal {
			m.renewed.Add(1)
		} else {
			m.obtained.Add(1)
		}
		m.mu.Lock()
		e := m.eventsOf(name)
		e.renewedAt, e.err, e.errorAt = time.Now(), "", time.Time{}
		m.mu.Unlock()
		m.log.Info("acme: certificate obtained", "name", name, "renewal", renewal, "issuer", data["issuer"])
		if m.cfg.OnChange != nil {
			m.cfg.OnChange(name)
		}
	case "cert_failed":
		m.failed.Add(1)
		msg := fmt.Sprint(data["error"])
		m.mu.Lock()
		e := m.eventsOf(name)
		e.err, e.errorAt = msg, time.Now()
		m.mu.Unlock()
		m.log.Warn("acme: obtaining a certificate failed", "name", name, "renewal", data["renewal"], "err", msg)
	case "cached_managed_cert":
		if m.cfg.OnChange != nil {
			if sans, ok := data["sans"].([]string); ok {
				m.cfg.OnChange(sans...)
			}
		}
	}
	return nil
}

func (m *Manager) eventsOf(name string) *nameEvents {
	e := m.events[name]
	if e == nil {
		e = &nameEvents{}
		m.events[name] = e
	}
	return e
}

// handshakeObtainTimeout bounds how long a handshake waits for a
// certificate obtained on demand.
const handshakeObtainTimeout = 15 * time.Second

// GetCertificate answers a TLS handshake: TLS-ALPN-01 challenges, cached
// certificates, and on-demand issuance for names baton serves. A
// handshake waits for an issuance at most handshakeObtainTimeout, and not
// past Close. (The proxy asks only when its own per-name cache misses.)
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	ctx, cancel := context.WithTimeout(hello.Context(), handshakeObtainTimeout)
	defer cancel()
	defer context.AfterFunc(m.ctx, cancel)()
	return m.demand.GetCertificateWithContext(ctx, hello)
}

// HTTPHandler answers HTTP-01 challenges and hands everything else to next.
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	return m.issuer.HTTPChallengeHandler(next)
}

// Certificate reports what this controller knows of name's certificate.
func (m *Manager) Certificate(name string) (baton.CertificateStatus, bool) {
	name = strings.ToLower(name)
	m.mu.Lock()
	served := m.served[name]
	var e nameEvents
	if p := m.events[name]; p != nil {
		e = *p
	}
	m.mu.Unlock()
	cs := baton.CertificateStatus{Name: name, LastError: e.err}
	if !e.renewedAt.IsZero() {
		cs.RenewedAt = &e.renewedAt
	}
	if !e.errorAt.IsZero() {
		cs.LastErrorAt = &e.errorAt
	}
	for _, c := range m.cache.AllMatchingCertificates(name) {
		if leaf := c.Leaf; leaf != nil && (cs.NotAfter == nil || leaf.NotAfter.After(*cs.NotAfter)) {
			nb, na := leaf.NotBefore, leaf.NotAfter
			cs.NotBefore, cs.NotAfter = &nb, &na
			cs.Issuer = leaf.Issuer.CommonName
		}
	}
	return cs, served || cs.NotAfter != nil || cs.LastError != ""
}

// CertificateStatuses lists Certificate for every served name.
func (m *Manager) CertificateStatuses() []baton.CertificateStatus {
	m.mu.Lock()
	names := make([]string, 0, len(m.served))
	for n := range m.served {
		names = append(names, n)
	}
	m.mu.Unlock()
	slices.Sort(names)
	out := make([]baton.CertificateStatus, 0, len(names))
	for _, n := range names {
		cs, _ := m.Certificate(n)
		out = append(out, cs)
	}
	return out
}

// Obtained counts the certificates this controller obtained and renewed
// itself, and its failed attempts.
func (m *Manager) Obtained() (obtained, renewed, failed uint64) {
	return m.obtained.Load(), m.renewed.Load(), m.failed.Load()
}

// Close stops syncing and renewing, and releases the storage's locks.
func (m *Manager) Close() error {
	m.cancel(errors.New("baton is shutting down"))
	m.wg.Wait()
	m.cache.Stop()
	return m.cfg.Storage.Close()
}
