package server_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/artifact"
	"github.com/batonhq/baton/server"
)

// benchEnv is an in-process baton with the example app built once.
type benchEnv struct {
	srv    *server.Server
	client *api.Client
	hello  string
	tmp    string
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	tmp := b.TempDir()
	hello := filepath.Join(tmp, "hello")
	if out, err := exec.Command("go", "build", "-o", hello, "../examples/hello").CombinedOutput(); err != nil {
		b.Fatalf("build hello: %v\n%s", err, out)
	}
	srv, err := server.Open(context.Background(), server.Config{DataDir: filepath.Join(tmp, "data"), APIAddr: "127.0.0.1:0", ProxyAddr: "127.0.0.1:0", MaxQueue: 2000})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	token, err := os.ReadFile(srv.AdminTokenFile())
	if err != nil {
		b.Fatal(err)
	}
	client := api.NewClient("http://" + srv.APIAddr())
	client.Token = strings.TrimSpace(string(token))
	return &benchEnv{srv: srv, client: client, hello: hello, tmp: tmp}
}

// artifact zips a thin example app folder (manifest + version).
func (e *benchEnv) artifact(b *testing.B, version, extra string) []byte {
	b.Helper()
	dir, err := os.MkdirTemp(e.tmp, "app-")
	if err != nil {
		b.Fatal(err)
	}
	manifest := fmt.Sprintf("[run]\ncommand = %q\n[health]\npath = \"/healthz\"\ninterval = \"20ms\"\n%s", e.hello, extra)
	os.WriteFile(filepath.Join(dir, "baton.toml"), []byte(manifest), 0o644)
	os.WriteFile(filepath.Join(dir, "version.txt"), []byte(version), 0o644)
	var buf bytes.Buffer
	if err := artifact.Pack(dir, &buf); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// phaseTimes reads the timestamps of "phase X" lines from a deployment log.
func phaseTimes(b *testing.B, c *api.Client, id string) map[string]time.Time {
	text, err := c.Log(context.Background(), id)
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]time.Time{}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "phase" {
			t, err := time.Parse("2006-01-02T15:04:05.000Z07:00", f[0])
			if err == nil {
				out[f[2]] = t
			}
		}
	}
	return out
}

// BenchmarkDeployOverhead measures one deployment end to end and splits it
// into the app's own start + health time (phase starting until switching)
// and baton's overhead (everything else: upload, queue, lease, extraction,
// switch, drain, bookkeeping).
func BenchmarkDeployOverhead(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	if _, err := e.client.CreateApp(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	arts := make([][]byte, b.N)
	for i := range arts {
		arts[i] = e.artifact(b, fmt.Sprint("v", i), "")
	}
	var total, app time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		res, err := e.client.Deploy(ctx, "bench", bytes.NewReader(arts[i]), api.DeployOptions{ContentType: "application/zip"})
		if err != nil {
			b.Fatal(err)
		}
		d, err := e.client.Follow(ctx, res.ID, func(api.Event) {})
		if err != nil || d.State != baton.StateSucceeded {
			b.Fatalf("deploy: %v %s %s", err, d.State, d.Error)
		}
		total += time.Since(start)
		pt := phaseTimes(b, e.client, d.ID)
		app += pt["switching"].Sub(pt["starting"])
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "total-ms/deploy")
	b.ReportMetric(float64(app.Milliseconds())/float64(b.N), "app-start-ms/deploy")
	b.ReportMetric(float64((total-app).Milliseconds())/float64(b.N), "baton-overhead-ms/deploy")
}

// BenchmarkAccept1000Queued measures how long baton takes to accept 1,000
// concurrent deployment requests for one busy app (upload stored, policy
// applied, queued), 16 clients at a time.
func BenchmarkAccept1000Queued(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	gate := filepath.Join(e.tmp, "gate")
	for i := 0; i < b.N; i++ {
		app := fmt.Sprint("queue", i)
		if _, err := e.client.CreateApp(ctx, app); err != nil {
			b.Fatal(err)
		}
		// Hold the app busy so every request queues.
		hold := e.artifact(b, "hold", fmt.Sprintf("[build]\ncommand = 'while [ ! -e %s ]; do sleep 0.05; done'\n", gate))
		if _, err := e.client.Deploy(ctx, app, bytes.NewReader(hold), api.DeployOptions{ContentType: "application/zip"}); err != nil {
			b.Fatal(err)
		}
		art := e.artifact(b, "queued", "")
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for j := 0; j < 1000; j++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if _, err := e.client.Deploy(ctx, app, bytes.NewReader(art), api.DeployOptions{ContentType: "application/zip"}); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "ms/1000-accepts")
		b.StopTimer()
		// Supersede the queue so the next iteration starts clean.
		if _, err := e.client.Deploy(ctx, app, bytes.NewReader(art), api.DeployOptions{ContentType: "application/zip", Policy: baton.PolicyCancel}); err != nil {
			b.Fatal(err)
		}
	}
	os.WriteFile(gate, nil, 0o644)
}

// BenchmarkUploadQueued measures the request path of a deploy with a
// 4.8 MiB zip (the size of examples/hello with its binary, in deployload):
// sent over loopback HTTP, stored durably (fsync), policy applied,
// recorded as queued and answered. The app is held busy by a build that
// waits, so every request only queues; each artifact is new content.
func BenchmarkUploadQueued(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	gate := filepath.Join(e.tmp, "gate")
	defer os.WriteFile(gate, nil, 0o644)
	if _, err := e.client.CreateApp(ctx, "up"); err != nil {
		b.Fatal(err)
	}
	hold := e.artifact(b, "hold", fmt.Sprintf("[build]\ncommand = 'while [ ! -e %s ]; do sleep 0.05; done'\n", gate))
	if _, err := e.client.Deploy(ctx, "up", bytes.NewReader(hold), api.DeployOptions{ContentType: "application/zip"}); err != nil {
		b.Fatal(err)
	}
	// The app binary makes the bulk, as in deployload: one large deflated
	// entry.
	bin, err := os.ReadFile(e.hello)
	if err != nil {
		b.Fatal(err)
	}
	dir, err := os.MkdirTemp(e.tmp, "big-")
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "hello"), bin, 0o755)
	os.WriteFile(filepath.Join(dir, "baton.toml"), []byte("[run]\ncommand = \"./hello\"\n"), 0o644)
	var buf bytes.Buffer
	if err := artifact.Pack(dir, &buf); err != nil {
		b.Fatal(err)
	}
	// Each upload differs by its zip comment (the end record's last field:
	// its length, then the comment), so each is stored anew.
	base := buf.Bytes()
	if base[len(base)-2] != 0 || base[len(base)-1] != 0 {
		b.Fatal("the packed zip has a comment")
	}
	art := append(base[:len(base)-2:len(base)-2], 8, 0)
	art = append(art, "00000000"...)
	for i := 0; b.Loop(); i++ {
		copy(art[len(art)-8:], fmt.Sprintf("%08d", i))
		if _, err := e.client.Deploy(ctx, "up", bytes.NewReader(art), api.DeployOptions{ContentType: "application/zip"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(art))/(1<<20), "MiB/upload")
}
