package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Pebble, Let's Encrypt's ACME test server, and its challenge test server
// (a DNS server that answers 127.0.0.1 for every name) are go.mod's tools:
// `go tool -n` builds each once into the go command's cache, where later
// runs of the suite find it linked, and prints its path.
var pebbleBuild struct {
	once                       sync.Once
	pebble, challtestsrv, root string // executables; the module's folder
	err                        error
}

func pebbleBins(t testing.TB) (pebble, challtestsrv, moduleDir string) {
	t.Helper()
	pb := &pebbleBuild
	pb.once.Do(func() {
		// go mod download, not go list -m: on an empty module cache (a
		// fresh machine) go list names no folder for a module that only
		// its go.mod was fetched for.
		out, err := exec.Command("go", "mod", "download", "-json", "github.com/letsencrypt/pebble/v2").Output()
		var mod struct{ Dir, Error string }
		if err == nil {
			err = json.Unmarshal(out, &mod)
		}
		if err == nil && (mod.Error != "" || mod.Dir == "") {
			err = fmt.Errorf("no module folder (%s)", mod.Error)
		}
		if err != nil {
			pb.err = fmt.Errorf("download the pebble module: %v", err)
			return
		}
		pb.root = mod.Dir
		for _, tool := range []struct {
			name string
			path *string
		}{{"pebble", &pb.pebble}, {"pebble-challtestsrv", &pb.challtestsrv}} {
			// Output: the path alone on stdout (go may log on stderr).
			cmd := exec.Command("go", "tool", "-n", tool.name)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				pb.err = fmt.Errorf("go tool -n %s: %v\n%s", tool.name, err, stderr.String())
				return
			}
			// Run through a link beside baton's binaries: its command
			// line then names the suite's folder (scripts/orphans.sh).
			*tool.path = filepath.Join(binDir, tool.name)
			if err := os.Symlink(strings.TrimSpace(string(out)), *tool.path); err != nil {
				pb.err = err
				return
			}
		}
	})
	if pb.err != nil {
		t.Fatal(pb.err)
	}
	return pb.pebble, pb.challtestsrv, pb.root
}

// pebbleCA is a running Pebble that validates challenges on 127.0.0.1 at
// the given HTTP-01 and TLS-ALPN-01 ports.
type pebbleCA struct {
	// Directory is the ACME directory URL; DirRoot the PEM file of the
	// root that signs Pebble's own HTTPS (for --acme-ca-root).
	Directory, DirRoot string
	// Roots trusts exactly the certificates Pebble issues.
	Roots *x509.CertPool
	// challtestsrv is the DNS server's management address.
	challtestsrv string
}

// resolve makes the test DNS answer addr for host (127.0.0.1 otherwise).
func (p *pebbleCA) resolve(t testing.TB, host, addr string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"host": host, "addresses": []string{addr}})
	resp, err := http.Post("http://"+p.challtestsrv+"/add-a", "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("challtestsrv add-a: %s", resp.Status)
	}
}

// startPebble runs pebble-challtestsrv and Pebble until the test ends;
// validity is the lifetime of the certificates it issues.
func startPebble(t testing.TB, httpPort, tlsPort string, validity time.Duration) *pebbleCA {
	t.Helper()
	pebble, challtestsrv, root := pebbleBins(t)
	dns, chMgmt := freeAddr(t), freeAddr(t)
	startProc(t, "pebble-challtestsrv", exec.Command(challtestsrv, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
		"-dnsserver", dns, "-management", chMgmt, "-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", ""))
	eventually(t, 10*time.Second, "challtestsrv listens", func() bool {
		c, err := net.Dial("tcp", chMgmt)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	listen, mgmt := freeAddr(t), freeAddr(t)
	var hp, tp int
	fmt.Sscan(httpPort, &hp)
	fmt.Sscan(tlsPort, &tp)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": filepath.Join(root, "test/certs/localhost/cert.pem"),
		"privateKey":  filepath.Join(root, "test/certs/localhost/key.pem"),
		"httpPort":    hp, "tlsPort": tp, "ocspResponderURL": "", "externalAccountBindingRequired": false,
		"retryAfter":   map[string]int{"authz": 0, "order": 0},
		"keyAlgorithm": "ecdsa",
		"profiles":     map[string]any{"default": map[string]any{"description": "test", "validityPeriod": int(validity.Seconds())}},
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(t.TempDir(), "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pebble, "-config", cfgFile, "-dnsserver", dns)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	startProc(t, "pebble", cmd)

	p := &pebbleCA{Directory: "https://" + listen + "/dir", DirRoot: filepath.Join(root, "test/certs/pebble.minica.pem"), challtestsrv: chMgmt}
	minica, err := os.ReadFile(p.DirRoot)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(minica)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(hc.CloseIdleConnections)
	var rootPEM []byte
	eventually(t, 20*time.Second, "pebble serves its directory and root", func() bool {
		resp, err := hc.Get(p.Directory)
		if err != nil {
			return false
		}
		resp.Body.Close()
		resp, err = hc.Get("https://" + mgmt + "/roots/0")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		rootPEM, err = io.ReadAll(resp.Body)
		return err == nil && resp.StatusCode == 200
	})
	p.Roots = x509.NewCertPool()
	if !p.Roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble's root is not PEM: %q", rootPEM)
	}
	return p
}

// startProc starts cmd and stops it (SIGTERM, then SIGKILL) when the test
// ends, logging its output if the test failed.
func startProc(t testing.TB, name string, cmd *exec.Cmd) {
	t.Helper()
	out := &syncBuffer{ch: make(chan struct{}, 1)}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
}

// acmeBaton is a baton serve (not started yet) whose certificates come
// from Pebble: proxy and plain-HTTP addresses are chosen first, since
// Pebble validates challenges on their ports.
func acmeBaton(t testing.TB, extra ...string) (b *batonProc, httpAddr string) {
	b = &batonProc{t: t, data: t.TempDir(), apiAddr: freeAddr(t), proxyAddr: freeAddr(t)}
	httpAddr = freeAddr(t)
	b.extra = append([]string{"--proxy-http", httpAddr}, extra...)
	return b, httpAddr
}

// acmeFlags are baton serve's flags for certificates from ca.
func acmeFlags(ca *pebbleCA) []string {
	return []string{"--acme-email", "ops@example.test", "--acme-ca", ca.Directory, "--acme-ca-root", ca.DirRoot, "--acme-renew-interval", "1s", "--acme-no-ari"}
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// tlsProxyClient is a proxyClient over TLS to addr that trusts roots only,
// with serverName as SNI, in h2 or HTTP/1.1 only (checked on every
// answer); keepAlive false makes every request a new handshake.
func tlsProxyClient(t testing.TB, addr, serverName string, roots *x509.CertPool, h2, keepAlive bool) *proxyClient {
	t.Helper()
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, DisableKeepAlives: !keepAlive,
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: serverName}}
	tr.Protocols = new(http.Protocols)
	want := 1
	if h2 {
		tr.Protocols.SetHTTP2(true)
		want = 2
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &proxyClient{addr: addr, http: &http.Client{Timeout: 10 * time.Second,
		Transport: httpsOnly{next: tr, major: want}}}
}

// servedCert returns the leaf certificate addr presents for serverName,
// verified against roots.
func servedCert(addr, serverName string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{RootCAs: roots, ServerName: serverName}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}
