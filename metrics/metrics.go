// Package metrics holds baton's Prometheus collectors: deployments, phases,
// queues, leases, lock breaks, instances (and, through the proxy, requests).
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the set of collectors one baton process exports.
type Metrics struct {
	Registry *prometheus.Registry

	// Deployments counts finished operations by app, kind and result.
	Deployments *prometheus.CounterVec
	// DeploymentSeconds is the duration of finished operations by kind.
	DeploymentSeconds *prometheus.HistogramVec
	// PhaseSeconds is the time spent in each phase.
	PhaseSeconds *prometheus.HistogramVec
	// LeaseWaitSeconds is how long workers waited for an app lease.
	LeaseWaitSeconds prometheus.Histogram
	// LockBreaks counts locks broken by hand.
	LockBreaks prometheus.Counter
}

// New registers every collector on a fresh registry, with Go and process
// collectors, plus the given extra collectors (state read at scrape time).
func New(extra ...prometheus.Collector) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Deployments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "baton_deployments_total", Help: "Finished deployments and operations by app, kind and result.",
		}, []string{"app", "kind", "result"}),
		DeploymentSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "baton_deployment_duration_seconds", Help: "Duration of finished deployments and operations.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"kind"}),
		PhaseSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "baton_deployment_phase_duration_seconds", Help: "Time spent in each deployment phase.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"phase"}),
		LeaseWaitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "baton_lease_wait_seconds", Help: "How long a worker waited to take an app lease.",
			Buckets: []float64{0.001, 0.01, 0.1, 1, 5, 15, 60},
		}),
		LockBreaks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "baton_lock_breaks_total", Help: "App locks broken by hand.",
		}),
	}
	m.Registry.MustRegister(m.Deployments, m.DeploymentSeconds, m.PhaseSeconds, m.LeaseWaitSeconds, m.LockBreaks,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range extra {
		m.Registry.MustRegister(c)
	}
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Timeout: 10 * time.Second})
}

// ObserveFinished records a finished operation.
func (m *Metrics) ObserveFinished(app, kind, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.Deployments.WithLabelValues(app, kind, result).Inc()
	m.DeploymentSeconds.WithLabelValues(kind).Observe(d.Seconds())
}

// ObservePhase records the time spent in a phase.
func (m *Metrics) ObservePhase(phase string, d time.Duration) {
	if m == nil || phase == "" {
		return
	}
	m.PhaseSeconds.WithLabelValues(phase).Observe(d.Seconds())
}

// ObserveLeaseWait records how long a worker waited for a lease.
func (m *Metrics) ObserveLeaseWait(d time.Duration) {
	if m == nil {
		return
	}
	m.LeaseWaitSeconds.Observe(d.Seconds())
}

// LockBroken counts a lock broken by hand.
func (m *Metrics) LockBroken() {
	if m == nil {
		return
	}
	m.LockBreaks.Inc()
}
