package baton_test

import (
	"strings"
	"testing"

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
