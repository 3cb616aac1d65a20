package artifact

import (
	"crypto/sha256"
	"errors"
	"io"
	"os"
)

// errWriteFailed stops the reading; receive returns the write's error.
var errWriteFailed = errors.New("write failed")

const (
	// receiveBufSize is the size of each chunk an upload is read in, and
	// receiveBufs how many are in use at once: one being read, the others
	// being written or hashed. 512 KiB an upload, 4 MiB at the default
	// eight uploads in progress.
	receiveBufSize = 128 << 10
	receiveBufs    = 4
	// writebackStep is how much an upload writes before it asks the
	// kernel to start writing that part to the disk (startWriteback).
	writebackStep = 256 << 10
)

// receive writes everything src yields to f and returns its size and
// sha256. Reading, writing and hashing each take a few milliseconds a
// megabyte and do not depend on one another, so they run at once: the
// caller reads chunks and hands them to a goroutine that writes them,
// which hands them to one that hashes them and frees them for the next
// read. Each written writebackStep is sent towards the disk right away
// (startWriteback): the fsync that makes the upload durable then waits
// for its last part only, not for all of it, which it did when the disk
// first saw the upload at the fsync.
//
// A read error ends it with that error, a write error ends it at the next
// chunk read; either way both goroutines have ended when it returns.
func receive(f *os.File, src io.Reader) (sum []byte, size int64, err error) {
	free := make(chan []byte, receiveBufs)
	for range receiveBufs {
		free <- make([]byte, receiveBufSize)
	}
	// Neither channel can fill: there are receiveBufs chunks in all.
	toWrite := make(chan []byte, receiveBufs)
	toHash := make(chan []byte, receiveBufs)
	writeFailed := make(chan struct{})
	var writeErr error
	go func() {
		defer close(toHash)
		var written, started int64
		for b := range toWrite {
			if writeErr != nil {
				free <- b[:cap(b)]
				continue
			}
			if _, writeErr = f.Write(b); writeErr != nil {
				close(writeFailed)
				free <- b[:cap(b)]
				continue
			}
			written += int64(len(b))
			if written-started >= writebackStep {
				startWriteback(f, started, written-started)
				started = written
			}
			toHash <- b
		}
	}()
	h := sha256.New()
	hashed := make(chan struct{})
	go func() {
		defer close(hashed)
		for b := range toHash {
			h.Write(b)
			free <- b[:cap(b)]
		}
	}()

	var readErr error
	for readErr == nil {
		// A failed write ends the reading before another chunk is read,
		// even while free chunks remain.
		select {
		case <-writeFailed:
			readErr = errWriteFailed
			continue
		default:
		}
		var b []byte
		select {
		case b = <-free:
		case <-writeFailed:
			readErr = errWriteFailed
			continue
		}
		n, err := io.ReadFull(src, b)
		if n > 0 {
			size += int64(n)
			toWrite <- b[:n]
		} else {
			free <- b
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			readErr = io.EOF
		default:
			readErr = err
		}
	}
	close(toWrite)
	<-hashed // the hasher ends after the writer
	if writeErr != nil {
		return nil, size, writeErr
	}
	if readErr != io.EOF {
		return nil, size, readErr
	}
	return h.Sum(nil), size, nil
}
