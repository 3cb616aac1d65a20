package secretstore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the size of the AES-256 key.
const KeySize = 32

// LoadOrCreateKey reads the key in path (hex), creating it with a fresh
// random key, mode 0600, when the file does not exist. It refuses a key
// file that others may read: whoever reads it reads every secret.
func LoadOrCreateKey(path string) (key []byte, created bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, false, err
		}
		err := writeNew(path, FormatKey(key))
		if errors.Is(err, fs.ErrExist) {
			return LoadOrCreateKey(path) // another process made it first
		}
		if err != nil {
			return nil, false, fmt.Errorf("create secret key %s: %w", path, err)
		}
		return key, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read secret key: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, false, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("secret key %s has mode %v: others can read it; run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	if key, err = ParseKey(b); err != nil {
		return nil, false, fmt.Errorf("secret key %s is not %d bytes in hex", path, KeySize)
	}
	return key, false, nil
}

// FormatKey is a key as its file holds it: hex and a newline.
func FormatKey(key []byte) []byte {
	return []byte(hex.EncodeToString(key) + "\n")
}

// ParseKey reads a key file's contents (FormatKey's form).
func ParseKey(data []byte) ([]byte, error) {
	key, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(key) != KeySize {
		return nil, errors.New("not a key")
	}
	return key, nil
}

// writeNew writes data to a new file at path, mode 0600, through a
// temporary file so that a crash leaves no half-written key.
func writeNew(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// Link, unlike rename, fails if another process created the key in
	// the meantime: nobody's key is ever replaced.
	return os.Link(tmp.Name(), path)
}
