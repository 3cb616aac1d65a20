package metrics

import (
	"github.com/batonhq/baton/proxy"
	"github.com/prometheus/client_golang/prometheus"
)

// RequestSource is what the request collector reads at scrape time; a
// *proxy.Proxy is one.
type RequestSource interface {
	RequestStats() []proxy.RequestStats
	Stats() proxy.Stats
}

var _ RequestSource = (*proxy.Proxy)(nil)

// statusClasses are the label values of the status class, by index.
var statusClasses = [5]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

var (
	revLabels = []string{"app", "slot", "revision"}

	requestsDesc = prometheus.NewDesc("baton_proxy_requests_total",
		"Requests the proxy answered, by app, slot, revision (empty when none was chosen) and status class.",
		append(revLabels, "class"), nil)
	errorsDesc = prometheus.NewDesc("baton_proxy_request_errors_total",
		"Requests the proxy answered with an error itself, by cause: upstream_refused and upstream_failed (502), "+
			"upstream_timeout (504), no_live_revision (503), unknown_revision (404), client_gone, malformed_request (4xx).",
		append(revLabels, "cause"), nil)
	durationDesc = prometheus.NewDesc("baton_proxy_request_duration_seconds",
		"Time from a request's arrival to the end of its answer.", revLabels, nil)
	upstreamDesc = prometheus.NewDesc("baton_proxy_upstream_duration_seconds",
		"Time from a request's arrival to its upstream's response head: the app's part of baton_proxy_request_duration_seconds (HTTP/1.1 data plane).",
		revLabels, nil)
	upstreamIdleDesc = prometheus.NewDesc("baton_proxy_upstream_idle_connections",
		"Keep-alive connections to instances idle in the proxy's pools now.", nil, nil)
	upstreamInFlightDesc = prometheus.NewDesc("baton_proxy_upstream_requests_in_flight",
		"Requests the proxy has sent to instances and not finished, now.", nil, nil)
	bytesInDesc = prometheus.NewDesc("baton_proxy_request_body_bytes_total",
		"Request body bytes forwarded from clients.", revLabels, nil)
	bytesOutDesc = prometheus.NewDesc("baton_proxy_response_body_bytes_total",
		"Response body bytes sent to clients.", revLabels, nil)
	connsDesc = prometheus.NewDesc("baton_proxy_open_connections",
		"Client connections open now.", nil, nil)
	tunnelsDesc = prometheus.NewDesc("baton_proxy_open_tunnels",
		"Upgraded connections (WebSockets) open now.", nil, nil)
	unroutedDesc = prometheus.NewDesc("baton_proxy_unrouted_requests_total",
		"Requests that reached no app: for a host no app serves (unknown_host), or refused before routing (bad_request).",
		[]string{"reason"}, nil)
)

// requestCollector turns the proxy's counters into metrics at scrape time.
type requestCollector struct{ src RequestSource }

// NewRequestCollector returns a collector of the proxy's request metrics.
// The proxy counts with atomics on its request path; the collector reads
// them only when scraped.
func NewRequestCollector(src RequestSource) prometheus.Collector {
	return requestCollector{src: src}
}

func (requestCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{requestsDesc, errorsDesc, durationDesc, upstreamDesc, bytesInDesc, bytesOutDesc,
		connsDesc, tunnelsDesc, unroutedDesc, upstreamIdleDesc, upstreamInFlightDesc} {
		ch <- d
	}
}

func (c requestCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.src.RequestStats() {
		l := []string{s.App, s.Slot, s.Revision}
		for i, n := range s.Requests {
			if n > 0 {
				ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(n),
					append(l[:3:3], statusClasses[i])...)
			}
		}
		for cause, n := range s.Errors {
			if n > 0 {
				ch <- prometheus.MustNewConstMetric(errorsDesc, prometheus.CounterValue, float64(n),
					append(l[:3:3], proxy.Cause(cause).String())...)
			}
		}
		if s.DurationCount == 0 && s.BodyBytesIn == 0 && s.BodyBytesOut == 0 {
			continue // a revision that served nothing yet: no series
		}
		buckets := make(map[float64]uint64, len(proxy.DurationBuckets))
		for i, le := range proxy.DurationBuckets {
			buckets[le] = s.DurationCounts[i]
		}
		ch <- prometheus.MustNewConstHistogram(durationDesc, s.DurationCount, s.DurationSum, buckets, l...)
		if s.UpstreamCount > 0 {
			up := make(map[float64]uint64, len(proxy.DurationBuckets))
			for i, le := range proxy.DurationBuckets {
				up[le] = s.UpstreamCounts[i]
			}
			ch <- prometheus.MustNewConstHistogram(upstreamDesc, s.UpstreamCount, s.UpstreamSum, up, l...)
		}
		ch <- prometheus.MustNewConstMetric(bytesInDesc, prometheus.CounterValue, float64(s.BodyBytesIn), l...)
		ch <- prometheus.MustNewConstMetric(bytesOutDesc, prometheus.CounterValue, float64(s.BodyBytesOut), l...)
	}
	st := c.src.Stats()
	ch <- prometheus.MustNewConstMetric(connsDesc, prometheus.GaugeValue, float64(st.OpenConnections))
	ch <- prometheus.MustNewConstMetric(tunnelsDesc, prometheus.GaugeValue, float64(st.OpenTunnels))
	ch <- prometheus.MustNewConstMetric(upstreamIdleDesc, prometheus.GaugeValue, float64(st.UpstreamIdle))
	ch <- prometheus.MustNewConstMetric(upstreamInFlightDesc, prometheus.GaugeValue, float64(st.UpstreamInFlight))
	ch <- prometheus.MustNewConstMetric(unroutedDesc, prometheus.CounterValue, float64(st.UnknownHost), "unknown_host")
	ch <- prometheus.MustNewConstMetric(unroutedDesc, prometheus.CounterValue, float64(st.BadRequest), "bad_request")
}
