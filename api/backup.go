package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/batonhq/baton"
)

// BackupOptions is the body of POST /api/v1/backup.
type BackupOptions struct {
	// IncludeKey puts the key that seals secret settings in the archive;
	// without it, a restore needs the key file.
	IncludeKey bool `json:"include_key,omitempty"`
	// StoreDump puts a pg_dump of a PostgreSQL store in the archive.
	StoreDump bool `json:"store_dump,omitempty"`
}

// BackupFunc writes a backup archive (tar.gz) to w.
type BackupFunc func(ctx context.Context, w io.Writer, o BackupOptions) error

// backup streams a backup archive. Until its first byte an error is a
// problem response; after it, the response is cut off (no end of chunked
// body, no gzip trailer), so that no client takes it for a whole archive.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) {
	var o BackupOptions
	if err := decode(r, &o); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.Backup == nil {
		s.fail(w, r, baton.Errorf(baton.EUNAVAILABLE, "this baton cannot make backups"))
		return
	}
	name := "baton-backup-" + time.Now().UTC().Format("20060102T150405Z") + ".tar.gz"
	sw := &startedWriter{w: w, start: func() {
		w.Header().Set("Content-Type", "application/gzip")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		w.WriteHeader(http.StatusOK)
		// The client learns at once that the archive comes, and a
		// failure later reads as a cut archive, not a server gone.
		_ = http.NewResponseController(w).Flush()
	}}
	err := s.Backup(r.Context(), sw, o)
	s.auditf(r, "backup", "", fmt.Sprintf("include_key=%t store_dump=%t", o.IncludeKey, o.StoreDump), err)
	switch {
	case err == nil:
		sw.begin() // an empty archive still answers 200
	case !sw.started:
		s.fail(w, r, err)
	default:
		s.Logger.Error("backup failed while it was sent; the response is cut off", "err", err)
		panic(http.ErrAbortHandler)
	}
}

// startedWriter sends the response header before its first byte.
type startedWriter struct {
	w       http.ResponseWriter
	start   func()
	started bool
}

func (sw *startedWriter) begin() {
	if !sw.started {
		sw.started = true
		sw.start()
	}
}

func (sw *startedWriter) Write(p []byte) (int, error) {
	sw.begin()
	return sw.w.Write(p)
}

// Flush sends what was written so far.
func (sw *startedWriter) Flush() error {
	sw.begin()
	return http.NewResponseController(sw.w).Flush()
}

// Backup asks the server for a backup archive and copies it to w. An
// error after some bytes were copied means w holds no usable archive.
func (c *Client) Backup(ctx context.Context, o BackupOptions, w io.Writer) (int64, error) {
	body, err := json.Marshal(o)
	if err != nil {
		return 0, err
	}
	req, err := c.newRequest(ctx, http.MethodPost, "/api/v1/backup", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, baton.Errorf(baton.EUNAVAILABLE, "cannot reach the baton server at %s: %v", c.BaseURL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return 0, decodeProblem(resp)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("the backup was cut off after %d bytes: %w", n, err)
	}
	return n, nil
}
