package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/acme"
	"github.com/batonhq/baton/proxy"
)

// openCerts sets up the proxy's certificates: the static ones
// (--proxy-tls-cert) and, with --acme-email, an ACME manager on the store
// for every other name baton serves. It runs once the store is open.
func (s *Server) openCerts() error {
	cfg := s.cfg
	var static []tls.Certificate
	if s.proxyTLS != nil {
		static = s.proxyTLS.Certificates
	}
	var fallback func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	if cfg.ACMEEmail != "" {
		m, err := acme.New(acme.Config{
			Email: cfg.ACMEEmail, CA: cfg.ACMECA, CARoot: cfg.ACMECARoot,
			Storage: acme.NewStorage(s.store, cfg.ControllerID, 0),
			Names: func(ctx context.Context) ([]string, error) {
				if s.coord == nil {
					return nil, errors.New("not started")
				}
				return s.coord.ServedNames(ctx)
			},
			HTTPAddr: s.httpLn.Addr().String(), TLSAddr: s.proxyLn.Addr().String(),
			RenewCheckInterval: cfg.ACMERenewInterval, DisableARI: cfg.ACMEDisableARI,
			OnChange: func(names ...string) {
				if s.certs != nil {
					s.certs.Forget(names...)
				}
			},
			Logger: s.log,
		})
		if err != nil {
			return err
		}
		s.acme, fallback = m, m.GetCertificate
	}
	if static == nil && fallback == nil {
		return nil
	}
	s.static = static
	s.certs = proxy.NewCerts(static, fallback, 0)
	protos := []string{"h2", "http/1.1"}
	if s.acme != nil {
		protos = append(protos, proxy.ACMETLSALPNProto)
	}
	s.proxyTLS = &tls.Config{GetCertificate: s.certs.GetCertificate, NextProtos: protos, MinVersion: tls.VersionTLS12}
	return nil
}

// namesChanged is the coordinator's OnNames: certificates follow the names.
func (s *Server) namesChanged() {
	if s.acme != nil {
		s.acme.Sync()
	}
}

// certificate is the coordinator's Certificates (nil without HTTPS).
func (s *Server) certificate() func(string) (baton.CertificateStatus, bool) {
	if s.certs == nil {
		return nil
	}
	return func(name string) (baton.CertificateStatus, bool) {
		if c := s.certs.Static(name); c != nil && c.Leaf != nil {
			nb, na := c.Leaf.NotBefore, c.Leaf.NotAfter
			return baton.CertificateStatus{Name: name, Static: true, Issuer: c.Leaf.Issuer.CommonName, NotBefore: &nb, NotAfter: &na}, true
		}
		if s.acme != nil {
			return s.acme.Certificate(name)
		}
		return baton.CertificateStatus{}, false
	}
}

// certSource exports the certificates to /metrics.
type certSource struct{ s *Server }

func (c certSource) CertificateStatuses() []baton.CertificateStatus {
	var out []baton.CertificateStatus
	if c.s.acme != nil {
		out = c.s.acme.CertificateStatuses()
	}
	for _, pair := range c.s.static {
		if leaf := pair.Leaf; leaf != nil {
			for _, n := range leaf.DNSNames {
				nb, na := leaf.NotBefore, leaf.NotAfter
				out = append(out, baton.CertificateStatus{Name: n, Static: true, Issuer: leaf.Issuer.CommonName, NotBefore: &nb, NotAfter: &na})
			}
		}
	}
	return out
}

func (c certSource) Obtained() (obtained, renewed, failed uint64) {
	if c.s.acme == nil {
		return 0, 0, 0
	}
	return c.s.acme.Obtained()
}

// serveHTTP serves the plain-HTTP listener: ACME HTTP-01 challenges, and
// a permanent redirect to the same URL over HTTPS for everything else.
func (s *Server) serveHTTP() {
	if s.httpLn == nil {
		return
	}
	_, port, _ := net.SplitHostPort(s.ProxyAddr())
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" {
			http.Error(w, "a Host header is needed", http.StatusBadRequest)
			return
		}
		target := "https://" + host
		if port != "443" {
			target += ":" + port
		}
		http.Redirect(w, r, target+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
	if s.acme != nil {
		h = s.acme.HTTPHandler(h)
	}
	s.httpSrv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 64 << 10}
	closeUnusedOnShutdown(s.httpSrv)
	s.serve(s.httpSrv, s.httpLn)
}

// stopHTTP stops the plain-HTTP listener.
func (s *Server) stopHTTP() error {
	if s.httpSrv == nil {
		if s.httpLn != nil {
			s.httpLn.Close()
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.httpSrv.Shutdown(ctx)
	s.httpSrv = nil
	return err
}

// ProxyHTTPAddr is the bound plain-HTTP address ("" without --proxy-http).
func (s *Server) ProxyHTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}
