package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/internal/loadtest"
	"github.com/batonhq/baton/internal/poll"
	"github.com/batonhq/baton/internal/testparallel"
)

var (
	batonBin string // the baton binary under test
	// batonRaceBin is baton built with the race detector when the tests
	// run with -race (batonBin otherwise), for the tests in
	// underRaceDetector.
	batonRaceBin string
	helloBin     string // the example app, built once
	packBin      string // packdir, which zips folders to deploy (zipDir)
	// binDir holds the binaries above (and the shared browser's profile);
	// it is removed when the tests end.
	binDir string
	// adminToken is the admin token of every baton the tests start with
	// startBaton: it is written to each data directory before the first
	// start (baton adopts it) and set as BATON_TOKEN in this process's
	// environment, so CLI runs and raw HTTP requests carry it.
	adminToken string
)

func TestMain(m *testing.M) {
	// Each test mostly waits on its own baton child process: unless
	// -parallel is given, run more of them at once than GOMAXPROCS.
	testparallel.Default(4) // parses the flags, -e2e.race-baton among them

	var err error
	if adminToken, err = baton.NewTokenSecret(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Every baton child and every CLI run inherits it. baton must not
	// pass it on to apps (TestAuthInstancesGetNoToken checks).
	os.Setenv("BATON_TOKEN", adminToken)
	http.DefaultTransport = &tokenTransport{next: http.DefaultTransport}
	if binDir, err = os.MkdirTemp("", "baton-e2e-bin-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := buildBinaries(binDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(binDir)
		os.Exit(1)
	}
	code := m.Run()
	stopChromium()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// buildBinaries builds baton, the example app and packdir into dir with
// one go build (it links them in parallel) and, with -race, baton with the
// race detector at the same time.
func buildBinaries(dir string) error {
	batonBin, helloBin, packBin = filepath.Join(dir, "baton"), filepath.Join(dir, "hello"), filepath.Join(dir, "packdir")
	builds := [][]string{{"-o", dir + string(filepath.Separator), "../cmd/baton", "../examples/hello", "./internal/packdir"}}
	batonRaceBin = batonBin
	if *raceBatonFlag {
		batonRaceBin = filepath.Join(dir, "baton-race")
		builds = append(builds, []string{"-race", "-o", batonRaceBin, "../cmd/baton"})
	}
	errs := make([]error, len(builds))
	var wg sync.WaitGroup
	for i, args := range builds {
		wg.Go(func() {
			if out, err := exec.Command("go", append([]string{"build"}, args...)...).CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go build %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// raceBatonFlag builds the baton of the tests in underRaceDetector with the
// race detector. It is on when this test binary is race-built too; test.sh
// turns it on for a plain build of the end-to-end tests: the race
// detector's cost in this process (the tests' own HTTP clients, load
// generators and browser driver) buys nothing about baton, whose races
// are in the baton child process.
var raceBatonFlag = flag.Bool("e2e.race-baton", raceEnabled, "run the baton of the tests that drive many operations at once (underRaceDetector) with the race detector, also when the tests themselves are not race-built")

// underRaceDetector lists the tests (besides the reliability suite,
// TestReliability*) whose baton runs under the race detector: those that
// drive many operations at once through one or two controllers. The other
// end-to-end tests run a plain build: the race detector costs them about
// half the suite's time, and the coordinator's own in-process tests, the
// store contract and the proxy's tests already run under it.
var underRaceDetector = map[string]bool{
	"TestTwoControllersSerialize":    true,
	"TestDeployZeroDowntime":         true,
	"TestBackToBackDeploysUnderLoad": true,
	"TestControllerFailover":         true,
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	return freeAddrOn(t, "127.0.0.1")
}

// freeAddrOn returns an address of ip with a port free right now, from
// 10000–19999: below the kernel's ephemeral range, which every outgoing
// connection of every test running beside this one takes source ports
// from (a port found free with :0 could be taken before baton binds it),
// and below the 20000–32767 that batons give their instances.
func freeAddrOn(t testing.TB, ip string) string {
	t.Helper()
	for range 1000 {
		addr := net.JoinHostPort(ip, strconv.Itoa(10000+rand.IntN(10000)))
		// Never the same address twice in this test binary: a test that
		// kills a baton and starts it again on its ports must not find
		// them taken by another test's baton meanwhile.
		if _, taken := handedOut.LoadOrStore(addr, true); taken {
			continue
		}
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatalf("no free port on %s in 10000–19999", ip)
	return ""
}

// handedOut holds every address freeAddrOn returned.
var handedOut sync.Map

// batonProc is a `baton serve` child process.
type batonProc struct {
	t         testing.TB
	data      string
	apiAddr   string
	proxyAddr string
	extra     []string
	// env is added to baton serve's environment (test hooks).
	env []string
	// token is the admin token: adminToken, or whatever a fresh data
	// directory got (startBatonFresh).
	token  string
	fresh  bool
	cmd    *exec.Cmd
	exited chan struct{}
	// bin is the baton executable to run (default batonBin).
	bin string
	// handedPID is the process serving after a restart in place (SIGUSR2);
	// it inherited cmd's output, so exited still closes when it ends.
	handedPID int
	// starts counts the starts of baton serve on this data directory.
	starts int
	// killed: the last stop was a SIGKILL, so the instances and
	// containers of that baton are left until a baton starts on its data
	// again.
	killed bool
	logMu  sync.Mutex
	log    strings.Builder
}

// startBaton runs `baton serve` on fresh ports and data dir and waits until
// its API answers. It is stopped (SIGTERM) at test end.
func startBaton(t testing.TB, extra ...string) *batonProc {
	t.Helper()
	b := &batonProc{t: t, data: t.TempDir(), apiAddr: freeAddr(t), proxyAddr: freeAddr(t), extra: extra}
	return b.launch()
}

// startBatonFresh is startBaton without a prepared admin token: baton
// creates its own, which b.token then holds.
func startBatonFresh(t testing.TB, extra ...string) *batonProc {
	t.Helper()
	b := &batonProc{t: t, data: t.TempDir(), apiAddr: freeAddr(t), proxyAddr: freeAddr(t), extra: extra, fresh: true}
	return b.launch()
}

func (b *batonProc) launch() *batonProc {
	t := b.t
	t.Helper()
	if !b.fresh {
		b.token = adminToken
		if err := os.WriteFile(filepath.Join(b.data, "admin.token"), []byte(adminToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	apiAddrs.Store(b.apiAddr, b)
	t.Cleanup(func() { apiAddrs.Delete(b.apiAddr) })
	b.start()
	t.Cleanup(func() {
		b.stop(syscall.SIGTERM)
		b.reapContainers()
		b.reapProcesses()
		if t.Failed() {
			t.Logf("baton serve output:\n%s", b.output())
		}
	})
	return b
}

// reapProcesses kills the instances and commands a baton left, by the
// records in its data directory (what a baton started again on it would
// reap): a test that ends with a host killed with SIGKILL, or one whose
// baton crashed. A baton stopped with SIGTERM must leave none: that is an
// error.
func (b *batonProc) reapProcesses() {
	reaped := 0
	defer func() {
		if reaped > 0 && !b.killed {
			b.t.Errorf("baton (data %s) left %d process group(s) running after it stopped; reaped them", b.data, reaped)
		}
	}()
	records, _ := filepath.Glob(filepath.Join(b.data, "run", "*.pid"))
	for _, path := range records {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var rec struct {
			PGID int    `json:"pgid"`
			Dir  string `json:"dir"`
		}
		if json.Unmarshal(data, &rec) != nil || rec.PGID <= 1 {
			continue
		}
		// Only while the group leader still runs in the recorded folder:
		// a pgid is reused once the group is gone.
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", rec.PGID)); err == nil && cwd == rec.Dir {
			_ = syscall.Kill(-rec.PGID, syscall.SIGKILL)
			reaped++
		}
	}
}

// reapContainers removes the containers left in the data directory's
// runc state root: those of a baton killed with SIGKILL and not started
// again (a test that failed before it restarted it). A baton stopped with
// SIGTERM must leave none: that is an error.
func (b *batonProc) reapContainers() {
	root := filepath.Join(b.data, "runc")
	out, err := exec.Command("runc", "--root", root, "list", "-q").Output()
	if err != nil {
		return // no runc, or no container ever ran here
	}
	ids := strings.Fields(string(out))
	for _, id := range ids {
		_ = exec.Command("runc", "--root", root, "kill", id, "KILL").Run()
		if out, err := exec.Command("runc", "--root", root, "delete", "-f", id).CombinedOutput(); err != nil {
			b.t.Errorf("runc delete %s: %v\n%s", id, err, out)
		}
	}
	if len(ids) > 0 && !b.killed {
		b.t.Errorf("baton stopped with SIGTERM left %d container(s) running: %v", len(ids), ids)
	}
}

func (b *batonProc) start() {
	b.t.Helper()
	b.starts++
	for !b.launchOnce() {
		// Started again after a kill, its ports were taken meanwhile (an
		// instance of another test's baton may bind any free port).
		apiAddrs.Delete(b.apiAddr)
		b.apiAddr, b.proxyAddr = freeAddr(b.t), freeAddr(b.t)
		apiAddrs.Store(b.apiAddr, b)
		b.t.Logf("its ports were taken while it was down: baton serve starts again on API %s, proxy %s", b.apiAddr, b.proxyAddr)
	}
}

// launchOnce starts baton serve and waits until it answers. It returns
// false, having started nothing, when a restart found its ports taken.
func (b *batonProc) launchOnce() bool {
	b.t.Helper()
	logStart := len(b.output())
	args := append([]string{"serve", "--data", b.data, "--api", b.apiAddr, "--proxy", b.proxyAddr,
		"--drain-timeout", "10s", "--stop-grace", "3s"}, b.extra...)
	bin := batonBin
	if b.bin != "" {
		bin = b.bin
	} else if name, _, _ := strings.Cut(b.t.Name(), "/"); underRaceDetector[name] || strings.HasPrefix(name, "TestReliability") {
		bin = batonRaceBin
	}
	b.cmd, b.handedPID = exec.Command(bin, args...), 0
	if len(b.env) > 0 {
		b.cmd.Env = append(os.Environ(), b.env...)
	}
	pr, pw := io.Pipe()
	b.cmd.Stdout, b.cmd.Stderr = pw, pw
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.exited = make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			b.logMu.Lock()
			b.log.WriteString(sc.Text() + "\n")
			b.logMu.Unlock()
		}
	}()
	go func() {
		b.cmd.Wait()
		pw.Close()
		close(b.exited)
	}()
	portsTaken := false
	eventually(b.t, 30*time.Second, "baton serve answers /healthz", func() bool {
		select {
		case <-b.exited:
			if out := b.output(); b.starts > 1 && strings.Contains(out[min(logStart, len(out)):], "address already in use") {
				portsTaken = true
				return true
			}
			b.t.Fatalf("baton serve exited at start:\n%s", b.output())
		default:
		}
		if b.token == "" {
			// A fresh data directory: the token appears at first start.
			tok, err := os.ReadFile(filepath.Join(b.data, "admin.token"))
			if err != nil {
				return false
			}
			b.token = strings.TrimSpace(string(tok))
		}
		_, err := b.client().Apps(context.Background())
		return err == nil
	})
	return !portsTaken
}

func (b *batonProc) output() string {
	b.logMu.Lock()
	defer b.logMu.Unlock()
	return b.log.String()
}

// stop signals baton and waits for it to exit.
func (b *batonProc) stop(sig syscall.Signal) {
	select {
	case <-b.exited:
		return
	default:
	}
	pid := b.pid()
	b.killed = sig == syscall.SIGKILL
	_ = syscall.Kill(pid, sig)
	select {
	case <-b.exited:
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-b.exited
		b.t.Errorf("baton serve did not exit within 60s of %v", sig)
	}
}

// pid is the process of baton serving now.
func (b *batonProc) pid() int {
	if b.handedPID != 0 {
		return b.handedPID
	}
	return b.cmd.Process.Pid
}

// signal sends sig to the baton process serving now.
func (b *batonProc) signal(sig syscall.Signal) error {
	return syscall.Kill(b.pid(), sig)
}

// restartInPlace sends SIGUSR2 and waits until the process it started has
// taken over (it records its pid in DATA/baton.lock) and the old one is
// gone.
func (b *batonProc) restartInPlace() {
	b.t.Helper()
	old := b.pid()
	if err := b.signal(syscall.SIGUSR2); err != nil {
		b.t.Fatal(err)
	}
	b.awaitHandover(old)
}

// awaitHandover waits until the process that old started on SIGUSR2 has
// taken over and old is gone.
func (b *batonProc) awaitHandover(old int) {
	b.t.Helper()
	eventually(b.t, 90*time.Second, "a new baton process took over and the old one exited", func() bool {
		data, err := os.ReadFile(filepath.Join(b.data, "baton.lock"))
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid == 0 || pid == old {
			return false
		}
		if st := processState(old); st != "" && st != "Z" {
			return false
		}
		b.handedPID = pid
		return true
	})
}

// restart stops baton with sig and starts it again on the same data and ports.
func (b *batonProc) restart(sig syscall.Signal) {
	b.t.Helper()
	b.stop(sig)
	b.start()
}

// client is an API client with the admin token.
func (b *batonProc) client() *api.Client { return b.clientWith(b.token) }

// clientWith is an API client sending token ("" for none).
func (b *batonProc) clientWith(token string) *api.Client {
	c := api.NewClient("http://" + b.apiAddr)
	c.Token = token
	return c
}

// apiAddrs holds the API address of every running baton (→ *batonProc),
// for tokenTransport.
var apiAddrs sync.Map

// tokenTransport adds a baton's admin token to requests made with
// http.DefaultClient to that baton's API that carry no credentials of
// their own; requests to anything else (the proxy, apps) go unchanged.
type tokenTransport struct{ next http.RoundTripper }

func (t *tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if b, ok := apiAddrs.Load(r.URL.Host); ok && r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.(*batonProc).token)
	}
	return t.next.RoundTrip(r)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, within, what, cond)
}

// appDir writes a deployable folder of the example app with the given
// version. The manifest runs the prebuilt example binary by absolute path,
// which keeps artifacts tiny; withBinary ships the binary inside instead.
func appDir(t testing.TB, version string, opts ...func(dir string)) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"version.txt": version + "\n",
		"baton.toml": `[run]
command = "` + helloBin + `"
[health]
path = "/healthz"
interval = "100ms"
start_timeout = "20s"
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range opts {
		o(dir)
	}
	return dir
}

// withBinary copies the example binary into the folder and runs it from there.
func withBinary(dir string) {
	if err := copyHello(filepath.Join(dir, "hello")); err != nil {
		panic(err)
	}
	withManifest(`[run]
command = "./hello"
instances = 2
[health]
path = "/healthz"
interval = "100ms"
start_timeout = "20s"
`)(dir)
}

// copyHello copies the example binary to path, executable. The kernel
// copies it (copy_file_range) instead of reading its 8 MiB into this
// race-instrumented process and writing them out again (the profile of
// the e2e binary showed those copies).
func copyHello(path string) error {
	src, err := os.Open(helloBin)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// withBuild adds a build command to the manifest.
func withBuild(cmd string) func(string) {
	return func(dir string) {
		m, _ := os.ReadFile(filepath.Join(dir, "baton.toml"))
		os.WriteFile(filepath.Join(dir, "baton.toml"), append(m, []byte("[build]\ncommand = '"+cmd+"'\n")...), 0o644)
	}
}

// withListenGate makes the example app wait for the file gate before it
// listens (so a deployment stays in phase starting until the test opens it).
func withListenGate(gate string) func(string) {
	return func(dir string) { os.WriteFile(filepath.Join(dir, "listen-gate"), []byte(gate), 0o644) }
}

// unhealthy makes the example app fail its health check.
func unhealthy(dir string) { os.WriteFile(filepath.Join(dir, "unhealthy"), nil, 0o644) }

// withManifest replaces baton.toml.
func withManifest(m string) func(string) {
	return func(dir string) { os.WriteFile(filepath.Join(dir, "baton.toml"), []byte(m), 0o644) }
}

// deploy uploads dir (zipped) and returns the queued deployment.
func deploy(t testing.TB, c *api.Client, app, dir string, o api.DeployOptions) baton.Deployment {
	t.Helper()
	res, err := deployErr(c, app, dir, o)
	if err != nil {
		t.Fatalf("deploy %s: %v", app, err)
	}
	return res.Deployment
}

// deployErr uploads path: a folder is zipped, a .tar.gz file sent as is.
func deployErr(c *api.Client, app, path string, o api.DeployOptions) (api.DeployResult, error) {
	if strings.HasSuffix(path, ".tar.gz") {
		f, err := os.Open(path)
		if err != nil {
			return api.DeployResult{}, err
		}
		defer f.Close()
		o.ContentType = "application/gzip"
		return c.Deploy(context.Background(), app, f, o)
	}
	body, err := zipDir(path)
	if err != nil {
		return api.DeployResult{}, err
	}
	o.ContentType = "application/zip"
	return c.Deploy(context.Background(), app, bytes.NewReader(body), o)
}

// waitFinal follows a deployment until it is final.
func waitFinal(t testing.TB, c *api.Client, id string) baton.Deployment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := c.Follow(ctx, id, func(api.Event) {})
	if err != nil {
		t.Fatalf("follow %s: %v", id, err)
	}
	return d
}

// mustSucceed deploys and waits for success.
func mustSucceed(t testing.TB, c *api.Client, app, dir string) baton.Deployment {
	t.Helper()
	d := waitFinal(t, c, deploy(t, c, app, dir, api.DeployOptions{}).ID)
	if d.State != baton.StateSucceeded {
		log, _ := c.Log(context.Background(), d.ID)
		t.Fatalf("deployment %s %s: %s\n%s", d.ID, d.State, d.Error, log)
	}
	return d
}

// proxyClient sends requests to baton's proxy with a chosen Host.
type proxyClient struct {
	addr string
	http *http.Client
	// header is sent with every request (peerClient: the peer key).
	header http.Header
}

func newProxyClient(addr string) *proxyClient {
	return &proxyClient{addr: addr, http: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, Proxy: nil}}}
}

// get returns status and body of GET path on host through the proxy.
func (p *proxyClient) get(host, path string) (int, string, error) {
	req, err := http.NewRequest("GET", "http://"+p.addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	maps.Copy(req.Header, p.header)
	req.Host = host
	resp, err := p.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if via := resp.Header.Get("X-Server"); via != "" && resp.StatusCode != 200 {
		// Through HAProxy (haproxy.go): which host answered a failure.
		b = append([]byte("[via "+via+"] "), b...)
	}
	return resp.StatusCode, string(b), err
}

// version extracts "version" from the example app's JSON answer.
func version(body string) string {
	i := strings.Index(body, `"version":"`)
	if i < 0 {
		return ""
	}
	rest := body[i+len(`"version":"`):]
	return rest[:strings.IndexByte(rest, '"')]
}

// load is a steady load through the proxy (loadtest.Load).
type load struct{ *loadtest.Load }

// startLoad sends requests for host on n workers until finish, or until
// the test ends if a check stops it before.
func startLoad(t testing.TB, p *proxyClient, host string, n int) *load {
	l := &load{loadtest.Start(n, 0, func() (int, string, string, error) {
		status, body, err := p.get(host, "/")
		return status, version(body), body, err
	})}
	t.Cleanup(func() { l.finish() })
	return l
}

func (l *load) count(v string) int                 { return l.Count(v) }
func (l *load) finish() (map[string]int, []string) { return l.Finish() }
