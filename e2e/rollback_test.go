package e2e

import (
	"context"
	"strings"
	"testing"
)

// TestCLIRollback: `baton rollback APP --wait` puts the previous revision
// back and exits 0; a target it cannot go back to exits 5 naming the
// revisions it can; a frozen app still rolls back.
func TestCLIRollback(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "rbc"); err != nil {
		t.Fatal(err)
	}
	v1 := mustSucceed(t, c, "rbc", appDir(t, "v1"))
	mustSucceed(t, c, "rbc", appDir(t, "v2"))
	if _, err := c.Freeze(ctx, "rbc", "bad release", false); err != nil {
		t.Fatal(err)
	}
	out, code := runCLI(t, b, "rollback", "rbc", "--wait")
	if code != 0 {
		t.Fatalf("rollback --wait: exit %d\n%s", code, out)
	}
	if v := ask(t, newProxyClient(b.proxyAddr), "rbc.localhost"); v.Version != "v1" {
		t.Fatalf("after rollback: serving %+v, want v1", v)
	}
	out, code = runCLI(t, b, "rollback", "rbc", "--to", "other--000001")
	if code != 5 || !strings.Contains(out, "roll back to") || strings.Contains(out, v1.Revision+" (") {
		t.Fatalf("rollback to another app's revision: exit %d, want 5 listing the candidates (v1 serves, so not it)\n%s", code, out)
	}
}
