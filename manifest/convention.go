package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/batonhq/baton"
)

// Convention file names, in the order Load tries them when an artifact has
// no baton.toml and no Procfile web: line (an App Service zip, say).
const (
	PrebuiltFile     = "app"              // a ready-to-run executable: ./app
	GoModFile        = "go.mod"           // with main.go, a Go program: go build, then ./app
	GoMainFile       = "main.go"          // see GoModFile
	PackageFile      = "package.json"     // with scripts.start: npm start
	PythonFile       = "app.py"           // python3 app.py, or gunicorn app:app
	RequirementsFile = "requirements.txt" // installed into .python_packages before app.py runs
	StaticFile       = "index.html"       // a static site
)

// pythonPackages is where the Python rule installs requirements.txt; it
// lives inside the revision folder so revisions never share packages.
const pythonPackages = ".python_packages"

// conventions detects a runnable app from the files at the artifact root.
// lookPath finds the tools a rule needs on baton's PATH (the PATH its
// builds and instances get), so a missing tool fails the deployment with
// a sentence now instead of "sh: npm: not found" later.
type conventions struct {
	lookPath func(file string) (string, error)
	// goCaches returns the Go build and module caches builds share; ""
	// leaves Go's default, inside the revision folder (its HOME).
	goCaches func() (build, modules string)
}

var defaultConventions = conventions{lookPath: exec.LookPath, goCaches: hostGoCaches}

// rule is one convention: it returns ok=false when it does not apply, and
// may leave a hint for the error shown when no rule applies.
type rule func(c conventions, root *os.Root, hints *[]string) (m baton.Manifest, ok bool, err error)

// rules are tried in order; the first that applies wins. A prebuilt
// executable comes first because a zip deploy is, as on App Service,
// assumed ready to run: no build when there is nothing to build.
var rules = []rule{prebuiltRule, goRule, nodeRule, pythonRule, staticRule}

// detect returns the manifest of the first convention that applies, with
// Source naming the rule, or an EUNPROCESSABLE error that says why none does.
func (c conventions) detect(root *os.Root) (baton.Manifest, error) {
	var hints []string
	for _, r := range rules {
		m, ok, err := r(c, root, &hints)
		if err != nil {
			return baton.Manifest{}, err
		}
		if ok {
			return m.WithDefaults(), nil
		}
	}
	return baton.Manifest{}, noRuleErr(root, hints)
}

func prebuiltRule(c conventions, root *os.Root, _ *[]string) (baton.Manifest, bool, error) {
	info, err := root.Stat(PrebuiltFile)
	if err != nil || !info.Mode().IsRegular() {
		return baton.Manifest{}, false, nil
	}
	m := baton.Manifest{Source: "convention: prebuilt executable ./app"}
	m.Run.Command = "exec ./app"
	if info.Mode()&0o111 == 0 {
		// Zips made on Windows carry no exec bit; the build step restores it
		// so the log shows it happened.
		m.Build.Command = "chmod +x ./app"
	}
	return m, true, nil
}

func goRule(c conventions, root *os.Root, hints *[]string) (baton.Manifest, bool, error) {
	hasMod, hasMain := isFile(root, GoModFile), isFile(root, GoMainFile)
	if !hasMod || !hasMain {
		if hasMod || hasMain {
			*hints = append(*hints, "a Go program needs both go.mod and main.go at the root")
		}
		return baton.Manifest{}, false, nil
	}
	if err := c.need("go", "go.mod + main.go (a Go program)", "ship a prebuilt executable named app instead"); err != nil {
		return baton.Manifest{}, false, err
	}
	m := baton.Manifest{Source: "convention: go.mod + main.go"}
	// Builds share baton's Go caches: with a fresh cache in every revision
	// folder each deploy would compile the standard library again.
	// -modcacherw keeps a module cache in the revision folder removable.
	m.Build.Command = "go build -modcacherw -o app ."
	if build, modules := c.goCaches(); build != "" && modules != "" {
		m.Build.Command = "GOCACHE=" + shellQuote(build) + " GOMODCACHE=" + shellQuote(modules) + " " + m.Build.Command
	}
	m.Run.Command = "exec ./app"
	return m, true, nil
}

// hostGoCaches returns the caches the go command would use for baton's own
// user, as go env computes them.
func hostGoCaches() (build, modules string) {
	build = os.Getenv("GOCACHE")
	if build == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			build = filepath.Join(dir, "go-build")
		}
	}
	modules = os.Getenv("GOMODCACHE")
	if modules == "" {
		gopath := filepath.SplitList(os.Getenv("GOPATH"))
		if len(gopath) > 0 && gopath[0] != "" {
			modules = filepath.Join(gopath[0], "pkg", "mod")
		} else if home, err := os.UserHomeDir(); err == nil {
			modules = filepath.Join(home, "go", "pkg", "mod")
		}
	}
	return build, modules
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// packageJSON is the part of package.json the Node rule reads.
type packageJSON struct {
	Scripts      map[string]string `json:"scripts"`
	Dependencies map[string]string `json:"dependencies"`
}

func nodeRule(c conventions, root *os.Root, hints *[]string) (baton.Manifest, bool, error) {
	data, err := readFile(root, PackageFile)
	if errors.Is(err, fs.ErrNotExist) {
		return baton.Manifest{}, false, nil
	}
	if err != nil {
		return baton.Manifest{}, false, err
	}
	var pkg packageJSON
	if err := json.Unmarshal(data, &pkg); err != nil {
		*hints = append(*hints, fmt.Sprintf("package.json is not valid JSON (%v)", err))
		return baton.Manifest{}, false, nil
	}
	if strings.TrimSpace(pkg.Scripts["start"]) == "" {
		*hints = append(*hints, `package.json has no "start" script; add one (e.g. "start": "node server.js")`)
		return baton.Manifest{}, false, nil
	}
	if err := c.need("npm", "package.json with a start script (a Node app)", "install Node.js on the baton host"); err != nil {
		return baton.Manifest{}, false, err
	}
	m := baton.Manifest{Source: "convention: package.json start script"}
	m.Run.Command = "exec npm start"
	if len(pkg.Dependencies) > 0 && !isDir(root, "node_modules") {
		// Like App Service, a zip that carries node_modules is used as is.
		m.Build.Command = "npm install --omit=dev --no-audit --no-fund"
		if isFile(root, "package-lock.json") || isFile(root, "npm-shrinkwrap.json") {
			m.Build.Command = "npm ci --omit=dev --no-audit --no-fund"
		}
	}
	return m, true, nil
}

func pythonRule(c conventions, root *os.Root, hints *[]string) (baton.Manifest, bool, error) {
	hasReqs := isFile(root, RequirementsFile)
	if !isFile(root, PythonFile) {
		if hasReqs {
			*hints = append(*hints, "requirements.txt is there but app.py is not; baton runs Python apps as `python3 app.py`")
		}
		return baton.Manifest{}, false, nil
	}
	if err := c.need("python3", "app.py (a Python app)", "install python3 on the baton host"); err != nil {
		return baton.Manifest{}, false, err
	}
	m := baton.Manifest{Source: "convention: app.py"}
	m.Run.Command = "exec python3 app.py"
	if !hasReqs {
		return m, true, nil
	}
	reqs, err := readFile(root, RequirementsFile)
	if err != nil {
		return baton.Manifest{}, false, err
	}
	m.Source = "convention: app.py + requirements.txt"
	m.Build.Command = "python3 -m pip install --disable-pip-version-check --no-cache-dir --target " + pythonPackages + " -r requirements.txt"
	m.Run.Command = "PYTHONPATH=" + pythonPackages + " exec python3 app.py"
	if requires(reqs, "gunicorn") {
		// As App Service does for app.py with gunicorn: serve the WSGI
		// object named app.
		m.Source += " (gunicorn app:app)"
		m.Run.Command = "PYTHONPATH=" + pythonPackages + ` exec python3 -m gunicorn --bind "127.0.0.1:$PORT" app:app`
	}
	return m, true, nil
}

func staticRule(c conventions, root *os.Root, _ *[]string) (baton.Manifest, bool, error) {
	if !isFile(root, StaticFile) {
		return baton.Manifest{}, false, nil
	}
	// baton has no static file server of its own yet; a one-line server
	// from the host does the job until it has.
	if _, err := c.lookPath("python3"); err == nil {
		m := baton.Manifest{Source: "convention: index.html (static site served by python3 -m http.server)"}
		m.Run.Command = `exec python3 -m http.server "$PORT" --bind 127.0.0.1`
		return m, true, nil
	}
	if _, err := c.lookPath("busybox"); err == nil {
		m := baton.Manifest{Source: "convention: index.html (static site served by busybox httpd)"}
		m.Run.Command = `exec busybox httpd -f -p "127.0.0.1:$PORT" -h .`
		return m, true, nil
	}
	return baton.Manifest{}, false, baton.Errorf(baton.EUNPROCESSABLE,
		"index.html at the artifact root makes this a static site, but baton serves static sites with python3 or busybox and neither is on its PATH; install one of them, or add a baton.toml whose [run] command starts a web server")
}

// need fails with a sentence when tool is not on baton's PATH.
func (c conventions) need(tool, what, instead string) error {
	if _, err := c.lookPath(tool); err != nil {
		return baton.Errorf(baton.EUNPROCESSABLE,
			"the artifact is %s, but %s is not on baton's PATH; %s, or add a baton.toml that says how to run it", what, tool, instead)
	}
	return nil
}

// requires reports whether a requirements.txt names the package.
func requires(reqs []byte, pkg string) bool {
	for _, line := range strings.Split(string(reqs), "\n") {
		name := strings.ToLower(strings.TrimSpace(line))
		if i := strings.IndexAny(name, "=<>!~;[ \t#"); i >= 0 {
			name = name[:i]
		}
		if name == pkg {
			return true
		}
	}
	return false
}

// noRuleErr explains that nothing at the root says how to run the app,
// listing what is there and any near misses.
func noRuleErr(root *os.Root, hints []string) error {
	msg := "no baton.toml or Procfile with a web: line at the artifact root, and no convention applies: " +
		"baton looks for an executable named app, go.mod + main.go, package.json with a start script, app.py, or index.html; " +
		"add a baton.toml ([run] command = \"...\") or a Procfile (web: ...) — see docs/kudu.md"
	names := rootNames(root)
	if len(names) == 1 && strings.HasSuffix(names[0], "/") {
		hints = append(hints, fmt.Sprintf("the archive holds a single folder %s; archive its contents instead (cd %s && zip -r ../app.zip .)", names[0], names[0]))
	}
	if len(hints) > 0 {
		msg += ". Also: " + strings.Join(hints, "; ")
	}
	if len(names) > 0 {
		const show = 12
		if len(names) > show {
			names = append(names[:show], fmt.Sprintf("… (%d more)", len(names)-show))
		}
		msg += ". The root holds: " + strings.Join(names, ", ")
	} else {
		msg += ". The archive is empty"
	}
	return baton.Errorf(baton.EUNPROCESSABLE, "%s", msg)
}

// rootNames lists the root's entries, folders with a trailing slash.
func rootNames(root *os.Root) []string {
	f, err := root.Open(".")
	if err != nil {
		return nil
	}
	defer f.Close()
	entries, err := f.ReadDir(200)
	if err != nil && len(entries) == 0 {
		return nil
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// isFile reports whether name is a regular file at the root (not followed
// through links that leave the root).
func isFile(root *os.Root, name string) bool {
	info, err := root.Stat(name)
	return err == nil && info.Mode().IsRegular()
}

func isDir(root *os.Root, name string) bool {
	info, err := root.Stat(name)
	return err == nil && info.IsDir()
}
