package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestServesPageAndAssets(t *testing.T) {
	h := New()
	for _, tc := range []struct {
		path   string
		status int
		typ    string
		body   string
	}{
		{"/", 200, "text/html; charset=utf-8", `<script type="module" src="/ui/js/main.js">`},
		{"/ui/index.html", 200, "text/html; charset=utf-8", "<main"},
		{"/ui/app.css", 200, "text/css; charset=utf-8", ":root"},
		{"/ui/js/main.js", 200, "text/javascript; charset=utf-8", "renderOverview"},
		{"/ui/baton.svg", 200, "image/svg+xml", "<svg"},
		{"/ui/", 404, "", ""},
		{"/ui/nope.js", 404, "", ""},
		{"/ui/../web.go", 404, "", ""},
		{"/other", 404, "", ""},
	} {
		w := get(t, h, tc.path)
		if w.Code != tc.status {
			t.Errorf("GET %s: %d, want %d", tc.path, w.Code, tc.status)
			continue
		}
		if tc.typ != "" && w.Header().Get("Content-Type") != tc.typ {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, w.Header().Get("Content-Type"), tc.typ)
		}
		if !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.body)
		}
	}
}

func TestSecurityAndCacheHeaders(t *testing.T) {
	h := New()
	w := get(t, h, "/")
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-cache",
	} {
		if !strings.Contains(w.Header().Get(k), want) {
			t.Errorf("%s = %q, want it to contain %q", k, w.Header().Get(k), want)
		}
	}
	etag := w.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if w := get(t, h, "/", "If-None-Match", etag); w.Code != http.StatusNotModified {
		t.Errorf("revalidation with the ETag: %d, want 304", w.Code)
	}
}

// TestModulesResolve checks, without a browser, that every import and
// every asset the page names is embedded: a typo here is a blank page.
func TestModulesResolve(t *testing.T) {
	importRe := regexp.MustCompile(`(?m)^import .* from '\./([a-z]+\.js)';$`)
	err := fs.WalkDir(files, "ui/js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, _ := files.ReadFile(p)
		for _, m := range importRe.FindAllStringSubmatch(string(src), -1) {
			if _, err := fs.Stat(files, "ui/js/"+m[1]); err != nil {
				t.Errorf("%s imports %s, which is not embedded", p, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	index, _ := files.ReadFile("ui/index.html")
	for _, m := range regexp.MustCompile(`(?:src|href)="/ui/([^"]+)"`).FindAllStringSubmatch(string(index), -1) {
		if _, err := fs.Stat(files, "ui/"+m[1]); err != nil {
			t.Errorf("index.html names /ui/%s, which is not embedded", m[1])
		}
	}
}

// TestWorksOffline: no asset loads anything from another origin (no CDN,
// no web fonts); the CSP would block it anyway, silently.
func TestWorksOffline(t *testing.T) {
	external := regexp.MustCompile(`(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/`)
	err := fs.WalkDir(files, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".svg") {
			return err // an SVG's xmlns is a name, not a load
		}
		src, _ := files.ReadFile(p)
		for _, line := range strings.Split(string(src), "\n") {
			code := line
			if i := strings.Index(code, "// "); i >= 0 {
				code = code[:i]
			}
			// The SVG namespace is a name, not a load (charts.js).
			code = strings.ReplaceAll(code, "'http://www.w3.org/2000/svg'", "")
			if m := external.FindString(code); m != "" {
				t.Errorf("%s loads from another origin: %s", p, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
