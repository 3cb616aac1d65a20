package ociimage

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/atomicfile"
)

// Registry tags live in tags/<repo, path-escaped>/<tag>, each file holding
// the manifest digest the tag was last pushed as.

// tagRE is compiled on first use: its counted repetition makes a large
// program, ~1 ms at every baton start (each CLI command too) if compiled
// at init.
var tagRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
})

func (s *Store) tagPath(repo, tag string) string {
	return filepath.Join(s.dir, "tags", url.PathEscape(repo), tag)
}

// tag points repo:tag at digest. The caller holds s.mu.
func (s *Store) tag(repo, tag, digest string) error {
	if !tagRE().MatchString(tag) {
		return baton.Errorf(baton.EINVALID, "tag %s is not valid; use letters, digits, '_', '.' and '-', up to 128", quote(tag))
	}
	p := s.tagPath(repo, tag)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("tag image: %w", err)
	}
	if err := atomicfile.Write(p, []byte(digest), 0o644); err != nil {
		return fmt.Errorf("tag image: %w", err)
	}
	return nil
}

// resolveTag returns the digest repo:tag points at, ENOTFOUND if none.
func (s *Store) resolveTag(repo, tag string) (string, error) {
	if !tagRE().MatchString(tag) {
		return "", baton.Errorf(baton.EINVALID, "tag %s is not valid", quote(tag))
	}
	data, err := os.ReadFile(s.tagPath(repo, tag))
	if errors.Is(err, fs.ErrNotExist) {
		return "", baton.Errorf(baton.ENOTFOUND, "%s has no tag %s", repo, quote(tag))
	}
	if err != nil {
		return "", fmt.Errorf("read tag: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// tags lists repo's tags.
func (s *Store) tags(repo string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, "tags", url.PathEscape(repo)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list tags: %w", err)
	}
	var tags []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			tags = append(tags, e.Name())
		}
	}
	return tags, nil
}

// untag removes every tag pointing at one of digests. The caller holds s.mu.
func (s *Store) untag(digests ...string) error {
	repos, err := os.ReadDir(filepath.Join(s.dir, "tags"))
	if err != nil {
		return fmt.Errorf("untag image: %w", err)
	}
	var errs []error
	for _, repo := range repos {
		dir := filepath.Join(s.dir, "tags", repo.Name())
		errs = append(errs, removeEntries(dir, func(tag string) bool {
			data, err := os.ReadFile(filepath.Join(dir, tag))
			if err != nil {
				return false
			}
			d := strings.TrimSpace(string(data))
			for _, want := range digests {
				if want != "" && d == want {
					return true
				}
			}
			return false
		}))
	}
	return errors.Join(errs...)
}
