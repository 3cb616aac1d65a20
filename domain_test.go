package baton_test

import (
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

func TestValidateDomain(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      string // a word the refusal must contain
	}{
		{in: "shop.example.com", want: "shop.example.com"},
		{in: "Shop.Example.COM.", want: "shop.example.com"},
		{in: " www.shop-1.example ", want: "www.shop-1.example"},
		{in: "xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		{in: "a.b.c.d.e.example", want: "a.b.c.d.e.example"},
		{in: "", bad: "empty"},
		{in: "*.example.com", bad: "wildcard"},
		{in: "shop*.example.com", bad: "wildcard"},
		{in: "example", bad: "single label"},
		{in: "localhost", bad: "single label"},
		{in: "-shop.example.com", bad: "not a DNS label"},
		{in: "shop-.example.com", bad: "not a DNS label"},
		{in: "sh_op.example.com", bad: "not a DNS label"},
		{in: "shop..example.com", bad: "not a DNS label"},
		{in: "bücher.example", bad: "xn--"},
		{in: strings.Repeat("a", 64) + ".example", bad: "not a DNS label"},
		{in: strings.Repeat("abcdefgh.", 32) + "example", bad: "253"},
		{in: "ab--cd.example", bad: "reserves"},
		{in: "xn--.example", bad: "not a DNS label"},
		{in: "127.0.0.1", bad: "IP address"},
		{in: "shop.example.123", bad: "IP address"},
		{in: "[::1]", bad: "single label"},
		{in: "[::1].example", bad: "not a DNS label"},
		{in: "hello.localhost", bad: "baton's own domain"},
		{in: "LOCALHOST", bad: "single label"},
		{in: "apps.baton.example", bad: "baton's own domain"},
	} {
		dom := "localhost"
		if strings.Contains(tc.in, "baton.example") {
			dom = "baton.example"
		}
		got, err := baton.ValidateDomain(tc.in, dom)
		if tc.bad == "" {
			if err != nil || got != tc.want {
				t.Errorf("ValidateDomain(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || baton.ErrorCode(err) != baton.EINVALID || !strings.Contains(baton.ErrorMessage(err), tc.bad) {
			t.Errorf("ValidateDomain(%q) = %q, %v; want EINVALID saying %q", tc.in, got, err, tc.bad)
		}
	}
}

func TestCertificateOverdue(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { x := now.Add(d); return &x }
	day := 24 * time.Hour
	for _, tc := range []struct {
		name string
		cs   baton.CertificateStatus
		want bool
	}{
		{"90-day, 60 days left", baton.CertificateStatus{NotBefore: at(-30 * day), NotAfter: at(60 * day)}, false},
		{"90-day, 20 days left (renewing now)", baton.CertificateStatus{NotBefore: at(-70 * day), NotAfter: at(20 * day)}, false},
		{"90-day, 13 days left", baton.CertificateStatus{NotBefore: at(-77 * day), NotAfter: at(13 * day)}, true},
		{"expired", baton.CertificateStatus{NotBefore: at(-91 * day), NotAfter: at(-day)}, true},
		{"6-day, 3 days left", baton.CertificateStatus{NotBefore: at(-3 * day), NotAfter: at(3 * day)}, false},
		{"6-day, 1 day left", baton.CertificateStatus{NotBefore: at(-5 * day), NotAfter: at(day)}, true},
		{"static, 1 day left", baton.CertificateStatus{Static: true, NotBefore: at(-day), NotAfter: at(day)}, true},
		{"static, 30 days left", baton.CertificateStatus{Static: true, NotBefore: at(-day), NotAfter: at(30 * day)}, false},
		{"none yet", baton.CertificateStatus{}, false},
	} {
		if got := tc.cs.Overdue(now); got != tc.want {
			t.Errorf("%s: Overdue = %v, want %v", tc.name, got, tc.want)
		}
	}
}
