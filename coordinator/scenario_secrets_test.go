package coordinator_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/api"
)

// TestScenarioSecretsMaskedInLogs: a release step and the app that print
// secret settings — one value on one line, a multi-line one in one write —
// leave no secret in the deployment log, its event stream, the revision
// log or the error of a failed release; ordinary settings stay readable.
func TestScenarioSecretsMaskedInLogs(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	ctx := context.Background()
	b.createApp("sec")
	const token = "tok-9f8e7d6c5b4a"
	const pem = "-----BEGIN TEST KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLY\nLInFEX6ygoo4r7e2NyH8hTMZXk1o\n-----END TEST KEY-----"
	op, err := b.c.SetSettings(ctx, "sec", baton.ProductionSlot, []baton.Setting{
		{Key: "API_TOKEN", Value: token, Secret: true},
		{Key: "TLS_KEY", Value: pem, Secret: true},
		{Key: "COLOR", Value: "teal-visible"},
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	b.succeed(op.ID)

	m := "[run]\ncommand = 'echo \"app sees $API_TOKEN\"; exec " + helloBin + "'\n" +
		"[release]\ncommand = 'echo \"token=$API_TOKEN color=$COLOR\"; printf \"%s\\n\" \"$TLS_KEY\"'\n" +
		"[health]\npath = \"/healthz\"\ninterval = \"50ms\"\nstart_timeout = \"20s\"\n"
	var stream strings.Builder
	d := b.deploy("sec", appDir(t, "v1", withManifest(m)), api.DeployOptions{})
	if _, err := b.c.Follow(ctx, d.ID, func(e api.Event) { stream.WriteString(e.Data + "\n") }); err != nil {
		t.Fatal(err)
	}
	d = b.succeed(d.ID)
	eventually(t, 10e9, "the app's line in the revision log", func() bool {
		rl, _ := b.c.RevisionLog(ctx, "sec", d.Revision)
		return strings.Contains(rl, "app sees")
	})
	log, err := b.c.Log(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	rl, _ := b.c.RevisionLog(ctx, "sec", d.Revision)
	file, _ := os.ReadFile(filepath.Join(b.data, "apps", "sec", "logs", d.Revision+".log"))
	secrets := append([]string{token}, strings.Split(pem, "\n")[1:3]...)
	for name, text := range map[string]string{"log": log, "stream": stream.String(), "revision log": rl, "revision log file": string(file)} {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s shows secret %q:\n%s", name, s, text)
			}
		}
	}
	for _, want := range []string{"release: token=******** color=teal-visible", "release: ********"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if !strings.Contains(rl, "app sees ********") {
		t.Errorf("revision log lacks the masked app line:\n%s", rl)
	}

	// A failing release quotes its last output in the deployment's error.
	fail := "[run]\ncommand = \"" + helloBin + "\"\n[release]\ncommand = 'echo \"bad $API_TOKEN\"; exit 3'\n"
	f := b.waitFinal(b.deploy("sec", appDir(t, "v2", withManifest(fail)), api.DeployOptions{}).ID)
	if f.State != baton.StateFailed || strings.Contains(f.Error, token) || !strings.Contains(f.Error, "bad ********") {
		t.Errorf("failed release: %s %q", f.State, f.Error)
	}
}
