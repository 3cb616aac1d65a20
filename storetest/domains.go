package storetest

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/acme"
)

// testDomains: a claim is atomic and exclusive (ECONFLICT naming the
// owner), needs the slot, and goes with the slot or the app.
func testDomains(t *testing.T, s baton.Store) {
	ctx := context.Background()
	must(s.CreateApp(ctx, "shop")).on(t)
	must(s.CreateSlot(ctx, "shop", "staging")).on(t)
	must(s.CreateApp(ctx, "other")).on(t)

	d := must(s.AddDomain(ctx, baton.Domain{Name: "shop.example.com", App: "shop", Slot: "staging"})).on(t)
	if d.CreatedAt.IsZero() || d.Slot != "staging" {
		t.Fatalf("added %+v", d)
	}
	_, err := s.AddDomain(ctx, baton.Domain{Name: "shop.example.com", App: "other", Slot: baton.ProductionSlot})
	wantCode(t, err, baton.ECONFLICT)
	if msg := baton.ErrorMessage(err); !strings.Contains(msg, "app shop") || !strings.Contains(msg, "slot staging") {
		t.Fatalf("conflict does not name the owner: %q", msg)
	}
	_, err = s.AddDomain(ctx, baton.Domain{Name: "x.example.com", App: "shop", Slot: "nope"})
	wantCode(t, err, baton.ENOTFOUND)
	_, err = s.AddDomain(ctx, baton.Domain{Name: "x.example.com", App: "nope", Slot: baton.ProductionSlot})
	wantCode(t, err, baton.ENOTFOUND)

	// Concurrent claims of one name: exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		app := []string{"shop", "other"}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.AddDomain(ctx, baton.Domain{Name: "race.example.com", App: app, Slot: baton.ProductionSlot})
			if err == nil {
				wins.Add(1)
			} else if baton.ErrorCode(err) != baton.ECONFLICT {
				t.Errorf("claim: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent claims won, want 1", wins.Load())
	}

	must(s.AddDomain(ctx, baton.Domain{Name: "a.other.example", App: "other", Slot: baton.ProductionSlot})).on(t)
	all := must(s.Domains(ctx, "")).on(t)
	if len(all) != 3 || all[0].Name != "a.other.example" || all[2].Name != "shop.example.com" {
		t.Fatalf("all domains = %+v", all)
	}
	if got := must(s.Domains(ctx, "nobody")).on(t); got == nil || len(got) != 0 {
		t.Fatalf("domains of an app without any = %#v, want empty", got)
	}
	wantCode(t, s.DeleteDomain(ctx, "other", "shop.example.com"), baton.ENOTFOUND)
	if err := s.DeleteDomain(ctx, "shop", "shop.example.com"); err != nil {
		t.Fatal(err)
	}
	must(s.AddDomain(ctx, baton.Domain{Name: "shop.example.com", App: "other", Slot: baton.ProductionSlot})).on(t)

	// A deleted slot or app takes its domains along.
	must(s.AddDomain(ctx, baton.Domain{Name: "staging.shop.example", App: "shop", Slot: "staging"})).on(t)
	if err := s.DeleteSlot(ctx, "shop", "staging"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteApp(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	for _, d := range must(s.Domains(ctx, "")).on(t) {
		if d.App == "other" || d.Slot == "staging" {
			t.Fatalf("domain %+v outlived its slot or app", d)
		}
	}
}

// testCertStore: the certificate storage's values, ranges and deletes.
func testCertStore(t *testing.T, s baton.Store) {
	ctx := context.Background()
	_, err := s.Cert(ctx, "certificates/x/a.crt")
	wantCode(t, err, baton.ENOTFOUND)
	for _, k := range []string{"certificates/x/a.crt", "certificates/x/a.key", "certificates/x0", "certificates/y/b.json", "certificatesz", "acme/acct.key"} {
		if err := s.PutCert(ctx, k, []byte("v:"+k)); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now().Add(-time.Minute)
	if err := s.PutCert(ctx, "certificates/x/a.key", []byte("private\x00bytes")); err != nil {
		t.Fatal(err)
	}
	e := must(s.Cert(ctx, "certificates/x/a.key")).on(t)
	if !bytes.Equal(e.Value, []byte("private\x00bytes")) || e.Modified.Before(before) {
		t.Fatalf("entry = %q %v", e.Value, e.Modified)
	}
	keys := must(s.CertKeys(ctx, "certificates")).on(t)
	if want := []string{"certificates/x/a.crt", "certificates/x/a.key", "certificates/x0", "certificates/y/b.json"}; !slices.Equal(keys, want) {
		t.Fatalf("keys under certificates = %q, want %q", keys, want)
	}
	if n := len(must(s.CertKeys(ctx, "")).on(t)); n != 6 {
		t.Fatalf("%d keys in all, want 6", n)
	}
	if err := s.DeleteCert(ctx, "certificates/x"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.DeleteCert(ctx, "certificates/x"), baton.ENOTFOUND)
	if keys := must(s.CertKeys(ctx, "certificates")).on(t); !slices.Equal(keys, []string{"certificates/x0", "certificates/y/b.json"}) {
		t.Fatalf("after deleting certificates/x: %q", keys)
	}
	must(s.Cert(ctx, "certificates/x0")).on(t)
}

// RunCertStorage runs certmagic's Storage semantics on acme.Storage over
// two handles of one store (open returns both), as two controllers
// sharing a database have: what one stores the other loads, and a lock
// one holds the other waits for.
func RunCertStorage(t *testing.T, open func(t testing.TB) (a, b baton.Store)) {
	t.Parallel()
	ctx := context.Background()
	sa, sb := open(t)
	a, b := acme.NewStorage(sa, "ctl-a", time.Second), acme.NewStorage(sb, "ctl-b", time.Second)

	if _, err := a.Load(ctx, "acme/x/sites/n/n.crt"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("load of a missing key: %v, want fs.ErrNotExist", err)
	}
	if _, err := a.Stat(ctx, "acme"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat of a missing key: %v", err)
	}
	if _, err := a.List(ctx, "acme", true); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("list of a missing path: %v", err)
	}
	if err := a.Delete(ctx, "nothing/here"); err != nil {
		t.Fatalf("delete of a missing key: %v, want nil", err)
	}
	for _, k := range []string{"acme/ca/sites/n/n.crt", "acme/ca/sites/n/n.key", "acme/ca/sites/m/m.crt", "acme/ca/users/u/u.key", "acmeother"} {
		if err := a.Store(ctx, k, []byte("value of "+k)); err != nil {
			t.Fatal(err)
		}
	}
	v, err := b.Load(ctx, "acme/ca/sites/n/n.key")
	if err != nil || string(v) != "value of acme/ca/sites/n/n.key" {
		t.Fatalf("b loads %q, %v", v, err)
	}
	if !b.Exists(ctx, "acme/ca/sites") || !b.Exists(ctx, "acme/ca/sites/n/n.crt") || b.Exists(ctx, "acme/ca/sites/z") {
		t.Fatal("Exists wrong")
	}
	ki, err := b.Stat(ctx, "acme/ca/sites/n/n.crt")
	if err != nil || !ki.IsTerminal || ki.Size != int64(len("value of acme/ca/sites/n/n.crt")) || ki.Modified.IsZero() || ki.Key != "acme/ca/sites/n/n.crt" {
		t.Fatalf("stat of a value: %+v %v", ki, err)
	}
	if ki, err := b.Stat(ctx, "acme/ca"); err != nil || ki.IsTerminal {
		t.Fatalf("stat of a directory: %+v %v", ki, err)
	}
	rec, err := b.List(ctx, "acme", true)
	if want := []string{"acme/ca/sites/m/m.crt", "acme/ca/sites/n/n.crt", "acme/ca/sites/n/n.key", "acme/ca/users/u/u.key"}; err != nil || !slices.Equal(rec, want) {
		t.Fatalf("recursive list = %q %v, want %q", rec, err, want)
	}
	flat, err := b.List(ctx, "acme/ca/sites", false)
	if want := []string{"acme/ca/sites/m", "acme/ca/sites/n"}; err != nil || !slices.Equal(flat, want) {
		t.Fatalf("list = %q %v, want %q", flat, err, want)
	}
	if err := b.Delete(ctx, "acme/ca/sites/n"); err != nil {
		t.Fatal(err)
	}
	if a.Exists(ctx, "acme/ca/sites/n/n.key") || !a.Exists(ctx, "acme/ca/sites/m/m.crt") || !a.Exists(ctx, "acmeother") {
		t.Fatal("Delete of a directory removed the wrong keys")
	}

	// A lock excludes across handles; Unlock lets the waiter in at once.
	if err := a.Lock(ctx, "issue_cert_n"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = b.Lock(short, "issue_cert_n")
	cancel()
	if err == nil {
		t.Fatal("b locked a name a holds")
	}
	// a's lease (1 s) is renewed while held: b still waits past its TTL.
	got := make(chan error, 1)
	go func() { got <- b.Lock(ctx, "issue_cert_n") }()
	select {
	case err := <-got:
		t.Fatalf("b got the lock while a held it: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	if err := b.Lock(ctx, "other_name"); err != nil {
		t.Fatalf("another name: %v", err)
	}
	if err := a.Unlock(ctx, "issue_cert_n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("b did not get the lock after a unlocked it")
	}
	for _, n := range []string{"issue_cert_n", "other_name"} {
		if err := b.Unlock(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Unlock(ctx, "issue_cert_n"); err == nil {
		t.Fatal("unlock of a name not held here succeeded")
	}
	a.Close()
	b.Close()
}
