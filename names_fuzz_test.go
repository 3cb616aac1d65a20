package baton_test

import (
	"strings"
	"testing"

	"github.com/batonhq/baton"
)

// FuzzValidateName: names of apps, slots and tokens are DNS labels
// without "--"; whatever the input, ValidateName does not panic, refuses
// with an EINVALID error that quotes the name, and accepts only names that
// are safe as host names and cannot be mistaken for a revision name.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"hello", "a", "", "-a", "a-", "a--b", "Hello", "hello_world", strings.Repeat("a", 63),
		strings.Repeat("a", 64), "héllo", "a\x00b", "hello--000001", "xn--bcher-kva", "..", "a.b", "a/b", " a", "a\n", "0", "9-9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := baton.ValidateName("app", name)
		if err != nil {
			if baton.ErrorCode(err) != baton.EINVALID {
				t.Fatalf("ValidateName(%q) = %v, want an %s error", name, err, baton.EINVALID)
			}
			return
		}
		if len(name) < 1 || len(name) > 63 || name[0] == '-' || name[len(name)-1] == '-' || strings.Contains(name, "--") {
			t.Fatalf("ValidateName accepted %q", name)
		}
		for _, r := range name {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				t.Fatalf("ValidateName accepted %q with %q", name, r)
			}
		}
		// A revision name is never a valid app name, and gives its app back.
		rev := baton.RevisionName(name, 1)
		if baton.ValidateName("app", rev) == nil {
			t.Fatalf("revision name %q passes as an app name", rev)
		}
		if app := rev[:strings.LastIndex(rev, "--")]; app != name {
			t.Fatalf("revision %q splits to app %q, want %q", rev, app, name)
		}
	})
}

// FuzzTokenShape: checking a presented secret never panics, and only
// baton_ plus at least 32 bytes of base64url is well formed.
func FuzzTokenShape(f *testing.F) {
	good, _ := baton.NewTokenSecret()
	for _, s := range []string{good, "", "baton_", "baton_x", "Bearer " + good, good + "=", good[:len(good)-1], "hunter2", strings.Repeat("A", 1<<12)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if baton.WellFormedToken(s) && (!strings.HasPrefix(s, baton.TokenPrefix) || len(s) < len(baton.TokenPrefix)+43) {
			t.Fatalf("WellFormedToken accepted %q", s)
		}
		if h := baton.HashToken(s); len(h) != 64 {
			t.Fatalf("HashToken(%q) = %q", s, h)
		}
	})
}
