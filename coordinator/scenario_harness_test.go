package coordinator_test

// The scenario tests run a whole baton in this process (server.Open on :0
// with a temp data directory: real SQLite, supervisor, proxy and API) and
// drive it through the API client, as a CI pipeline would. They check the
// coordinator's state machine from the outside; e2e/ keeps what needs a
// separate baton process (kill -9, restart in place, the CLI, git, Kudu).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/artifact"
	"github.com/batonhq/baton/internal/invariants"
	"github.com/batonhq/baton/internal/loadtest"
	"github.com/batonhq/baton/internal/poll"
	"github.com/batonhq/baton/internal/sqlitetest"
	"github.com/batonhq/baton/internal/testparallel"
	"github.com/batonhq/baton/server"
)

// helloBin is the example app, built once for the test binary.
var helloBin string

func TestMain(m *testing.M) {
	// The scenarios mostly wait on child processes and the network, not
	// the CPU: unless -parallel is given, run more of them at once than
	// the default GOMAXPROCS.
	testparallel.Default(6)
	dir, err := os.MkdirTemp("", "baton-coordinator-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	helloBin = filepath.Join(dir, "hello")
	if out, err := exec.Command("go", "build", "-o", helloBin, "../examples/hello").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the example app: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// batonEnv is a baton running in this process on its own data directory.
type batonEnv struct {
	t     testing.TB
	data  string
	token string
	srv   *server.Server
	c     *api.Client
	p     *proxyClient
	// configure, when set, adjusts the server's configuration in open.
	configure func(*server.Config)
}

// startBaton runs a baton in-process on :0 with a fresh data directory; it
// is closed at the end of the test, which then checks that no process of
// it is left.
func startBaton(t testing.TB, configure ...func(*server.Config)) *batonEnv {
	t.Helper()
	tok, err := baton.NewTokenSecret()
	if err != nil {
		t.Fatal(err)
	}
	b := &batonEnv{t: t, data: t.TempDir(), token: tok}
	b.configure = func(c *server.Config) {
		for _, f := range configure {
			f(c)
		}
	}
	if err := os.WriteFile(filepath.Join(b.data, server.AdminTokenFile), []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Every baton of the scenarios starts from a copy of one migrated
	// store: migrating a new one was 7 % of this package's CPU time under
	// the race detector.
	sqlitetest.Copy(t, filepath.Join(b.data, "baton.db"))
	b.open()
	t.Cleanup(func() {
		b.close()
		b.assertNoProcesses()
	})
	return b
}

// open starts baton on b's data directory (again, after close).
func (b *batonEnv) open() {
	b.t.Helper()
	var srv *server.Server
	var err error
	// The data directory's lock (flock) belongs to the open file: a child
	// that another test forks while this one closes holds a copy until it
	// execs, so a re-open right after a close may briefly find it taken.
	ours := fmt.Sprintf("(pid %d)", os.Getpid())
	for deadline := time.Now().Add(5 * time.Second); ; {
		cfg := server.Config{
			DataDir: b.data, APIAddr: "127.0.0.1:0", ProxyAddr: "127.0.0.1:0",
			ControllerID: "test", DrainTimeout: 5 * time.Second, StopGrace: 2 * time.Second,
		}
		if b.configure != nil {
			b.configure(&cfg)
		}
		srv, err = server.Open(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), ours) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatalf("open baton: %v", err)
	}
	b.srv = srv
	b.c = api.NewClient("http://" + srv.APIAddr())
	b.c.Token = b.token
	b.p = newProxyClient(srv.ProxyAddr())
}

// close stops baton and waits for everything it started.
func (b *batonEnv) close() {
	b.t.Helper()
	if b.srv == nil {
		return
	}
	if err := b.srv.Close(); err != nil {
		b.t.Errorf("close baton: %v", err)
	}
	b.srv = nil
}

// restart closes baton and opens it again on the same data directory.
func (b *batonEnv) restart() {
	b.t.Helper()
	b.close()
	b.open()
}

// restartWithout is restart with paths removed while baton is down (a
// revision's folder, the image store: what a restore must make again).
func (b *batonEnv) restartWithout(paths ...string) {
	b.t.Helper()
	b.close()
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			b.t.Fatal(err)
		}
	}
	b.open()
}

// revisionDir is where baton unpacks rev of app.
func (b *batonEnv) revisionDir(app, rev string) string {
	return filepath.Join(b.data, "apps", app, "revisions", rev)
}

// assertNoProcesses checks that nothing baton started for this data
// directory runs: no supervisor record, no process whose HOME is in it.
func (b *batonEnv) assertNoProcesses() {
	b.t.Helper()
	eventually(b.t, 10*time.Second, "no process of "+b.data+" left", func() bool { return len(b.processes("")) == 0 })
	entries, _ := os.ReadDir(filepath.Join(b.data, "run"))
	for _, e := range entries {
		b.t.Errorf("supervisor record left: %s", e.Name())
	}
}

// processes returns the pids of live processes started by this baton for
// revision rev ("" for any revision).
func (b *batonEnv) processes(rev string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		var prev, home string
		for _, kv := range strings.Split(string(env), "\x00") {
			if v, ok := strings.CutPrefix(kv, "BATON_REVISION="); ok {
				prev = v
			} else if v, ok := strings.CutPrefix(kv, "HOME="); ok {
				home = v
			}
		}
		if prev == "" || !strings.HasPrefix(home, b.data+string(filepath.Separator)) || (rev != "" && prev != rev) {
			continue
		}
		if st := procState(pid); st == "" || st == "Z" || st == "X" {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// instances counts the running app instances of this baton (processes
// of the example app, not the shells the supervisor starts them with).
func (b *batonEnv) instances() int {
	n := 0
	for _, pid := range b.processes("") {
		if exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); err == nil && exe == helloBin {
			n++
		}
	}
	return n
}

// procState is a process's state letter, "" if it does not exist.
func procState(pid int) string {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// createApp creates an app (with extra slots).
func (b *batonEnv) createApp(app string, slots ...string) {
	b.t.Helper()
	if _, err := b.c.CreateApp(context.Background(), app); err != nil {
		b.t.Fatal(err)
	}
	for _, s := range slots {
		if _, err := b.c.CreateSlot(context.Background(), app, s); err != nil {
			b.t.Fatal(err)
		}
	}
}

// host is the proxy host name of an app's slot.
func host(app, slot string) string {
	if slot == "" || slot == baton.ProductionSlot {
		return app + ".localhost"
	}
	return app + "-" + slot + ".localhost"
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, within, what, cond)
}

// manifest is the example app's baton.toml with fast health checks;
// extra is appended (more sections, or keys of [health]).
func manifest(extra string) string {
	return "[run]\ncommand = \"" + helloBin + "\"\n[health]\npath = \"/healthz\"\ninterval = \"50ms\"\nstart_timeout = \"20s\"\n" + extra
}

// appDir writes a deployable folder of the example app of version v.
func appDir(t testing.TB, v string, opts ...func(dir string)) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "version.txt"), v+"\n")
	writeFile(t, filepath.Join(dir, "baton.toml"), manifest(""))
	for _, o := range opts {
		o(dir)
	}
	return dir
}

func writeFile(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// withManifest replaces baton.toml.
func withManifest(m string) func(string) {
	return func(dir string) {
		if err := os.WriteFile(filepath.Join(dir, "baton.toml"), []byte(m), 0o644); err != nil {
			panic(err)
		}
	}
}

// gate is a file a test creates to let a waiting build or app continue.
type gate string

func newGate(t testing.TB) gate { return gate(filepath.Join(t.TempDir(), "gate")) }

func (g gate) open(t testing.TB) { writeFile(t, string(g), "") }

// waitsInBuild makes a deployment wait in phase building until g opens.
func waitsInBuild(g gate) func(string) {
	return withManifest(manifest(fmt.Sprintf("[build]\ncommand = 'while [ ! -e %s ]; do sleep 0.02; done'\n", g)))
}

// listensAfter makes the example app listen only once g opens (a
// deployment waits in phase starting).
func listensAfter(g gate) func(string) {
	return func(dir string) {
		if err := os.WriteFile(filepath.Join(dir, "listen-gate"), []byte(g), 0o644); err != nil {
			panic(err)
		}
	}
}

// unhealthy makes the example app fail its health check.
func unhealthy(dir string) {
	if err := os.WriteFile(filepath.Join(dir, "unhealthy"), nil, 0o644); err != nil {
		panic(err)
	}
}

// deployErr uploads the folder dir, zipped.
func (b *batonEnv) deployErr(app, dir string, o api.DeployOptions) (api.DeployResult, error) {
	var buf bytes.Buffer
	if err := artifact.Pack(dir, &buf); err != nil {
		return api.DeployResult{}, err
	}
	o.ContentType = "application/zip"
	return b.c.Deploy(context.Background(), app, &buf, o)
}

// deploy uploads dir and returns the deployment it queued.
func (b *batonEnv) deploy(app, dir string, o api.DeployOptions) baton.Deployment {
	b.t.Helper()
	res, err := b.deployErr(app, dir, o)
	if err != nil {
		b.t.Fatalf("deploy %s: %v", app, err)
	}
	return res.Deployment
}

// get reads a deployment.
func (b *batonEnv) get(id string) baton.Deployment {
	b.t.Helper()
	d, err := b.c.Deployment(context.Background(), id)
	if err != nil {
		b.t.Fatalf("deployment %s: %v", id, err)
	}
	return d
}

// waitFinal polls a deployment until it is final.
func (b *batonEnv) waitFinal(id string) baton.Deployment {
	b.t.Helper()
	var d baton.Deployment
	eventually(b.t, time.Minute, "deployment "+id+" final", func() bool {
		d = b.get(id)
		return d.State.Final()
	})
	return d
}

// succeed waits for a deployment and fails the test unless it succeeded.
func (b *batonEnv) succeed(id string) baton.Deployment {
	b.t.Helper()
	d := b.waitFinal(id)
	if d.State != baton.StateSucceeded {
		log, _ := b.c.Log(context.Background(), id)
		b.t.Fatalf("%s %s %s: %s\n%s", d.Kind, d.ID, d.State, d.Error, log)
	}
	return d
}

// mustDeploy deploys dir and waits for its success.
func (b *batonEnv) mustDeploy(app, dir string, o api.DeployOptions) baton.Deployment {
	b.t.Helper()
	return b.succeed(b.deploy(app, dir, o).ID)
}

// waitPhase polls a deployment until it reaches phase.
func (b *batonEnv) waitPhase(id string, phase baton.Phase) baton.Deployment {
	b.t.Helper()
	var d baton.Deployment
	eventually(b.t, 30*time.Second, fmt.Sprintf("%s in phase %s", id, phase), func() bool {
		d = b.get(id)
		if d.State.Final() {
			b.t.Fatalf("%s ended (%s: %s) before phase %s", id, d.State, d.Error, phase)
		}
		return d.Phase == phase
	})
	return d
}

// history is an app's deployments, newest first.
func (b *batonEnv) history(app string) []baton.Deployment {
	b.t.Helper()
	ds, err := b.c.Deployments(context.Background(), app, 100)
	if err != nil {
		b.t.Fatal(err)
	}
	return ds
}

// routing is the active revisions of an app and their weights.
func (b *batonEnv) routing(app string) map[string]int {
	b.t.Helper()
	revs, err := b.c.Revisions(context.Background(), app)
	if err != nil {
		b.t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range revs {
		if r.Active {
			out[r.Name] = r.Weight
		}
	}
	return out
}

// noLocks checks that nothing holds a lease.
func (b *batonEnv) noLocks() {
	b.t.Helper()
	if ls, err := b.c.Locks(context.Background()); err != nil || len(ls) != 0 {
		b.t.Fatalf("locks: %+v %v", ls, err)
	}
}

// assertClean checks a deployment that did not go live left nothing: no
// process, no revision folder, no temp files, no lease.
func (b *batonEnv) assertClean(d baton.Deployment) {
	b.t.Helper()
	if d.Revision != "" {
		eventually(b.t, 10*time.Second, "no process of "+d.Revision, func() bool { return len(b.processes(d.Revision)) == 0 })
		if _, err := os.Stat(b.revisionDir(d.App, d.Revision)); !os.IsNotExist(err) {
			b.t.Errorf("revision folder of %s remains (%v)", d.Revision, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(b.data, "tmp")); len(entries) > 0 {
		b.t.Errorf("temp area not empty: %v", entries)
	}
	b.noLocks()
}

// assertSerial fails t unless the deployments that ran never overlapped,
// in acceptance order with rising tokens (invariants.Serial).
func assertSerial(t testing.TB, ds []baton.Deployment) {
	t.Helper()
	if err := invariants.Serial(ds); err != nil {
		t.Fatal(err)
	}
}

// proxyClient sends requests to baton's proxy with a chosen Host.
type proxyClient struct {
	addr string
	http *http.Client
}

func newProxyClient(addr string) *proxyClient {
	return &proxyClient{addr: addr, http: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 16, Proxy: nil}}}
}

// get returns status and body of GET / on host through the proxy.
func (p *proxyClient) get(host string, header ...string) (int, string, error) {
	req, err := http.NewRequest("GET", "http://"+p.addr+"/", nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// answer is the example app's JSON answer.
type answer struct {
	Revision   string            `json:"revision"`
	Slot       string            `json:"slot"`
	Version    string            `json:"version"`
	PID        int               `json:"pid"`
	Warmups    int               `json:"warmups"`
	Redirected int               `json:"redirected"`
	Settings   map[string]string `json:"settings"`
}

// ask returns the answer of the app serving host, failing the test on
// anything but a 200.
func (b *batonEnv) ask(host string, header ...string) answer {
	b.t.Helper()
	status, body, err := b.p.get(host, header...)
	if err != nil || status != 200 {
		b.t.Fatalf("GET %s: %d %s %v", host, status, body, err)
	}
	var a answer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		b.t.Fatalf("GET %s: %v in %s", host, err, body)
	}
	return a
}

// serves checks that host answers with version v.
func (b *batonEnv) serves(host, v string) answer {
	b.t.Helper()
	a := b.ask(host)
	if a.Version != v {
		b.t.Fatalf("%s serves %+v, want version %s", host, a, v)
	}
	return a
}

// load is a steady load through the proxy (loadtest.Load).
type load struct{ *loadtest.Load }

// startLoad sends GETs for host on n workers until finish (at the latest
// when the test ends), counting answers per version.
func (b *batonEnv) startLoad(host string, n int) *load {
	p := b.p
	l := &load{loadtest.Start(n, 2*time.Millisecond, // a steady load, not a flood: other tests share the CPU
		func() (int, string, string, error) {
			status, body, err := p.get(host)
			var a answer
			_ = json.Unmarshal([]byte(body), &a)
			return status, a.Version, body, err
		})}
	b.t.Cleanup(func() { l.finish() })
	return l
}

func (l *load) count(v string) int                 { return l.Count(v) }
func (l *load) finish() (map[string]int, []string) { return l.Finish() }

// finishClean ends the load, fails the test if any request failed
// during what, and returns the answers by version.
func (l *load) finishClean(t testing.TB, what string) map[string]int {
	t.Helper()
	got, failures := l.finish()
	if len(failures) > 0 {
		t.Fatalf("%s: %d failed requests, first: %v", what, len(failures), failures[:min(5, len(failures))])
	}
	return got
}

// swapRequest is the body of POST /api/v1/apps/{app}/swaps.
type swapRequest struct {
	Source         string `json:"source"`
	Target         string `json:"target"`
	Preview        bool   `json:"preview"`
	PreviewTimeout string `json:"preview_timeout,omitempty"`
}

// swap starts a swap through the API's JSON body (so these tests do not
// depend on where the parameter type lives).
func (b *batonEnv) swap(app string, sr swapRequest, policy baton.Policy) (baton.Deployment, error) {
	body, _ := json.Marshal(sr)
	req, err := http.NewRequest("POST", "http://"+b.srv.APIAddr()+"/api/v1/apps/"+app+"/swaps?on_conflict="+string(policy), bytes.NewReader(body))
	if err != nil {
		return baton.Deployment{}, err
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.c.HTTP.Do(req)
	if err != nil {
		return baton.Deployment{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var p struct {
			Code   string `json:"code"`
			Detail string `json:"detail"`
			Title  string `json:"title"`
		}
		_ = json.Unmarshal(raw, &p)
		code := p.Code
		if code == "" {
			code = map[int]string{400: baton.EINVALID, 409: baton.ECONFLICT, 404: baton.ENOTFOUND, 423: baton.EFROZEN}[resp.StatusCode]
		}
		return baton.Deployment{}, baton.Errorf(code, "%d %s", resp.StatusCode, strings.TrimSpace(p.Detail+" "+string(raw)))
	}
	var d baton.Deployment
	return d, json.Unmarshal(raw, &d)
}
