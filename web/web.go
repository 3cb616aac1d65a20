// Package web serves baton's dashboard: static, embedded HTML, CSS and
// JavaScript that talk to the public REST API under /api/v1 only.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed ui
var files embed.FS

// Prefix is the URL path under which the dashboard's assets are served;
// the page itself is served at "/".
const Prefix = "/ui/"

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the dashboard: index.html at "/" and the assets under
// Prefix. Mount it for the patterns "GET /{$}" and "GET /ui/".
type Handler struct {
	assets map[string]asset // by path under ui/, e.g. "app.css"
}

// New loads the embedded assets. It panics only if the binary was built
// without them, which the package's tests rule out.
func New() *Handler {
	h := &Handler{assets: map[string]asset{}}
	err := fs.WalkDir(files, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		h.assets[strings.TrimPrefix(p, "ui/")] = asset{
			body:        body,
			contentType: contentType(p),
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("web: embedded assets: %v", err))
	}
	if _, ok := h.assets["index.html"]; !ok {
		panic("web: embedded assets lack index.html")
	}
	return h
}

// contentType is set explicitly: browsers refuse ES modules served with a
// type the platform's mime table may not know.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// ServeHTTP answers "/" with the page and Prefix+NAME with an asset.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := "index.html"
	if r.URL.Path != "/" {
		rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if !ok || rest == "" {
			http.NotFound(w, r)
			return
		}
		name = rest
	}
	a, ok := h.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("ETag", a.etag)
	// Revalidate every time: the assets change with the binary, and a
	// stale script talking to a newer API is worse than one 304.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	// The page has buttons that cancel deployments and break locks:
	// no framing (clickjacking), no script or style from anywhere else.
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	hd.Set("Referrer-Policy", "no-referrer")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
