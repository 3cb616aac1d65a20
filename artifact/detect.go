package artifact

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// DetectType reports whether the file at path is a "zip" or a "tar.gz",
// judging by its first bytes. Anything else is EUNPROCESSABLE.
func DetectType(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("detect artifact type: %w", err)
	}
	defer f.Close()
	magic := make([]byte, 4)
	n, err := io.ReadFull(f, magic)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", fmt.Errorf("detect artifact type: %w", err)
	}
	magic = magic[:n]
	switch {
	case bytes.HasPrefix(magic, []byte("PK\x03\x04")), bytes.HasPrefix(magic, []byte("PK\x05\x06")):
		return KindZip, nil
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return KindTarGz, nil
	}
	return "", unprocessable("artifact is neither a zip nor a gzip-compressed tar archive; upload a .zip or a .tar.gz")
}
