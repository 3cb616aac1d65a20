package testimage

import (
	"archive/tar"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

func TestImageOfLayers(t *testing.T) {
	l, err := Layer(File{Name: "app/", Mode: 0o755}, File{Name: "app/version.txt", Mode: 0o644, Body: []byte("v1\n")})
	if err != nil {
		t.Fatal(err)
	}
	img, err := Image(v1.Config{Entrypoint: []string{"/app/x"}, WorkingDir: "/app"}, l)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil || cf.OS != "linux" || cf.Architecture != "amd64" || cf.Config.Entrypoint[0] != "/app/x" {
		t.Fatalf("config %+v, %v", cf, err)
	}
	tr := tar.NewReader(mutate.Extract(img))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if len(names) != 2 || names[1] != "app/version.txt" {
		t.Fatalf("the image holds %v", names)
	}
}
