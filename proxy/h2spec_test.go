package proxy

import (
	"context"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// h2specCases is how many cases h2spec (the version go.mod pins as a
// tool) runs by default: all of its HTTP/2 and HPACK cases but the
// strict ones.
const h2specCases = 145

// TestServeTLSPassesH2Spec runs h2spec, the HTTP/2 conformance suite,
// against ServeTLS's h2 and requires every one of its cases to pass. It
// builds h2spec from the module's tool dependency, so it needs only Go
// and the module proxy (or a warm module cache).
func TestServeTLSPassesH2Spec(t *testing.T) {
	bin := buildH2spec(t)
	p := newTestProxy(t, Config{})
	// h2spec sends :authority 127.0.0.1:PORT; routing it to an instance
	// makes its requests real proxied streams. Its flow-control cases
	// need a response body of at least 5 bytes, or they are skipped.
	// It reads the request body first: answered before the client ended
	// its stream, a response ends it with RST_STREAM (NO_ERROR), and a
	// case that then tests the stream's flow control (6.9.1: WINDOW_UPDATE
	// past 2^31-1) could find it closed already.
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "an h2spec response body\n")
	})
	p.SetRoutes([]Route{route1("127.0.0.1", "spec", "spec--000001", addrOf(up))})
	base, _ := startServeTLS(t, p)
	host, port, err := net.SplitHostPort(strings.TrimPrefix(base, "https://"))
	if err != nil {
		t.Fatal(err)
	}

	report := filepath.Join(t.TempDir(), "h2spec.xml")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	// -o: seconds a case waits for a frame; generous for a loaded machine,
	// and only a failing case waits it out.
	cmd := exec.CommandContext(ctx, bin, "--tls", "--insecure", "-h", host, "-p", port, "-o", "10", "-j", report)
	cmd.WaitDelay = 5 * time.Second
	out, runErr := cmd.CombinedOutput() // h2spec exits 1 when a case fails
	suites, err := readH2specReport(report)
	if err != nil {
		t.Fatalf("h2spec (%v) left no report: %v\n%s", runErr, err, out)
	}
	total, passed := 0, 0
	for _, s := range suites.Suites {
		for _, c := range s.Cases {
			total++
			if c.Error == nil && c.Failure == nil && c.Skipped == nil {
				passed++
				continue
			}
			why := "skipped"
			if c.Error != nil {
				why = c.Error.Text // the frames expected, then the one seen
			} else if c.Failure != nil {
				why = c.Failure.Text
			}
			t.Errorf("h2spec %s (%s) %s: %s", c.Package, s.Name, c.Name, strings.ReplaceAll(why, "\n", " | "))
		}
	}
	if total != h2specCases || passed != total || runErr != nil {
		t.Errorf("h2spec: %d of %d cases passed (exit: %v), want %d of %d\n%s", passed, total, runErr, h2specCases, h2specCases, lastLines(out, 3))
	}
}

// buildH2spec builds the h2spec tool into a temporary directory.
func buildH2spec(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the h2spec test builds h2spec with the go command: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "h2spec")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "github.com/summerwind/h2spec/cmd/h2spec")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building h2spec: %v\n%s", err, out)
	}
	return bin
}

// h2specReport is the part of h2spec's JUnit report (-j) the test reads.
type h2specReport struct {
	Suites []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Package string     `xml:"package,attr"`
			Name    string     `xml:"classname,attr"`
			Error   *junitText `xml:"error"`
			Failure *junitText `xml:"failure"`
			Skipped *junitText `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

type junitText struct {
	Text string `xml:",chardata"`
}

func readH2specReport(path string) (*h2specReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r h2specReport
	if err := xml.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// lastLines returns the last n lines of out (h2spec's summary).
func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
