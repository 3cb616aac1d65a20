// Package gitdeploy serves app repositories over git's smart HTTP protocol
// (through the system's git http-backend) and turns a push to an app's
// deploy branch into a deployment whose phases the pusher watches.
//
// How a push deploys: every receive-pack request gets a private Unix socket
// whose path goes to git in BATON_GIT_SOCKET. The repository's pre-receive
// hook (hook.sh, a few lines of sh + curl) posts the ref updates, push
// options and quarantine folder there; baton exports the pushed commit
// (git archive), submits it to the coordinator and streams the deployment
// log back as the hook's output, which git shows as "remote:" lines. The
// hook exits 0 only when the deployment succeeded; otherwise git refuses
// the whole push (every ref in it) and nothing moves.
//
// The deploy branch is not updated by git but by baton: the branch is
// listed in receive.procReceiveRefs, so after pre-receive git hands it to
// the proc-receive hook (the same script), and baton moves the branch to
// the pushed commit if that commit's deployment is still the newest that
// went live in the slot; otherwise the branch stays with the newer one and
// the push still succeeds, with a remote line saying so. The branch thus
// always names the commit that serves, also when two pushes that saw the
// same old value deploy one after the other (git's compare-and-swap would
// refuse the second after it had gone live). Such a push needs no force,
// and the branch may then lose the other push's commits; a remote line
// says so.
//
// Limits: a push that updates two deploy branches at once is refused; if
// the pusher disconnects, the deployment goes on but the branch is not
// moved; swaps do not move branches; git archive leaves out submodules
// and export-ignore paths. No authentication yet: Config.Authorize
// defaults to loopback clients only.
package gitdeploy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton"
)

// Store is the part of baton's store the git endpoint reads.
type Store interface {
	App(ctx context.Context, name string) (baton.App, error)
	Deployment(ctx context.Context, id string) (baton.Deployment, error)
	Deployments(ctx context.Context, f baton.DeploymentFilter) ([]baton.Deployment, error)
	Log(ctx context.Context, id string, after int64) ([]baton.LogLine, error)
	Revision(ctx context.Context, name string) (baton.Revision, error)
}

var _ Store = baton.Store(nil)

// Target is a branch whose pushes deploy to a slot.
type Target struct {
	Branch string
	Slot   string
}

// ref is the target's full ref name.
func (t Target) ref() string { return "refs/heads/" + t.Branch }

// defaultTargets is where pushes deploy when Config.Targets is nil:
// branch main to the production slot.
func defaultTargets() []Target { return []Target{{Branch: "main", Slot: baton.ProductionSlot}} }

// Config is what the git endpoint needs. Zero values take defaults.
type Config struct {
	Deployer baton.Deployer
	Store    Store
	// DataDir is baton's data directory; an app's repository is
	// DataDir/apps/APP/repo.git, so deleting the app deletes it.
	DataDir string
	// Domain and ProxyAddr make the URL shown after a successful push:
	// http://APP.DOMAIN:PORT/ (APP-SLOT.DOMAIN for other slots).
	Domain    string
	ProxyAddr string
	// MaxUpload bounds a push's request body; default 1 GiB. The exported
	// artifact is bounded by the same number.
	MaxUpload int64
	Logger    *slog.Logger
	// Backend is the git http-backend program; default
	// $(git --exec-path)/git-http-backend.
	Backend string

	// Targets returns an app's deploy branches and their slots; nil means
	// main → production. The per-slot deploy_branch setting plugs in here;
	// the first target's branch becomes HEAD of a new repository.
	Targets func(ctx context.Context, app string) ([]Target, error)
	// Policy returns the conflict policy of a push that sets no
	// -o on-conflict=…; nil means queue. baton serve reads the app's
	// option git_on_conflict (baton.AppOptions) here.
	Policy func(ctx context.Context, app string) (baton.Policy, error)
	// Authorize decides whether r may read (write false) or push to app's
	// repository; nil means LoopbackOnly. Token auth (HTTP basic, token as
	// password) plugs in here.
	Authorize func(r *http.Request, app string, write bool) error
}

// Handler serves /git/APP.git/… (and /git/APP/…).
type Handler struct {
	cfg Config
	log *slog.Logger

	backendOnce sync.Once
	backend     string
	backendErr  error

	// repoMu serializes creating repositories and installing hooks.
	repoMu sync.Mutex
	// refMu serializes baton's updates of deploy branches, so that the
	// check "is this still the newest live deployment" and the update
	// happen as one step.
	refMu sync.Mutex
}

var _ http.Handler = (*Handler)(nil)

// New returns the git endpoint. It starts nothing: each push owns what it
// starts and stops it before its request ends.
func New(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.MaxUpload == 0 {
		cfg.MaxUpload = 1 << 30
	}
	if cfg.Domain == "" {
		cfg.Domain = "localhost"
	}
	if abs, err := filepath.Abs(cfg.DataDir); err == nil {
		// git-http-backend runs in another directory: paths must be absolute.
		cfg.DataDir = abs
	}
	if cfg.Targets == nil {
		cfg.Targets = func(context.Context, string) ([]Target, error) { return defaultTargets(), nil }
	}
	if cfg.Policy == nil {
		cfg.Policy = func(context.Context, string) (baton.Policy, error) { return baton.PolicyQueue, nil }
	}
	if cfg.Authorize == nil {
		cfg.Authorize = func(r *http.Request, _ string, _ bool) error { return LoopbackOnly(r) }
	}
	return &Handler{cfg: cfg, log: cfg.Logger.With("component", "git")}
}

// RemoteURL is the URL to add as a git remote for app on the baton server
// whose API is at apiBase (e.g. http://127.0.0.1:7070).
func RemoteURL(apiBase, app string) string {
	return strings.TrimRight(apiBase, "/") + "/git/" + app + ".git"
}

// LoopbackOnly refuses requests that do not come from this machine: the
// default when no Authorize hook is configured (baton serve configures one
// that checks baton tokens).
func LoopbackOnly(r *http.Request) error {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return baton.Errorf(baton.EFORBIDDEN, "git over HTTP without an Authorize hook is served to clients on this machine only; push from the baton host or configure token authorization")
}

// ServeHTTP routes a git request to the app's repository.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, sub, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/git/"), "/")
	app := strings.TrimSuffix(name, ".git")
	if app == "" {
		h.fail(w, r, baton.Errorf(baton.ENOTFOUND, "no repository named; the git URL of an app is /git/APP.git"))
		return
	}
	if baton.ValidateName("app", app) != nil {
		h.fail(w, r, baton.Errorf(baton.ENOTFOUND, "app %q does not exist: %q is not an app name", app, app))
		return
	}
	push := sub == "git-receive-pack" || r.URL.Query().Get("service") == "git-receive-pack"
	if err := h.cfg.Authorize(r, app, push); err != nil {
		h.fail(w, r, err)
		return
	}
	if _, err := h.cfg.Store.App(r.Context(), app); err != nil {
		h.fail(w, r, err)
		return
	}
	targets, err := h.cfg.Targets(r.Context(), app)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	repo, err := h.ensureRepo(r.Context(), app, targets)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if r.Method == http.MethodPost && sub == "git-receive-pack" {
		h.receivePack(w, r, app, repo, sub, targets)
		return
	}
	h.serveBackend(w, r, app, repo, sub, nil)
}

// receivePack runs one push: it opens the push's hook socket, lets git
// receive the push with baton's hooks, and closes the socket.
func (h *Handler) receivePack(w http.ResponseWriter, r *http.Request, app, repo, sub string, targets []Target) {
	s, err := h.openSession(r.Context(), app, repo, targets)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer s.close()
	// receive-pack answers after it has read the pack; full duplex keeps
	// the rest of a request body readable once the answer has started.
	_ = http.NewResponseController(w).EnableFullDuplex()
	env := append([]string{"BATON_GIT_SOCKET=" + s.socket}, procReceiveEnv(targets)...)
	h.serveBackend(w, r, app, repo, sub, env)
}

// procReceiveEnv hands the deploy branches to the proc-receive hook
// (configuration through the environment, so it follows Targets per push).
func procReceiveEnv(targets []Target) []string {
	env := []string{"GIT_CONFIG_COUNT=" + strconv.Itoa(len(targets))}
	for i, t := range targets {
		n := strconv.Itoa(i)
		env = append(env, "GIT_CONFIG_KEY_"+n+"=receive.procReceiveRefs", "GIT_CONFIG_VALUE_"+n+"="+t.ref())
	}
	return env
}

// gitBackend returns the path of git http-backend.
func (h *Handler) gitBackend() (string, error) {
	h.backendOnce.Do(func() {
		if h.cfg.Backend != "" {
			h.backend = h.cfg.Backend
			return
		}
		out, err := exec.Command("git", "--exec-path").Output()
		if err != nil {
			h.backendErr = baton.Errorf(baton.EUNAVAILABLE, "git is not installed on the baton host (git --exec-path: %v); git push deploy needs it", err)
			return
		}
		h.backend = filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	})
	return h.backend, h.backendErr
}

// gitEnv is the environment of every git baton runs: nothing of the
// operator's global or system git configuration applies to app repositories.
func gitEnv(extra ...string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	return append([]string{"PATH=" + path, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0"}, extra...)
}

// commandTimeout bounds each git command baton runs itself.
const commandTimeout = 10 * time.Minute
