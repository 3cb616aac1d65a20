package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockDataDir takes an exclusive lock on DATA/baton.lock for the life of
// this process (the kernel drops it when the process dies, even by
// SIGKILL). Owning the folder is what lets start-up remove whatever an
// earlier baton left half-written there: nobody else can be writing it.
func lockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "baton.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "another process"
			if b, err := os.ReadFile(path); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					holder = fmt.Sprintf("another baton (pid %d)", pid)
				}
			}
			return nil, fmt.Errorf("data directory %s is in use by %s: stop it first, or give this baton its own folder with --data", dir, holder)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	writePID(f)
	return f, nil
}

// writePID records this process's pid in the lock file, for the error of
// a second baton and for `kill -USR2 $(cat DATA/baton.lock)`.
func writePID(f *os.File) {
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
}
