package server

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestLockDataDir: one baton per data directory; the second is told who
// holds it and what to do, and the folder is free again once the first
// lets go.
func TestLockDataDir(t *testing.T) {
	dir := t.TempDir()
	first, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockDataDir(dir)
	if err == nil {
		t.Fatal("a second lock on the same data directory was granted")
	}
	for _, want := range []string{"pid " + strconv.Itoa(os.Getpid()), "--data"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after the holder closed it: %v", err)
	}
	again.Close()
}
