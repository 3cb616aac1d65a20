package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton"
)

// CertSource reports the certificates a controller serves, and how many
// certificates it obtained or renewed itself (not loaded from the store).
type CertSource interface {
	CertificateStatuses() []baton.CertificateStatus
	Obtained() (obtained, renewed, failed uint64)
}

var (
	certExpiryDesc = prometheus.NewDesc("baton_certificate_expiry_timestamp_seconds",
		"When the certificate the proxy serves for a name expires (unix seconds).", []string{"name", "issuer"}, nil)
	certEventsDesc = prometheus.NewDesc("baton_certificates_obtained_total",
		"Certificates this controller obtained from its ACME CA, by kind: obtained, renewed or failed (an attempt).", []string{"kind"}, nil)
)

// NewCertCollector exports src at scrape time.
func NewCertCollector(src CertSource) prometheus.Collector { return certCollector{src} }

type certCollector struct{ src CertSource }

func (certCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- certExpiryDesc
	ch <- certEventsDesc
}

func (c certCollector) Collect(ch chan<- prometheus.Metric) {
	for _, cs := range c.src.CertificateStatuses() {
		if cs.NotAfter != nil {
			ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, float64(cs.NotAfter.Unix()), cs.Name, cs.Issuer)
		}
	}
	o, r, f := c.src.Obtained()
	ch <- prometheus.MustNewConstMetric(certEventsDesc, prometheus.CounterValue, float64(o), "obtained")
	ch <- prometheus.MustNewConstMetric(certEventsDesc, prometheus.CounterValue, float64(r), "renewed")
	ch <- prometheus.MustNewConstMetric(certEventsDesc, prometheus.CounterValue, float64(f), "failed")
}
