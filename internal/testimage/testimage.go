// Package testimage builds small container images for tests and
// benchmarks: a layer from a few files, a linux/amd64 image of layers and
// a config, and a static build of a Go program to put in one.
package testimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one entry of a layer; a Name ending in "/" is a directory.
type File struct {
	Name string
	Mode int64
	Body []byte
}

// Layer is an uncompressed tar of files, in order, as an image layer. Its
// gzip is made once, for its digest, and kept: a push reads it again, and
// gzip in a test binary built with the race detector costs seconds for a
// layer that holds a Go binary.
func Layer(files ...File) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		typ := byte(tar.TypeReg)
		if strings.HasSuffix(f.Name, "/") {
			typ = tar.TypeDir
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.Name, Mode: f.Mode, Size: int64(len(f.Body)), Typeflag: typ, ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithCompressedCaching)
}

// Image is a linux/amd64 image of layers (bottom first) with cfg.
func Image(cfg v1.Config, layers ...v1.Layer) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

// StaticBinary builds the Go package at pkg (a path the go command
// takes, e.g. "../examples/hello") without cgo, so that it runs in an
// image with nothing else in it, and returns the executable.
func StaticBinary(pkg string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "testimage-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "bin")
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build a static %s: %v\n%s", pkg, err, b)
	}
	return os.ReadFile(out)
}
