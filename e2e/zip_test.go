package e2e

import (
	"bytes"

	"github.com/batonhq/baton/artifact"
)

func zipDir(dir string) ([]byte, error) {
	var buf bytes.Buffer
	err := artifact.Pack(dir, &buf)
	return buf.Bytes(), err
}
