package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonhq/baton"
)

// tools is a lookPath that finds only the named tools.
func tools(names ...string) func(string) (string, error) {
	return func(file string) (string, error) {
		for _, n := range names {
			if n == file {
				return "/usr/bin/" + file, nil
			}
		}
		return "", errors.New("not found")
	}
}

func detectIn(t *testing.T, dir string, lookPath func(string) (string, error)) (baton.Manifest, error) {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	noCaches := func() (string, string) { return "", "" }
	return conventions{lookPath: lookPath, goCaches: noCaches}.detect(root)
}

func TestConventions(t *testing.T) {
	all := tools("go", "npm", "python3", "busybox")
	tests := []struct {
		name     string
		files    map[string]string
		exec     []string // files made executable
		lookPath func(string) (string, error)
		source   string // want this Source, run and build, or:
		run      string
		build    string
		wantErr  string // part of the EUNPROCESSABLE message
	}{
		{name: "prebuilt executable", files: map[string]string{"app": "\x7fELF", "go.mod": "module x", "main.go": "package main"}, exec: []string{"app"},
			lookPath: all, source: "convention: prebuilt executable ./app", run: "exec ./app"},
		{name: "prebuilt without exec bit (zipped on Windows)", files: map[string]string{"app": "\x7fELF"},
			lookPath: tools(), source: "convention: prebuilt executable ./app", run: "exec ./app", build: "chmod +x ./app"},
		{name: "go program", files: map[string]string{"go.mod": "module x", "main.go": "package main"},
			lookPath: all, source: "convention: go.mod + main.go", run: "exec ./app", build: "go build -modcacherw -o app ."},
		{name: "go program without go", files: map[string]string{"go.mod": "module x", "main.go": "package main"},
			lookPath: tools("python3"), wantErr: "the artifact is go.mod + main.go (a Go program), but go is not on baton's PATH"},
		{name: "node with node_modules", files: map[string]string{"package.json": `{"scripts":{"start":"node s.js"},"dependencies":{"x":"1"}}`, "node_modules/x/index.js": ""},
			lookPath: all, source: "convention: package.json start script", run: "exec npm start"},
		{name: "node without node_modules", files: map[string]string{"package.json": `{"scripts":{"start":"node s.js"},"dependencies":{"x":"1"}}`},
			lookPath: all, source: "convention: package.json start script", run: "exec npm start", build: "npm install --omit=dev --no-audit --no-fund"},
		{name: "node with lock file", files: map[string]string{"package.json": `{"scripts":{"start":"node s.js"},"dependencies":{"x":"1"}}`, "package-lock.json": "{}"},
			lookPath: all, source: "convention: package.json start script", run: "exec npm start", build: "npm ci --omit=dev --no-audit --no-fund"},
		{name: "node without npm", files: map[string]string{"package.json": `{"scripts":{"start":"node s.js"}}`},
			lookPath: tools(), wantErr: "but npm is not on baton's PATH"},
		{name: "package.json without start falls through to static", files: map[string]string{"package.json": `{"scripts":{"build":"vite"}}`, "index.html": "<p>"},
			lookPath: all, source: "convention: index.html (static site served by python3 -m http.server)", run: `exec python3 -m http.server "$PORT" --bind 127.0.0.1`},
		{name: "package.json without start is a hint", files: map[string]string{"package.json": `{"scripts":{"build":"vite"}}`},
			lookPath: all, wantErr: `package.json has no "start" script`},
		{name: "python", files: map[string]string{"app.py": "print()"},
			lookPath: all, source: "convention: app.py", run: "exec python3 app.py"},
		{name: "python with requirements", files: map[string]string{"app.py": "", "requirements.txt": "flask==3.0\n"},
			lookPath: all, source: "convention: app.py + requirements.txt", run: "PYTHONPATH=.python_packages exec python3 app.py",
			build: "python3 -m pip install --disable-pip-version-check --no-cache-dir --target .python_packages -r requirements.txt"},
		{name: "python with gunicorn", files: map[string]string{"app.py": "", "requirements.txt": "Flask\nGunicorn>=21 ; python_version>'3'\n"},
			lookPath: all, source: "convention: app.py + requirements.txt (gunicorn app:app)",
			run:   `PYTHONPATH=.python_packages exec python3 -m gunicorn --bind "127.0.0.1:$PORT" app:app`,
			build: "python3 -m pip install --disable-pip-version-check --no-cache-dir --target .python_packages -r requirements.txt"},
		{name: "requirements without app.py", files: map[string]string{"requirements.txt": "flask"},
			lookPath: all, wantErr: "requirements.txt is there but app.py is not"},
		{name: "static with busybox only", files: map[string]string{"index.html": "<p>"},
			lookPath: tools("busybox"), source: "convention: index.html (static site served by busybox httpd)", run: `exec busybox httpd -f -p "127.0.0.1:$PORT" -h .`},
		{name: "static without a server", files: map[string]string{"index.html": "<p>"},
			lookPath: tools(), wantErr: "neither is on its PATH"},
		{name: "single folder", files: map[string]string{"dist/index.html": "<p>"},
			lookPath: all, wantErr: "the archive holds a single folder dist/; archive its contents instead"},
		{name: "nothing runnable", files: map[string]string{"README.md": "hi", "lib/x.txt": ""},
			lookPath: all, wantErr: "no convention applies: baton looks for an executable named app, go.mod + main.go, package.json with a start script, app.py, or index.html; add a baton.toml ([run] command = \"...\") or a Procfile (web: ...) — see docs/kudu.md. The root holds: README.md, lib/"},
		{name: "app is a folder", files: map[string]string{"app/x": ""},
			lookPath: all, wantErr: "The root holds: app/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tt.files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, name := range tt.exec {
				if err := os.Chmod(filepath.Join(dir, name), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			m, err := detectIn(t, dir, tt.lookPath)
			if tt.wantErr != "" {
				if baton.ErrorCode(err) != baton.EUNPROCESSABLE || !strings.Contains(baton.ErrorMessage(err), tt.wantErr) {
					t.Fatalf("detect = %v, want %s containing %q", err, baton.EUNPROCESSABLE, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Source != tt.source || m.Run.Command != tt.run || m.Build.Command != tt.build {
				t.Fatalf("detect = source %q, run %q, build %q; want %q, %q, %q", m.Source, m.Run.Command, m.Build.Command, tt.source, tt.run, tt.build)
			}
			if m.Run.Instances != 1 || m.Health.Path != "/" || m.Build.Timeout != baton.DefaultBuildTimeout {
				t.Fatalf("defaults not applied: %+v", m)
			}
		})
	}
}

// TestConventionLinkOutside: an app link that leads out of the artifact is
// not taken for the prebuilt executable.
func TestConventionLinkOutside(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("/bin/sh", filepath.Join(dir, "app")); err != nil {
		t.Fatal(err)
	}
	if _, err := detectIn(t, dir, tools("python3")); baton.ErrorCode(err) != baton.EUNPROCESSABLE {
		t.Fatalf("detect with app linking outside = %v, want %s", err, baton.EUNPROCESSABLE)
	}
}

// TestLoadFallsBackToConventions: Load uses the conventions only when there
// is neither baton.toml nor a Procfile web: line.
func TestLoadFallsBackToConventions(t *testing.T) {
	dir := writeFiles(t, map[string]string{"Procfile": "worker: ./w", "app": "#!/bin/sh\n"})
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Source != "convention: prebuilt executable ./app" {
		t.Fatalf("Source = %q", m.Source)
	}
}

// TestGoBuildSharesCaches: the Go rule points builds at the host's caches.
func TestGoBuildSharesCaches(t *testing.T) {
	dir := writeFiles(t, map[string]string{"go.mod": "module x", "main.go": "package main"})
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	c := conventions{lookPath: tools("go"), goCaches: func() (string, string) { return "/var/cache/go build", "/home/o'brien/go/pkg/mod" }}
	m, err := c.detect(root)
	if err != nil {
		t.Fatal(err)
	}
	want := `GOCACHE='/var/cache/go build' GOMODCACHE='/home/o'\''brien/go/pkg/mod' go build -modcacherw -o app .`
	if m.Build.Command != want {
		t.Fatalf("build = %s\nwant    %s", m.Build.Command, want)
	}
}
