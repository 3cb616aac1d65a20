package kudu

import (
	"net"
	"strings"

	"github.com/batonhq/baton"
)

// AppOfHost returns APP when host (with or without a port) is
// APP.scm.DOMAIN, the Host App Service gives an app's Kudu site.
func AppOfHost(host, domain string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	app, ok := strings.CutSuffix(host, ".scm."+domain)
	if !ok || baton.ValidateName("app", app) != nil {
		return "", false
	}
	return app, true
}
