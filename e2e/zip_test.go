package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
)

// zipDir packs dir as `baton deploy` does (artifact.Pack), in a child
// process built without the race detector (packdir): this test binary,
// built with it, takes fifteen times the CPU to deflate a folder that
// holds the example binary (withBinary).
func zipDir(dir string) ([]byte, error) {
	var out, errOut bytes.Buffer
	cmd := exec.Command(packBin, dir)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("pack %s: %v: %s", dir, err, strings.TrimSpace(errOut.String()))
	}
	return out.Bytes(), nil
}
