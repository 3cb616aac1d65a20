package baton_test

import (
	"testing"

	"github.com/batonhq/baton"
)

func TestMasker(t *testing.T) {
	pem := "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34\nGkxFhD90vcNLYLInFEX6\n-----END KEY-----\n"
	m := baton.NewMasker([]string{"hunter2-s3cret", pem, "abc", "", "s3cret"})
	for _, tc := range []struct{ in, want string }{
		{"DB_PASSWORD=hunter2-s3cret", "DB_PASSWORD=********"},
		{"twice hunter2-s3cret hunter2-s3cret", "twice ******** ********"},
		// The longer value wins over a shorter one inside it.
		{"only s3cret", "only ********"},
		// Too short to mask: "abc" would hide every word containing it.
		{"abc abcdef", "abc abcdef"},
		// A multi-line value in one piece, and line by line as a log splits it.
		{"key=" + pem, "key=********"},
		{"MIIBOgIBAAJBAKj34", "********"},
		{"  GkxFhD90vcNLYLInFEX6\r", "  ********\r"},
		{"nothing secret here", "nothing secret here"},
	} {
		if got := m.Mask(tc.in); got != tc.want {
			t.Errorf("Mask(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	var none *baton.Masker
	if got := none.Mask("hunter2"); got != "hunter2" {
		t.Errorf("nil Masker changed %q", got)
	}
	if baton.NewMasker([]string{"", "ab"}) != nil {
		t.Error("a Masker with nothing to hide is not nil")
	}
}
