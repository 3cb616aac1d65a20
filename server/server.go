// Package server wires the store, supervisor, proxy, coordinator and API
// into one running `baton serve`.
package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/acme"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/artifact"
	"github.com/batonhq/baton/buildinfo"
	"github.com/batonhq/baton/coordinator"
	"github.com/batonhq/baton/metrics"
	"github.com/batonhq/baton/ociimage"
	"github.com/batonhq/baton/postgres"
	"github.com/batonhq/baton/proxy"
	"github.com/batonhq/baton/sqlite"
	"github.com/batonhq/baton/supervisor"
	"github.com/batonhq/baton/webhooks"
)

// Config is the configuration of `baton serve`.
type Config struct {
	DataDir string // default ./baton-data
	// Store is "" for the embedded SQLite database in DataDir, or a
	// postgres:// URL: several controllers may then share one database.
	Store     string
	APIAddr   string // default 127.0.0.1:7070
	ProxyAddr string // default 127.0.0.1:8080
	Domain    string // default localhost
	Logger    *slog.Logger

	// ControllerID names this controller among those sharing a store
	// (default: the host name); it must stay the same across restarts.
	ControllerID string
	// Advertise is the address (IP or host name, no port) other hosts
	// sharing the store reach this one at; default 127.0.0.1.
	Advertise string
	// PeerPort is the port of the peer listener on Advertise, where the
	// other hosts' proxies forward the requests for the apps this host
	// runs (opened only on a shared store, which publishes its address to
	// the other hosts); 0: any free port.
	PeerPort int

	MaxUpload    int64         // artifact upload limit; default 1 GiB
	MaxQueue     int           // queued deployments per app; default 100
	LeaseTTL     time.Duration // default 15s
	DrainTimeout time.Duration // default 30s
	StopGrace    time.Duration // SIGTERM → SIGKILL for instances; default 5s

	// RetainRevisions is how many of the newest revisions per slot stay
	// rollbackable (default 20); DiskBudget bounds what revisions, their
	// logs and artifacts use on disk (0: 5 GiB; negative: no budget).
	RetainRevisions int
	DiskBudget      int64
	// InstanceLogMax is the size at which a revision's instance log
	// rotates (0: baton.DefaultInstanceLogMax).
	InstanceLogMax int64
	// CollectPause slows collection down (test hook; see coordinator.Config).
	CollectPause time.Duration
	// BackupPause stops every backup after its manifest for this long
	// (test hook; see backup.Source).
	BackupPause time.Duration

	MaxUploads    int           // artifact uploads in progress at once; default 8
	UploadWait    time.Duration // how long an upload waits for a slot before 429; default 30s
	AuthFailLimit int           // failed authentications per address per minute; default 10
	SecretKeyFile string        // key of secret settings; default DATA/secret.key
	// TLSCert and TLSKey, both set, serve the API over HTTPS.
	TLSCert, TLSKey string
	// ProxyTLSCert and ProxyTLSKey, both set, serve the apps over HTTPS
	// (HTTP/2 and HTTP/1.1) on ProxyAddr; upstreams stay plain HTTP/1.1.
	ProxyTLSCert, ProxyTLSKey string
	// ProxyHTTPAddr, when set, is a plain-HTTP listener that answers ACME
	// HTTP-01 challenges and redirects everything else to HTTPS.
	ProxyHTTPAddr string
	// ACMEEmail, when set, has the proxy's certificates obtained and
	// renewed over ACME from ACMECA (default Let's Encrypt), whose own
	// HTTPS certificate ACMECARoot's roots sign when set;
	// ACMERenewInterval is how often renewals are checked.
	ACMEEmail, ACMECA, ACMECARoot string
	ACMERenewInterval             time.Duration
	// ACMEDisableARI ignores the CA's suggested renewal windows (tests
	// with short-lived certificates, whose window Pebble makes their
	// whole lifetime).
	ACMEDisableARI bool

	// Webhooks are http(s) URLs that get a signed JSON event each time a
	// deployment or operation ends; WebhookSecret (or the contents of
	// WebhookSecretFile) signs them.
	Webhooks                         []string
	WebhookSecret, WebhookSecretFile string
	// WebhookBackoff is the wait after a delivery's first failed attempt
	// (default 1s), doubling per attempt up to 5 minutes.
	WebhookBackoff time.Duration
	// AccessLog, when set, is a file that gets one JSON line per request
	// the proxy answers ("-": standard output).
	AccessLog string
	// NoRequestMetrics turns the proxy's per-request counters off, and
	// the proxy's series (baton_proxy_*) out of /metrics (baton serve
	// --request-metrics=false).
	NoRequestMetrics bool
}

// The API reaches the coordinator only through its own interface.
var _ api.Coordinator = (*coordinator.Coordinator)(nil)

// Server is a running baton: API listener, proxy listener and everything
// behind them.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store baton.Store
	// rawStore is the store under the secrets wrapper, for backups.
	rawStore baton.Store
	arts     *artifact.Store
	sup      *supervisor.Supervisor
	// images holds container images (DATA/images).
	images  *ociimage.Store
	proxy   *proxy.Proxy
	coord   *coordinator.Coordinator
	metrics *metrics.Metrics
	hooks   *webhooks.Dispatcher
	// rates samples the request counters for the traffic panel; nil when
	// request metrics are off.
	rates *metrics.Rates
	// access and accessFile are the proxy's access log, nil when off.
	access     *proxy.AccessLog
	accessFile *os.File
	apiLn      net.Listener
	proxyLn    net.Listener
	// peerLn is the peer listener (PeerPort), nil alone on SQLite.
	peerLn net.Listener
	apiSrv *http.Server
	// proxyServing is set once the proxy owns proxyLn.
	proxyServing bool
	// auth checks tokens for the API, git and Kudu alike.
	auth   *api.Auth
	apiTLS bool
	// proxyTLS, when set, is the proxy listener's TLS configuration;
	// certs picks its certificate per name (static ones first, then
	// acme's when ACME is on).
	proxyTLS *tls.Config
	certs    *proxy.Certs
	static   []tls.Certificate
	acme     *acme.Manager
	// httpLn and httpSrv are the plain-HTTP listener (--proxy-http):
	// ACME HTTP-01 challenges and redirects to HTTPS.
	httpLn  net.Listener
	httpSrv *http.Server
	// stopSharing ends the wake-ups from other controllers.
	stopSharing func()
	// stopStreams ends long-lived API responses (SSE) at shutdown.
	stopStreams context.CancelFunc
	// dirLock is held while this baton owns its data directory.
	dirLock *os.File
	// apiTCP and proxyTCP are the listening sockets under any TLS, which
	// Restart hands to the next process.
	apiTCP, proxyTCP *net.TCPListener
	// handedOff is set once Restart handed everything to a new process;
	// ready, in that new process, tells the old one it serves.
	handedOff bool
	ready     *os.File
	wg        sync.WaitGroup
}

// Open starts baton: opens the store, recovers, restores live revisions,
// binds both listeners (so bind errors return here) and serves.
func Open(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "baton-data"
	}
	if cfg.APIAddr == "" {
		cfg.APIAddr = "127.0.0.1:7070"
	}
	if cfg.ProxyAddr == "" {
		cfg.ProxyAddr = "127.0.0.1:8080"
	}
	if cfg.Domain == "" {
		cfg.Domain = "localhost"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.ControllerID == "" {
		cfg.ControllerID, _ = os.Hostname()
	}
	if cfg.Advertise == "" {
		cfg.Advertise = "127.0.0.1"
	}
	if cfg.PeerPort < 0 || cfg.PeerPort > 65535 {
		return nil, fmt.Errorf("--peer-port %d: want 0..65535", cfg.PeerPort)
	}
	if strings.ContainsAny(cfg.Advertise, ":/ ") && net.ParseIP(cfg.Advertise) == nil {
		return nil, fmt.Errorf("--advertise %q: want an IP address or a host name, without a port", cfg.Advertise)
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	if err := s.open(ctx); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

func (s *Server) open(ctx context.Context) error {
	cfg := s.cfg
	// A certificate that cannot be used stops baton before anything starts.
	var err error
	if s.proxyTLS, err = s.loadProxyTLS(); err != nil {
		return err
	}
	switch {
	case cfg.ACMEEmail != "" && cfg.ProxyHTTPAddr == "":
		return errors.New("--acme-email needs --proxy-http ADDR: the plain-HTTP listener that answers HTTP-01 challenges (0.0.0.0:80 in production)")
	case cfg.ProxyHTTPAddr != "" && cfg.ACMEEmail == "" && s.proxyTLS == nil:
		return errors.New("--proxy-http redirects to HTTPS, which needs --proxy-tls-cert/--proxy-tls-key or --acme-email")
	case cfg.ACMEEmail == "" && (cfg.ACMECA != "" || cfg.ACMECARoot != ""):
		return errors.New("--acme-ca and --acme-ca-root need --acme-email")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	handoff, err := s.inheritHandoff()
	if err != nil {
		return err
	}
	if handoff == nil {
		if s.dirLock, err = lockDataDir(cfg.DataDir); err != nil {
			return err
		}
		// Listen first: a port already in use is reported before anything starts.
		if s.apiLn, err = net.Listen("tcp", cfg.APIAddr); err != nil {
			return fmt.Errorf("listen for the API on %s: %w (another baton running? pick another with --api)", cfg.APIAddr, err)
		}
		if s.proxyLn, err = proxy.Listen(cfg.ProxyAddr); err != nil {
			return fmt.Errorf("listen for the proxy on %s: %w (pick another with --proxy)", cfg.ProxyAddr, err)
		}
	}
	if cfg.ProxyHTTPAddr != "" && s.httpLn == nil { // a restart in place inherits it
		if s.httpLn, err = net.Listen("tcp", cfg.ProxyHTTPAddr); err != nil {
			return fmt.Errorf("listen for plain HTTP on %s: %w (pick another with --proxy-http)", cfg.ProxyHTTPAddr, err)
		}
	}
	var ok bool
	if s.apiTCP, ok = s.apiLn.(*net.TCPListener); !ok {
		return fmt.Errorf("the API listener is a %T, not TCP", s.apiLn)
	}
	if s.proxyTCP, ok = s.proxyLn.(*net.TCPListener); !ok {
		return fmt.Errorf("the proxy listener is a %T, not TCP", s.proxyLn)
	}
	if s.store, err = openStore(ctx, cfg); err != nil {
		return err
	}
	s.rawStore = s.store
	sh, err := s.share(ctx, s.store)
	if err != nil {
		return fmt.Errorf("listen for other controllers: %w", err)
	}
	s.stopSharing = sh.stop
	if sh.shared && s.peerLn == nil { // a restart in place inherits it
		if s.peerLn, err = proxy.Listen(net.JoinHostPort(cfg.Advertise, strconv.Itoa(cfg.PeerPort))); err != nil {
			return fmt.Errorf("listen for other hosts on %s port %d: %w (pick another with --peer-port, or --advertise an address of this machine)", cfg.Advertise, cfg.PeerPort, err)
		}
	}
	if err := s.secure(ctx); err != nil {
		return err
	}
	if err := s.openCerts(); err != nil {
		return err
	}
	if s.arts, err = artifact.NewStore(filepath.Join(cfg.DataDir, "artifacts")); err != nil {
		return err
	}
	if s.images, err = ociimage.Open(filepath.Join(cfg.DataDir, "images"), ociimage.DefaultLimits()); err != nil {
		return err
	}
	s.sup = supervisor.New(supervisor.Config{Logger: s.log, StopGrace: cfg.StopGrace, StateDir: filepath.Join(cfg.DataDir, "run"),
		// Image revisions run under runc, with baton's containers apart
		// from any others on the host (ReapOrphans lists them there).
		ContainerStateRoot: filepath.Join(cfg.DataDir, "runc"),
		ContainerBundleDir: filepath.Join(cfg.DataDir, "bundles")})
	// Instances left running by a baton that was killed hold ports and
	// serve nothing: stop them before the live revisions start again.
	// Build and release commands it left die here too, before recovery
	// (coordinator.Open) releases the resource leases of their deployments:
	// a lease is free only once its release command is gone. In a restart,
	// the handed instances are adopted first (coordinator.Open); no command
	// runs across a restart (Pause waits for the deployments).
	var reaped []supervisor.Reaped
	if handoff == nil {
		reaped = s.reapOrphans(ctx)
	}
	if err := s.openAccessLog(); err != nil {
		return err
	}
	s.proxy = proxy.New(proxy.Config{Logger: s.log, Domain: cfg.Domain, MaxHeaderBytes: 1 << 20, AccessLog: s.access,
		NoRequestMetrics: cfg.NoRequestMetrics, PeerKey: sh.peerKey})
	if cfg.NoRequestMetrics {
		s.metrics = metrics.New()
	} else {
		s.metrics = metrics.New(metrics.NewRequestCollector(s.proxy))
		s.rates = metrics.NewRates(s.proxy, 5*time.Second, 15*time.Minute)
		s.rates.Open()
	}
	if err := s.openWebhooks(); err != nil {
		return err
	}
	s.coord = coordinator.New(coordinator.Config{
		Metrics:      s.metrics,
		OnFinished:   s.hooks.NotifyFinished,
		ControllerID: cfg.ControllerID, ControllerAddr: s.APIAddr(), Advertise: cfg.Advertise, PeerAddr: s.PeerAddr(),
		Shared: sh.shared, Blobs: sh.blobs, Wake: sh.wake,
		Store: s.store, Artifacts: s.arts, Images: s.images, Supervisor: s.sup, Proxy: s.proxy,
		DataDir: cfg.DataDir, Domain: cfg.Domain, Logger: s.log,
		LeaseTTL: cfg.LeaseTTL, MaxQueue: cfg.MaxQueue, DrainTimeout: cfg.DrainTimeout,
		Adopt: handoff.groups(), Reaped: reaped,
		Retention: retention(cfg), CollectPause: cfg.CollectPause,
		OnNames: s.namesChanged, Certificates: s.certificate(),
	})
	if err := s.coord.Open(ctx); err != nil {
		s.coord = nil
		return err
	}
	if handoff != nil {
		s.reapOrphans(ctx)
	}
	s.metrics.Registry.MustRegister(s.coord.Collector())
	if s.certs != nil {
		s.metrics.Registry.MustRegister(metrics.NewCertCollector(certSource{s}))
	}
	if s.acme != nil {
		s.acme.Open()
	}
	s.serveHTTP()
	s.hooks.WatchConflicts(s.conflicts, 0)
	s.catchUpHooks(ctx)
	mounts := s.mounts()
	mounts["GET /metrics"] = s.metrics.Handler()
	apiServer := &api.Server{Coord: s.coord, Store: s.store, Logger: s.log, MaxUpload: cfg.MaxUpload, Mounts: mounts,
		MountScopes: s.secureMounts(mounts), Auth: s.auth, MaxUploads: cfg.MaxUploads, UploadWait: cfg.UploadWait,
		Ready: func() error { return nil }, Backup: s.backup, Hooks: s.hooks,
		Traffic: s.traffic(),
		TrafficSeries: func() func(string, time.Duration) []baton.TrafficPoint {
			if s.rates == nil {
				return nil
			}
			return s.rates.Series
		}(),
		Version: api.Version{Version: buildinfo.Read().Version, SchemaVersion: sqlite.SchemaVersion()}}
	// The proxy runs its own HTTP/1.1 data plane on its listener (see
	// proxy/serve.go and the README's performance section for why); over
	// TLS, h2 connections go to its HTTP/2 server (proxy/h2server.go).
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var err error
		if s.proxyTLS != nil {
			err = s.proxy.ServeTLS(s.proxyLn, s.proxyTLS)
		} else {
			err = s.proxy.Serve(s.proxyLn)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("proxy stopped", "err", err)
		}
	}()
	if s.peerLn != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.proxy.ServeLocal(s.peerLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("peer listener stopped", "err", err)
			}
		}()
	}
	s.proxyServing = true
	s.startAPI(s.wrapAPI(apiServer.Handler()))
	s.log.Info("baton serving", "api", s.APIAddr(), "proxy", s.ProxyAddr(), "proxy_tls", s.proxyTLS != nil,
		"data", cfg.DataDir, "domain", cfg.Domain)
	// systemd learns the new main process before the old one exits.
	s.notifySystemd()
	s.signalReady()
	return nil
}

// startAPI serves the API with h on apiLn.
func (s *Server) startAPI(h http.Handler) {
	streams, stop := context.WithCancel(context.Background())
	s.stopStreams = stop
	s.apiSrv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return streams },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	closeUnusedOnShutdown(s.apiSrv)
	s.serve(s.apiSrv, s.apiLn)
}

// stopAPI ends long-lived responses (SSE), stops accepting API connections
// and lets the requests in flight finish (up to 10s); it reports requests
// it had to cut off.
func (s *Server) stopAPI() error {
	if s.stopStreams != nil {
		s.stopStreams()
	}
	if s.apiSrv == nil {
		if s.apiLn != nil {
			s.apiLn.Close()
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.apiSrv.Shutdown(ctx)
	if err != nil {
		s.apiSrv.Close()
		err = fmt.Errorf("stop the API: %w", err)
	}
	s.apiSrv = nil
	return err
}

// reapOrphans stops the instances and commands a killed baton left
// running, and returns them.
func (s *Server) reapOrphans(ctx context.Context) []supervisor.Reaped {
	reaped, err := s.sup.ReapOrphans(ctx)
	if err != nil {
		s.log.Warn("stop orphaned processes", "err", err)
	}
	if len(reaped) > 0 {
		s.log.Info("stopped processes left by an earlier baton", "count", len(reaped))
	}
	return reaped
}

func (s *Server) serve(srv *http.Server, ln net.Listener) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

// APIAddr is the bound API address.
func (s *Server) APIAddr() string { return s.apiLn.Addr().String() }

// ProxyAddr is the bound proxy address.
func (s *Server) ProxyAddr() string { return s.proxyLn.Addr().String() }

// PeerAddr is the peer listener's address, "" when there is none.
func (s *Server) PeerAddr() string {
	if s.peerLn == nil {
		return ""
	}
	return s.peerLn.Addr().String()
}

// ProxyScheme is "https" when the proxy serves TLS, else "http".
func (s *Server) ProxyScheme() string {
	if s.proxyTLS != nil {
		return "https"
	}
	return "http"
}

// loadProxyTLS reads the proxy's certificate and key once, at start. Both
// or neither must be configured; an error names the flag and the problem.
func (s *Server) loadProxyTLS() (*tls.Config, error) {
	return s.loadKeyPair("--proxy-tls", "the proxy's", "serve apps over HTTPS", s.cfg.ProxyTLSCert, s.cfg.ProxyTLSKey)
}

// loadKeyPair reads the certificate and private key that the flags
// prefix-cert and prefix-key name (both or neither: nil for neither), for
// a TLS 1.2+ listener; whose and purpose word its errors.
func (s *Server) loadKeyPair(prefix, whose, purpose, cert, key string) (*tls.Config, error) {
	certFlag, keyFlag := prefix+"-cert", prefix+"-key"
	switch {
	case cert == "" && key == "":
		return nil, nil
	case cert == "":
		return nil, fmt.Errorf("%s needs %s: give both PEM files to %s, or neither", keyFlag, certFlag, purpose)
	case key == "":
		return nil, fmt.Errorf("%s needs %s: give both PEM files to %s, or neither", certFlag, keyFlag, purpose)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("load %s TLS certificate (%s %s, %s %s): %w; give the certificate chain and its private key as PEM files", whose, certFlag, cert, keyFlag, key, err)
	}
	if leaf := pair.Leaf; leaf != nil && time.Now().After(leaf.NotAfter) {
		s.log.Warn(whose+" TLS certificate has expired: clients will refuse it", "file", cert, "not_after", leaf.NotAfter)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// Close shuts down in layers: stop taking API requests, let proxied
// requests finish, stop deployments (recorded as interrupted) and
// instances, close the store. It reports every error.
func (s *Server) Close() error {
	var errs []error
	if err := s.stopAPI(); err != nil {
		errs = append(errs, err)
	}
	if err := s.stopHTTP(); err != nil {
		errs = append(errs, err)
	}
	if s.ready != nil {
		s.ready.Close() // the previous process learns this one failed
	}
	if s.proxyServing {
		// Lets in-flight requests finish, closes idle and upgraded connections.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.proxy.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	} else if s.proxyLn != nil {
		s.proxyLn.Close()
	}
	if !s.proxyServing && s.peerLn != nil {
		s.peerLn.Close()
	}
	if s.access != nil { // after the proxy: its last lines are in
		errs = append(errs, s.access.Close())
		if s.accessFile != nil {
			errs = append(errs, s.accessFile.Close())
		}
	}
	if s.stopSharing != nil {
		s.stopSharing()
	}
	s.wg.Wait()
	if s.acme != nil { // before the store: it releases its locks there
		errs = append(errs, s.acme.Close())
	}
	if s.coord != nil {
		errs = append(errs, s.coord.Close())
	}
	if s.hooks != nil { // after the coordinator: its last events are queued
		errs = append(errs, s.hooks.Close())
	}
	if s.rates != nil {
		errs = append(errs, s.rates.Close())
	}
	if s.sup != nil {
		errs = append(errs, s.sup.Close())
	}
	if s.proxy != nil {
		errs = append(errs, s.proxy.Close())
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	if s.dirLock != nil {
		errs = append(errs, s.dirLock.Close())
	}
	return errors.Join(errs...)
}

// openAccessLog opens the proxy's access log when one is configured.
func (s *Server) openAccessLog() error {
	var w io.Writer
	switch s.cfg.AccessLog {
	case "":
		return nil
	case "-":
		w = os.Stdout
	default:
		f, err := os.OpenFile(s.cfg.AccessLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return fmt.Errorf("access log: %w", err)
		}
		s.accessFile, w = f, f
	}
	s.access = proxy.NewAccessLog(w)
	s.access.Open()
	return nil
}

// openWebhooks builds and starts the webhook dispatcher: the hooks in the
// store, and those of --webhook.
func (s *Server) openWebhooks() error {
	secret := []byte(s.cfg.WebhookSecret)
	if s.cfg.WebhookSecretFile != "" {
		b, err := os.ReadFile(s.cfg.WebhookSecretFile)
		if err != nil {
			return fmt.Errorf("webhook secret: %w", err)
		}
		secret = bytes.TrimSpace(b)
	}
	if len(s.cfg.Webhooks) > 0 && len(secret) == 0 {
		s.log.Warn("webhooks are sent unsigned: set --webhook-secret-file")
	}
	hooks, err := webhooks.New(webhooks.Config{Store: s.store, URLs: s.cfg.Webhooks, Secret: secret, Backoff: s.cfg.WebhookBackoff, Logger: s.log})
	if err != nil {
		return err
	}
	s.hooks = hooks
	hooks.Open()
	return nil
}

// traffic is the API's view of the sampled request counters; nil when
// request metrics are off.
func (s *Server) traffic() func(string, time.Duration) []baton.RevisionTraffic {
	if s.rates == nil {
		return nil
	}
	return s.rates.App
}

// catchUpHooks queues the webhook events of operations that ended in the
// last 15 minutes and are not queued yet: ended just before baton
// stopped, or by recovery at this start.
func (s *Server) catchUpHooks(ctx context.Context) {
	ds, err := s.store.Deployments(ctx, baton.DeploymentFilter{Limit: 200})
	if err != nil {
		s.log.Warn("webhooks: read recent operations", "err", err)
		return
	}
	var recent []baton.Deployment
	for i := len(ds) - 1; i >= 0; i-- { // oldest first: the order they ended in
		d := ds[i]
		if d.State.Final() && d.FinishedAt != nil && time.Since(*d.FinishedAt) < 15*time.Minute {
			recent = append(recent, d)
		}
	}
	s.hooks.CatchUp(recent)
}

// conflicts lists the status conflicts of every app, for conflict.*
// webhooks.
func (s *Server) conflicts(ctx context.Context) (map[string][]baton.Conflict, error) {
	apps, err := s.store.Apps(ctx)
	if err != nil {
		return nil, err
	}
	sts, err := s.coord.Statuses(ctx, apps)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]baton.Conflict, len(sts))
	for _, st := range sts {
		out[st.App] = st.Conflicts
	}
	return out, nil
}

// openStore opens the configured store: SQLite in the data directory by
// default, PostgreSQL for a postgres:// URL.
func openStore(ctx context.Context, cfg Config) (baton.Store, error) {
	switch {
	case cfg.Store == "" || cfg.Store == "sqlite":
		return sqlite.Open(ctx, filepath.Join(cfg.DataDir, "baton.db"))
	case strings.HasPrefix(cfg.Store, "postgres://"), strings.HasPrefix(cfg.Store, "postgresql://"):
		return postgres.Open(ctx, cfg.Store)
	}
	return nil, fmt.Errorf("--store %q: use sqlite (the default) or a postgres:// URL", cfg.Store)
}

// retention is the coordinator's retention policy from cfg.
func retention(cfg Config) baton.RetentionPolicy {
	p := baton.RetentionPolicy{Revisions: cfg.RetainRevisions, DiskBudget: cfg.DiskBudget, InstanceLogMax: cfg.InstanceLogMax}
	switch {
	case p.Revisions <= 0:
		p.Revisions = baton.DefaultRetainRevisions
	}
	switch {
	case p.DiskBudget == 0:
		p.DiskBudget = baton.DefaultDiskBudget
	case p.DiskBudget < 0:
		p.DiskBudget = 0
	}
	return p
}
