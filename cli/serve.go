package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/server"
)

func newServeCmd(e *env) *cobra.Command {
	var cfg server.Config
	var logFormat, diskBudget, instanceLogMax string
	requestMetrics := true
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the API, the coordinator, the supervisor and the proxy",
		Long: `Run baton: the REST API (--api), the reverse proxy that serves every app at
APP.DOMAIN (--proxy, --domain), and the coordinator that runs deployments.
State lives in --data (SQLite). Stops gracefully on SIGINT/SIGTERM, apps
included.

SIGUSR2 restarts baton in place, with the executable now at its path (an
upgrade): the new process inherits the listening sockets and adopts the
running app instances, so no request is refused and no app restarts. A
running deployment finishes first; queued ones run in the new process. The
pid is in DATA/baton.lock:  kill -USR2 $(cat DATA/baton.lock)

Every API call needs an access token. On first start baton creates an admin
token and writes it to DATA/admin.token (mode 0600; a token already in that
file is adopted); the CLI on this machine reads it from there, elsewhere set
BATON_TOKEN. 'baton tokens create' makes more. Settings marked secret are
encrypted with the key in DATA/secret.key (--secret-key; controllers sharing
a PostgreSQL store need the same key file).

With --proxy-tls-cert and --proxy-tls-key the proxy serves apps over HTTPS
only, offering HTTP/2 and HTTP/1.1 (WebSockets over HTTP/1.1); instances
still get plain HTTP/1.1, with X-Forwarded-Proto: https. The files are read
once, at start.

With --acme-email baton obtains and renews the proxy's certificates itself
over ACME (Let's Encrypt unless --acme-ca): for APP.DOMAIN, APP-SLOT.DOMAIN
and every custom domain ('baton domains add'), never for other names a
client asks for. Challenges are answered by baton's own listeners: HTTP-01
on --proxy-http (port 80 in production), TLS-ALPN-01 on --proxy (443).
--proxy-http redirects every other request to HTTPS. Certificates, their
keys (encrypted like secret settings) and the ACME account live in the
store, so controllers sharing a PostgreSQL store obtain each certificate
once and all serve it. A --proxy-tls-cert still wins for the names it
covers. 'baton status APP' shows each name's certificate.

With --webhook URL (repeatable) baton POSTs a JSON event to each URL when
a deployment or operation ends, signed with HMAC-SHA256 over the body in
X-Baton-Signature-256 ("sha256=HEX", as GitHub does) under the secret in
--webhook-secret-file; failed deliveries are retried with back-off.

Retention: after every operation and on start, baton removes what its policy
no longer keeps: the unpacked folders (with build outputs) and instance logs
of old revisions, and artifacts no kept revision names. Kept per slot: the
newest --retain-revisions revisions that went live, so each can be rolled
back to; always kept: what serves, what a queued or running operation names.
Over --disk-budget, the unpacked folders of kept inactive revisions go first
(a rollback unpacks them again), then the oldest kept revisions, never the
newest one a plain 'baton rollback' needs. 'baton gc --dry-run' shows what
would go; deployment records and their logs stay.

Serving, baton starts itself again at once (same process ID) with
GODEBUG=schedtrace=2147483647 and one more GOMAXPROCS than CPUs: Go's system
monitor then never sleeps deeply, which saves the proxy 10-30 % of its CPU
per request and costs an idle server about 0.5 % of a core. Apps and
commands baton starts get GODEBUG as it was. BATON_SCHEDTUNE=off keeps Go's
defaults.`,
		Example: `  baton serve
  baton serve --data /var/lib/baton --proxy 0.0.0.0:80 --domain apps.example.com
  baton serve --webhook https://ci.example.com/baton --webhook-secret-file /etc/baton/hook.secret
  baton serve --proxy 0.0.0.0:443 --domain apps.example.com --proxy-tls-cert apps.pem --proxy-tls-key apps-key.pem
  baton serve --proxy 0.0.0.0:443 --proxy-http 0.0.0.0:80 --domain apps.example.com --acme-email ops@example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var h slog.Handler = slog.NewTextHandler(e.stderr, nil)
			if logFormat == "json" {
				h = slog.NewJSONHandler(e.stderr, nil)
			} else if logFormat != "text" {
				return fmt.Errorf("--log-format %q: use text or json", logFormat)
			}
			cfg.Logger = slog.New(h)
			if diskBudget == "none" {
				cfg.DiskBudget = -1
			} else if n, err := baton.ParseSize(diskBudget); err != nil {
				return fmt.Errorf("--disk-budget: %w", err)
			} else if cfg.DiskBudget = n; n == 0 {
				cfg.DiskBudget = -1
			}
			cfg.NoRequestMetrics = !requestMetrics
			if n, err := baton.ParseSize(instanceLogMax); err != nil || n < 4096 {
				return fmt.Errorf("--instance-log-max %q: want a size of at least 4KiB, like 4MiB", instanceLogMax)
			} else {
				cfg.InstanceLogMax = n
			}
			if v := os.Getenv("BATON_TEST_COLLECT_PAUSE"); v != "" {
				// Test hook: slow collection down to kill baton during one.
				var err error
				if cfg.CollectPause, err = time.ParseDuration(v); err != nil {
					return fmt.Errorf("BATON_TEST_COLLECT_PAUSE: %w", err)
				}
			}
			if v := os.Getenv("BATON_TEST_BACKUP_PAUSE"); v != "" {
				// Test hook: hold backups mid-stream to kill baton during one.
				var err error
				if cfg.BackupPause, err = time.ParseDuration(v); err != nil {
					return fmt.Errorf("BATON_TEST_BACKUP_PAUSE: %w", err)
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			srv, err := server.Open(ctx, cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "baton serving: API %s, apps at %s://APP.%s (proxy %s), data in %s\n",
				srv.APIURL(), srv.ProxyScheme(), cfg.Domain, srv.ProxyAddr(), cfg.DataDir)
			if f := srv.AdminTokenFile(); f != "" {
				fmt.Fprintf(e.stdout, "admin token in %s (mode 0600); the CLI on this machine reads it, elsewhere set BATON_TOKEN\n", f)
			}
			restart := make(chan os.Signal, 1)
			signal.Notify(restart, syscall.SIGUSR2)
			defer signal.Stop(restart)
			for {
				select {
				case <-ctx.Done():
					cfg.Logger.Info("shutting down")
					return srv.Close()
				case <-restart:
				}
				cfg.Logger.Info("restarting in place (SIGUSR2): handing the sockets and the running apps to a new process")
				rctx, cancel := context.WithTimeout(ctx, server.RestartTimeout)
				err := srv.Restart(rctx)
				cancel()
				if err == nil {
					return srv.Close() // the new process serves; finish what is in flight
				}
				cfg.Logger.Error("restart in place failed", "err", err)
				if srv.HandedOff() {
					return errors.Join(err, srv.Close())
				}
			}
		},
	}
	f := cmd.Flags()
	defData := os.Getenv("BATON_DATA")
	if defData == "" {
		defData = "./baton-data"
	}
	f.StringVar(&cfg.DataDir, "data", defData, "data directory: database, artifacts, revisions (env BATON_DATA, where the CLI also looks for the admin token)")
	f.StringVar(&cfg.Store, "store", "", "state store: empty for SQLite in --data, or postgres://USER@HOST:PORT/DB to share one PostgreSQL between controllers")
	f.StringVar(&cfg.APIAddr, "api", "127.0.0.1:7070", "API listen address")
	f.StringVar(&cfg.ProxyAddr, "proxy", "127.0.0.1:8080", "proxy listen address")
	f.StringVar(&cfg.Domain, "domain", "localhost", "apps are served at APP.DOMAIN and APP-SLOT.DOMAIN")
	f.Int64Var(&cfg.MaxUpload, "max-upload", 1<<30, "largest artifact upload, in bytes")
	f.IntVar(&cfg.MaxQueue, "max-queue", 100, "most deployments queued per app (full queue answers 429)")
	f.DurationVar(&cfg.DrainTimeout, "drain-timeout", 30*time.Second, "how long an old revision may finish in-flight requests")
	f.DurationVar(&cfg.StopGrace, "stop-grace", 5*time.Second, "SIGTERM to SIGKILL grace when stopping instances")
	f.IntVar(&cfg.RetainRevisions, "retain-revisions", baton.DefaultRetainRevisions, "newest revisions per slot that stay rollbackable (artifact, folder, instance log)")
	f.StringVar(&diskBudget, "disk-budget", "5GiB", "disk budget of revisions, their logs and artifacts (e.g. 500MiB, 5GiB; 0 or none: no budget)")
	f.StringVar(&instanceLogMax, "instance-log-max", "4MiB", "size at which a revision's instance output log rotates (it keeps at most twice this; baton logs APP reads it)")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	f.IntVar(&cfg.MaxUploads, "max-uploads", 8, "artifact uploads in progress at once (more answer 429)")
	f.IntVar(&cfg.AuthFailLimit, "auth-fail-limit", 10, "failed authentications per address per minute before 429")
	f.StringVar(&cfg.SecretKeyFile, "secret-key", "", "key file that encrypts secret settings (default DATA/secret.key; controllers sharing a store need the same)")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "serve the API over HTTPS with this certificate (PEM; with --tls-key)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "private key of --tls-cert (PEM)")
	f.StringVar(&cfg.ProxyTLSCert, "proxy-tls-cert", "", "serve apps over HTTPS (HTTP/2 and HTTP/1.1) with this certificate chain (PEM; with --proxy-tls-key); read once at start")
	f.StringVar(&cfg.ProxyTLSKey, "proxy-tls-key", "", "private key of --proxy-tls-cert (PEM)")
	f.StringVar(&cfg.ProxyHTTPAddr, "proxy-http", "", "plain-HTTP listen address that answers ACME HTTP-01 challenges and redirects everything else to HTTPS (needs --proxy-tls-cert or --acme-email)")
	f.StringVar(&cfg.ACMEEmail, "acme-email", "", "obtain and renew the proxy's certificates over ACME, with this account contact (needs --proxy-http)")
	f.StringVar(&cfg.ACMECA, "acme-ca", "", "ACME directory URL (default Let's Encrypt's production CA)")
	f.StringVar(&cfg.ACMECARoot, "acme-ca-root", "", "PEM file of the roots that sign the ACME CA's own HTTPS certificate (a private or test CA)")
	f.DurationVar(&cfg.ACMERenewInterval, "acme-renew-interval", 0, "how often certificates are checked for renewal (default 10m)")
	f.BoolVar(&cfg.ACMEDisableARI, "acme-no-ari", false, "renew in the last third of a certificate's lifetime, ignoring the CA's suggested window (ARI)")
	_ = f.MarkHidden("acme-renew-interval") // tests with short-lived certificates
	_ = f.MarkHidden("acme-no-ari")
	f.StringVar(&cfg.Advertise, "advertise", "127.0.0.1", "the address (IP or host name, no port) other hosts sharing a --store reach this one at")
	f.IntVar(&cfg.PeerPort, "peer-port", 0, "port of the peer listener on --advertise, where other hosts sharing a --store forward the requests for the apps this host runs (0: any free port; the store tells the others); it trusts X-Forwarded-For from its clients, so only the hosts should reach it: set a port for the firewall rule")
	f.StringVar(&cfg.ControllerID, "controller-id", "", "this controller's name among those sharing a --store (default: the host name; keep it stable across restarts)")
	f.DurationVar(&cfg.LeaseTTL, "lease-ttl", 15*time.Second, "how long a lock outlives a controller that stops renewing it")
	f.BoolVar(&requestMetrics, "request-metrics", true, "count every proxied request for /metrics (rate, errors, durations, bytes per app, slot, revision); =false turns them off")
	f.StringVar(&cfg.AccessLog, "access-log", "", "write one JSON line per proxied request to this file (- for standard output)")
	f.StringArrayVar(&cfg.Webhooks, "webhook", nil, "POST a signed JSON event to this http(s) URL when a deployment or operation ends (repeatable; added to the hooks of `baton hooks`)")
	f.StringVar(&cfg.WebhookSecretFile, "webhook-secret-file", "", "file whose contents sign webhook bodies (HMAC-SHA256 in X-Baton-Signature-256)")
	f.DurationVar(&cfg.WebhookBackoff, "webhook-backoff", time.Second, "wait after a webhook delivery's first failed attempt; doubles per attempt up to 5m, 8 attempts")
	f.StringVar(&cfg.WebhookSecret, "webhook-secret", os.Getenv("BATON_WEBHOOK_SECRET"), "webhook signing secret (env BATON_WEBHOOK_SECRET; prefer --webhook-secret-file)")
	return cmd
}
