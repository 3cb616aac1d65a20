// Package atomicfile writes a file whole or not at all: through a
// temporary file beside it, synced, then renamed over it, so a crash or a
// reader never sees half of it.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write writes data to path with mode (the mode is set before the data is
// visible: a secret is never readable by others, not even briefly).
func Write(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	err = tmp.Chmod(mode)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
