package e2e

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kuduClient is a deployment pipeline that knows only Kudu's documented
// contract: POST the zip to /api/zipdeploy (isAsync=true answers 202 with
// a Location to poll), poll until status is 3 (failed) or 4 (success),
// read log_url, GET /api/isdeploying. It authenticates with HTTP Basic
// as $APP, as publishing credentials do.
type kuduClient struct {
	scm  string // the SCM URI, e.g. http://APP.scm.localhost:7070
	user string
	http *http.Client
}

// newKuduClient talks to scm; every connection goes to baton's API address
// whatever the host name, as DNS for *.scm.DOMAIN would arrange.
func newKuduClient(scm, apiAddr, app string) *kuduClient {
	dial := (&net.Dialer{Timeout: 5 * time.Second}).DialContext
	return &kuduClient{scm: scm, user: "$" + app, http: &http.Client{
		Timeout: 2 * time.Minute,
		Transport: &http.Transport{Proxy: nil, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dial(ctx, network, apiAddr)
		}},
	}}
}

// kuduDeployment is the part of Kudu's deployment object a pipeline reads.
type kuduDeployment struct {
	ID           string     `json:"id"`
	Status       int        `json:"status"`
	StatusText   string     `json:"status_text"`
	Author       string     `json:"author"`
	Deployer     string     `json:"deployer"`
	Message      string     `json:"message"`
	Complete     bool       `json:"complete"`
	Active       bool       `json:"active"`
	ReceivedTime time.Time  `json:"received_time"`
	StartTime    time.Time  `json:"start_time"`
	EndTime      *time.Time `json:"end_time"`
	URL          string     `json:"url"`
	LogURL       string     `json:"log_url"`
}

// kuduLogEntry is one entry of a deployment's log.
type kuduLogEntry struct {
	LogTime string `json:"log_time"`
	ID      string `json:"id"`
	Message string `json:"message"`
	Type    int    `json:"type"`
}

// do sends a request to a URL or a path under the SCM URI.
func (k *kuduClient) do(method, url string, body []byte) (*http.Response, []byte, error) {
	if strings.HasPrefix(url, "/") {
		url = k.scm + url
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.SetBasicAuth(k.user, adminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := k.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// zipDeployAsync pushes a zip with isAsync=true and returns the Location
// to poll.
func (k *kuduClient) zipDeployAsync(zip []byte, query string) (string, error) {
	resp, body, err := k.do("POST", "/api/zipdeploy?isAsync=true"+query, zip)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Location") == "" {
		return "", fmt.Errorf("zipdeploy?isAsync=true: %s without a Location: %s", resp.Status, body)
	}
	return resp.Header.Get("Location"), nil
}

// poll reads the deployment at a pollable URL (200 or 202 both carry it).
func (k *kuduClient) poll(url string) (kuduDeployment, error) {
	var d kuduDeployment
	resp, body, err := k.do("GET", url, nil)
	if err != nil {
		return d, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return d, fmt.Errorf("poll %s: %s: %s", url, resp.Status, body)
	}
	return d, json.Unmarshal(body, &d)
}

// pollUntil polls url until done says so or the deadline passes.
func (k *kuduClient) pollUntil(url string, within time.Duration, done func(kuduDeployment) bool) (kuduDeployment, error) {
	deadline := time.Now().Add(within)
	for {
		d, err := k.poll(url)
		if err != nil {
			return d, err
		}
		if done(d) {
			return d, nil
		}
		if time.Now().After(deadline) {
			return d, fmt.Errorf("deployment at %s still has status %d (%s) after %s", url, d.Status, d.StatusText, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kuduFinished is Kudu's end condition: status 3 (failed) or 4 (success).
func kuduFinished(d kuduDeployment) bool { return d.Status == 3 || d.Status == 4 }

// pipeline is a whole CI deployment step: push asynchronously, then poll
// the Location until the deployment ends.
func (k *kuduClient) pipeline(zip []byte) (kuduDeployment, error) {
	loc, err := k.zipDeployAsync(zip, "")
	if err != nil {
		return kuduDeployment{}, err
	}
	return k.pollUntil(loc, 3*time.Minute, kuduFinished)
}

// isDeploying reads GET /api/isdeploying.
func (k *kuduClient) isDeploying(t testing.TB) bool {
	t.Helper()
	resp, body, err := k.do("GET", "/api/isdeploying", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("isdeploying: %v %v %s", resp, err, body)
	}
	var v struct{ Value string }
	if err := json.Unmarshal(body, &v); err != nil || (v.Value != "True" && v.Value != "False") {
		t.Fatalf("isdeploying answered %s (%v)", body, err)
	}
	return v.Value == "True"
}

// deployments reads the deployment history, GET /api/deployments.
func (k *kuduClient) deployments(t testing.TB) []kuduDeployment {
	t.Helper()
	resp, body, err := k.do("GET", "/api/deployments", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("deployments: %v %v %s", resp, err, body)
	}
	var list []kuduDeployment
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("deployments answered %s (%v)", body, err)
	}
	return list
}

// log reads a deployment's log entries from its log_url.
func (k *kuduClient) log(t testing.TB, d kuduDeployment) []kuduLogEntry {
	t.Helper()
	resp, body, err := k.do("GET", d.LogURL, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("log of %s: %v %v %s", d.ID, resp, err, body)
	}
	var es []kuduLogEntry
	if err := json.Unmarshal(body, &es); err != nil {
		t.Fatalf("log of %s is not a list of entries: %v", d.ID, err)
	}
	return es
}

// kuduAppDir is an App Service style artifact of the example app: the
// prebuilt executable named app and its version.txt, no baton.toml.
func kuduAppDir(t testing.TB, version string) string {
	t.Helper()
	dir := t.TempDir()
	err := copyHello(filepath.Join(dir, "app"))
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "version.txt"), []byte(version+"\n"), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// kuduZip zips a folder's regular files, stored uncompressed: deflating
// the example binary takes seconds in a race-instrumented test, and a
// stored entry is as much a zip as any.
func kuduZip(t testing.TB, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := &zip.FileHeader{Name: filepath.ToSlash(rel), Method: zip.Store}
		h.SetMode(info.Mode().Perm())
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err == nil {
			_, err = w.Write(data)
		}
		return err
	})
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// kuduCurlResult is what a curl run answered.
type kuduCurlResult struct {
	status int
	header http.Header
	body   string
}

// kuduCurl runs the real curl with args (a command from the docs) plus
// flags that only record the answer: status, headers and body.
func kuduCurl(t testing.TB, args ...string) kuduCurlResult {
	t.Helper()
	dir := t.TempDir()
	hdr, body := filepath.Join(dir, "headers"), filepath.Join(dir, "body")
	cmd := exec.Command("curl", append(args, "-sS", "--max-time", "180", "-D", hdr, "-o", body)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("curl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	h, _ := os.ReadFile(hdr)
	b, _ := os.ReadFile(body)
	res := kuduCurlResult{header: http.Header{}, body: string(b)}
	// The last status line wins: "100 Continue" comes before the answer.
	for _, line := range strings.Split(string(h), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(line, "HTTP/") {
			res.header = http.Header{}
			fmt.Sscanf(line[strings.IndexByte(line, ' ')+1:], "%d", &res.status)
		} else if k, v, ok := strings.Cut(line, ":"); ok {
			res.header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return res
}
