// Package manifest reads baton.toml or a Procfile into a baton.Manifest, or
// detects a runnable app by convention when an artifact has neither.
package manifest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/batonhq/baton"
)

// File names Load looks for at the artifact root.
const (
	TOMLFile     = "baton.toml"
	ProcfileFile = "Procfile"
)

// maxFileSize bounds what Load reads; a real manifest is a few hundred bytes.
const maxFileSize = 1 << 20

// Load reads the manifest at the root of the unpacked artifact in dir:
// baton.toml if present, else a Procfile with a web: line, else the first
// convention that applies (see convention.go: an executable named app,
// go.mod + main.go, package.json with a start script, app.py, index.html).
// The result has defaults applied and Source naming the file or rule it
// came from. An invalid manifest, or an artifact no rule fits, is
// EUNPROCESSABLE with a sentence saying why.
func Load(dir string) (baton.Manifest, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return baton.Manifest{}, fmt.Errorf("read manifest: %w", err)
	}
	defer root.Close()

	data, err := readFile(root, TOMLFile)
	if err == nil {
		return Parse(data)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return baton.Manifest{}, err
	}
	data, err = readFile(root, ProcfileFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return baton.Manifest{}, err
	}
	if err == nil {
		m, hasWeb, err := parseProcfile(data)
		if err != nil || hasWeb {
			return m, err
		}
	}
	return defaultConventions.detect(root)
}

// readFile reads a small regular file through root, so a symlink in the
// artifact cannot make baton read outside it.
func readFile(root *os.Root, name string) ([]byte, error) {
	f, err := root.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, baton.Errorf(baton.EUNPROCESSABLE, "%s cannot be read: %v", name, unwrapPath(err))
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if !info.Mode().IsRegular() {
		return nil, baton.Errorf(baton.EUNPROCESSABLE, "%s at the artifact root is not a regular file", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxFileSize {
		return nil, baton.Errorf(baton.EUNPROCESSABLE, "%s is larger than 1 MiB; a manifest should be a few lines", name)
	}
	return data, nil
}

// unwrapPath drops the path from a *fs.PathError: it is the server's, not
// something the person deploying needs to see.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
