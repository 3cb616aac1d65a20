package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/batonhq/baton"
)

// TestDomainStaysWithSlot: a custom domain added to staging serves
// staging's code; after a swap it still reaches staging (now the old
// production code) while production's own host serves the swapped code; a
// second app claiming the domain gets a 409 naming the owner; removing
// the domain unroutes it at once.
func TestDomainStaysWithSlot(t *testing.T) {
	t.Parallel()
	b := startBaton(t)
	c := b.client()
	ctx := context.Background()
	slotsApp(t, b, "dom")
	p := newProxyClient(b.proxyAddr)

	out, code := runCLI(t, b, "domains", "add", "dom", "Preview.Shop.Example", "--slot", "staging")
	if code != 0 || !strings.Contains(out, "preview.shop.example now serves slot staging of dom") {
		t.Fatalf("domains add: exit %d\n%s", code, out)
	}
	if a := ask(t, p, "preview.shop.example"); a.Version != "v2" || a.Slot != "staging" {
		t.Fatalf("the domain before the swap serves %+v, want staging's v2", a)
	}

	out, code = runCLI(t, b, "swap", "dom", "--from", "staging", "--wait")
	if code != 0 {
		t.Fatalf("swap: exit %d\n%s", code, out)
	}
	if a := ask(t, p, "dom.localhost"); a.Version != "v2" || a.Slot != "production" {
		t.Fatalf("production after the swap: %+v", a)
	}
	if a := ask(t, p, "preview.shop.example"); a.Version != "v1" || a.Slot != "staging" {
		t.Fatalf("the domain after the swap serves %+v, want staging (now v1)", a)
	}

	// A second app cannot take it: 409 naming the owner, from the API and the CLI.
	if _, err := c.CreateApp(ctx, "thief"); err != nil {
		t.Fatal(err)
	}
	_, err := c.AddDomain(ctx, "thief", "", "preview.shop.example")
	if baton.ErrorCode(err) != baton.ECONFLICT || !strings.Contains(baton.ErrorMessage(err), "app dom (slot staging)") {
		t.Fatalf("second claim: %v, want a conflict naming dom's staging slot", err)
	}
	out, code = runCLI(t, b, "domains", "add", "thief", "preview.shop.example")
	if code == 0 || !strings.Contains(out, "app dom (slot staging)") || !strings.Contains(out, "baton domains remove dom preview.shop.example") {
		t.Fatalf("CLI second claim: exit %d\n%s", code, out)
	}
	out, code = runCLI(t, b, "domains", "add", "thief", "*.shop.example")
	if code == 0 || !strings.Contains(out, "wildcard") {
		t.Fatalf("wildcard claim: exit %d\n%s", code, out)
	}

	out, code = runCLI(t, b, "domains", "list")
	if code != 0 || !strings.Contains(out, "preview.shop.example") || !strings.Contains(out, "staging") {
		t.Fatalf("domains list: exit %d\n%s", code, out)
	}
	st, err := c.Status(ctx, "dom")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range st.Domains {
		found = found || (d.Name == "preview.shop.example" && d.Slot == "staging" && d.Custom)
	}
	if !found {
		t.Fatalf("status domains: %+v", st.Domains)
	}
	if out, code = runCLI(t, b, "status", "dom"); code != 0 || !strings.Contains(out, "DOMAIN") || !strings.Contains(out, "preview.shop.example") {
		t.Fatalf("baton status: exit %d\n%s", code, out)
	}

	if out, code = runCLI(t, b, "domains", "remove", "dom", "preview.shop.example"); code != 0 {
		t.Fatalf("domains remove: exit %d\n%s", code, out)
	}
	status, body, err := p.get("preview.shop.example", "/")
	if err != nil || status != 404 || !strings.Contains(body, "unknown-host") {
		t.Fatalf("removed domain: %d %q %v, want 404", status, body, err)
	}
	// Now the other app may claim it.
	if _, err := c.AddDomain(ctx, "thief", "", "preview.shop.example"); err != nil {
		t.Fatal(err)
	}
	// thief has nothing deployed: its route answers, but not as an unknown host.
	if status, body, err := p.get("preview.shop.example", "/"); err != nil || strings.Contains(body, "unknown-host") {
		t.Fatalf("after thief's claim: %d %q %v", status, body, err)
	}
}
