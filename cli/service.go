package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/batonhq/baton/internal/atomicfile"
	"github.com/spf13/cobra"
)

// unitConfig is what the systemd unit is made from.
type unitConfig struct {
	Name, Bin, User, Data, API, Proxy, Domain, Store string
}

// unitTemplate is baton's systemd unit. Type=notify with NotifyAccess=all
// lets a restart in place (ExecReload, SIGUSR2) hand the main process to
// the new baton; KillMode=process leaves the apps' instances to baton,
// which stops them itself on SIGTERM and hands them over on SIGUSR2.
var unitTemplate = template.Must(template.New("unit").Funcs(template.FuncMap{"q": systemdQuote}).Parse(`[Unit]
Description=baton deployment coordinator and app host
Documentation=https://github.com/batonhq/baton
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=all
User={{.User}}
Group={{.User}}
Environment={{q (print "BATON_DATA=" .Data)}}
ExecStart={{q .Bin}} serve --data {{q .Data}} --api {{q .API}} --proxy {{q .Proxy}} --domain {{q .Domain}}{{if .Store}} --store {{q .Store}}{{end}}
# Restart in place: no connection refused, no app restarted.
ExecReload=/bin/kill -USR2 $MAINPID
Restart=on-failure
RestartSec=2s
KillMode=process
TimeoutStopSec=90s
LimitNOFILE=65536

# Ports 80 and 443 without root.
AmbientCapabilities=CAP_NET_BIND_SERVICE
NoNewPrivileges=true
ProtectSystem=strict
ReadWritePaths={{q .Data}}
ProtectHome=true
PrivateTmp=true
PrivateDevices=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectControlGroups=true
RestrictSUIDSGID=true
LockPersonality=true

[Install]
WantedBy=multi-user.target
`))

// systemdQuote quotes a word for a systemd command line or setting when
// it needs it.
func systemdQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"'\\$%;") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `$$`, `%`, `%%`)
	return `"` + r.Replace(s) + `"`
}

func renderUnit(c unitConfig) ([]byte, error) {
	var b bytes.Buffer
	if err := unitTemplate.Execute(&b, c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func newServiceCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "service", Short: "Run baton as a systemd service"}
	var c unitConfig
	var print bool
	var dir string
	install := &cobra.Command{
		Use:   "install",
		Short: "Write a systemd unit that runs baton serve (--print: to stdout)",
		Long: `Write a systemd unit, DIR/NAME.service, that runs 'baton serve' as USER with
its data in --data: sandboxed (ProtectSystem=strict, NoNewPrivileges, only
the data directory writable), allowed to bind ports 80 and 443
(CAP_NET_BIND_SERVICE), restarted on failure, and 'systemctl reload'
restarting baton in place (SIGUSR2) without stopping the apps.

It writes the file only; then, as root:
  useradd --system --home-dir DATA --create-home USER   (if USER does not exist)
  systemctl daemon-reload && systemctl enable --now NAME`,
		Example: `  baton service install --print
  sudo baton service install --user baton --data /var/lib/baton --proxy 0.0.0.0:80 --domain apps.example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.Bin == "" {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("find this executable: %w (give --bin)", err)
				}
				if c.Bin, err = filepath.EvalSymlinks(exe); err != nil {
					return err
				}
			}
			if !filepath.IsAbs(c.Bin) || !filepath.IsAbs(c.Data) {
				return errors.New("--bin and --data must be absolute paths: systemd has no working directory to resolve them from")
			}
			unit, err := renderUnit(c)
			if err != nil {
				return err
			}
			if print {
				_, err := e.stdout.Write(unit)
				return err
			}
			path := filepath.Join(dir, c.Name+".service")
			if err := atomicfile.Write(path, unit, 0o644); err != nil {
				return fmt.Errorf("write %s: %w (run as root, or use --print)", path, err)
			}
			fmt.Fprintf(e.stdout, "wrote %s\nnext, as root:\n", path)
			fmt.Fprintf(e.stdout, "  id %s || useradd --system --home-dir %s --create-home %s\n", c.User, c.Data, c.User)
			fmt.Fprintf(e.stdout, "  systemctl daemon-reload && systemctl enable --now %s\n", c.Name)
			return nil
		},
	}
	f := install.Flags()
	f.BoolVar(&print, "print", false, "print the unit instead of writing it")
	f.StringVar(&c.Name, "name", "baton", "service name")
	f.StringVar(&c.User, "user", "baton", "user (and group) baton runs as")
	f.StringVar(&c.Data, "data", "/var/lib/baton", "data directory")
	f.StringVar(&c.Bin, "bin", "", "baton executable (default: this one)")
	f.StringVar(&c.API, "api", "127.0.0.1:7070", "API listen address")
	f.StringVar(&c.Proxy, "proxy", "0.0.0.0:80", "proxy listen address")
	f.StringVar(&c.Domain, "domain", "localhost", "apps are served at APP.DOMAIN")
	f.StringVar(&c.Store, "store", "", "postgres:// URL of a shared store (default: SQLite in --data)")
	f.StringVar(&dir, "dir", "/etc/systemd/system", "folder the unit is written to")
	cmd.AddCommand(install)
	return cmd
}
