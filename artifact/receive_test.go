package artifact

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(b)
	return b
}

// TestReceive: the file and the digest are the content, whatever the
// sizes of the reads and wherever the content ends relative to a chunk.
func TestReceive(t *testing.T) {
	for _, n := range []int{0, 1, receiveBufSize - 1, receiveBufSize, receiveBufSize + 1,
		receiveBufs * receiveBufSize, 5<<20 + 17} {
		content := randomBytes(n)
		for name, r := range map[string]io.Reader{
			"whole": bytes.NewReader(content),
			"half":  iotest.HalfReader(bytes.NewReader(content)),
			"eof":   iotest.DataErrReader(bytes.NewReader(content)),
		} {
			f, err := os.Create(filepath.Join(t.TempDir(), "up"))
			if err != nil {
				t.Fatal(err)
			}
			sum, size, err := receive(f, r)
			f.Close()
			if err != nil {
				t.Fatalf("%d bytes, %s reads: %v", n, name, err)
			}
			want := sha256.Sum256(content)
			if size != int64(n) || !bytes.Equal(sum, want[:]) {
				t.Fatalf("%d bytes, %s reads: got %d bytes, sum %x; want %x", n, name, size, sum, want)
			}
			if got, err := os.ReadFile(f.Name()); err != nil || !bytes.Equal(got, content) {
				t.Fatalf("%d bytes, %s reads: the file holds %d bytes (%v), not the content", n, name, len(got), err)
			}
		}
	}
}

// endless yields bytes forever and counts them.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	e.n += int64(len(p))
	return len(p), nil
}

// TestReceiveWriteError: a failed write ends the upload with its error,
// and the body is no longer read (a client sending forever is not read
// forever).
func TestReceiveWriteError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "up")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path) // read-only: every write fails
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src := &endless{}
	_, _, err = receive(f, src)
	var pe *os.PathError
	if !errors.As(err, &pe) || pe.Op != "write" {
		t.Fatalf("receive into a read-only file = %v, want the write's error", err)
	}
	if src.n > (receiveBufs+1)*receiveBufSize {
		t.Fatalf("read %d bytes after the first write failed", src.n)
	}
}

// TestStorePutLateReadError: a client that fails after several chunks
// leaves nothing behind, as one that fails at once.
func TestStorePutLateReadError(t *testing.T) {
	s, dir := newStore(t)
	_, _, err := s.Put(&failingReader{n: 3*receiveBufs*receiveBufSize + 5}, 0)
	if err == nil || !strings.Contains(err.Error(), "client went away") {
		t.Fatalf("Put = %v, want the reader's error", err)
	}
	if got := storeFiles(t, dir); len(got) != 0 {
		t.Fatalf("store holds %v after a failed upload, want nothing", got)
	}
}

// BenchmarkStorePut stores a 5 MiB upload as the API does: read from a
// loopback TCP connection that another goroutine writes, then made
// durable (fsync of the file and of its folder). Each one is new content.
func BenchmarkStorePut(b *testing.B) {
	s, _ := newStore(b)
	content := randomBytes(5 << 20)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	b.SetBytes(int64(len(content)))
	for i := 0; b.Loop(); i++ {
		copy(content, []byte{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)})
		go func() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				return
			}
			c.Write(content)
			c.Close()
		}()
		c, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.Put(c, 0); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
