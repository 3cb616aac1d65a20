package coordinator

import (
	"fmt"
	"slices"
	"time"

	"github.com/batonhq/baton"
)

// domainStatus lists the names each slot of a is served at (its own host,
// then its custom domains), with their certificates when the proxy serves
// HTTPS.
func (c *Coordinator) domainStatus(a baton.App) []baton.DomainStatus {
	var out []baton.DomainStatus
	for _, s := range a.Slots {
		custom := c.domainsOf(a.Name, s.Name)
		slices.Sort(custom)
		names := append([]string{c.host(a.Name, s.Name)}, custom...)
		for i, n := range names {
			ds := baton.DomainStatus{Name: n, Slot: s.Name, Custom: i > 0}
			if c.cfg.Certificates != nil {
				if cs, ok := c.cfg.Certificates(n); ok {
					ds.Certificate = &cs
				}
			}
			out = append(out, ds)
		}
	}
	return out
}

// certConflicts: a certificate overdue for renewal, or one that failed
// to be obtained or renewed (a failing challenge among the causes).
func certConflicts(st baton.AppStatus, now time.Time) []baton.Conflict {
	var out []baton.Conflict
	for _, d := range st.Domains {
		cs := d.Certificate
		if cs == nil {
			continue
		}
		check := "check that " + d.Name + " resolves to this host and that ports 80 and 443 reach baton's --proxy-http and --proxy listeners; baton retries by itself"
		if cs.Overdue(now) {
			fix := check
			if cs.Static {
				fix = "replace the certificate given to --proxy-tls-cert and restart baton (or use --acme-email, which renews by itself)"
			}
			out = append(out, baton.Conflict{Code: baton.ConflictCertExpiring,
				Message: fmt.Sprintf("the certificate of %s expires at %s and has not been renewed", d.Name, cs.NotAfter.Format(time.RFC3339)),
				Fix:     fix})
		}
		if cs.LastError != "" {
			out = append(out, baton.Conflict{Code: baton.ConflictCertFailing,
				Message: fmt.Sprintf("obtaining a certificate for %s failed: %s", d.Name, cs.LastError),
				Fix:     check})
		}
	}
	return out
}
