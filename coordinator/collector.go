package coordinator

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton"
)

var (
	queueDesc    = prometheus.NewDesc("baton_queue_length", "Operations queued per app.", []string{"app"}, nil)
	restartsDesc = prometheus.NewDesc("baton_instance_restarts_total", "Restarts of each running instance since it was started by this baton.",
		[]string{"app", "slot", "revision", "instance"}, nil)
	healthyDesc = prometheus.NewDesc("baton_instance_healthy", "1 when an instance passes its health check.",
		[]string{"app", "slot", "revision", "instance"}, nil)
	weightDesc = prometheus.NewDesc("baton_revision_traffic_percent", "Traffic weight of each active revision.",
		[]string{"app", "slot", "revision"}, nil)
)

// Collector exposes state read at scrape time: queue lengths, instance
// health and restarts, traffic weights.
func (c *Coordinator) Collector() prometheus.Collector { return collector{c} }

type collector struct{ c *Coordinator }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDesc
	ch <- restartsDesc
	ch <- healthyDesc
	ch <- weightDesc
}

func (k collector) Collect(ch chan<- prometheus.Metric) {
	c := k.c
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	queued, err := c.cfg.Store.Deployments(ctx, baton.DeploymentFilter{States: []baton.State{baton.StateQueued}})
	if err == nil {
		counts := map[string]int{}
		c.mu.Lock()
		for app := range c.apps {
			counts[app] = 0
		}
		c.mu.Unlock()
		for _, d := range queued {
			counts[d.App]++
		}
		for app, n := range counts {
			ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(n), app)
		}
	}
	c.mu.Lock()
	running := make([]*instances, 0, len(c.running))
	for _, in := range c.running {
		running = append(running, in)
	}
	routes := map[slotKey][]baton.RevisionWeight{}
	for k, v := range c.routes {
		routes[k] = v
	}
	c.mu.Unlock()
	for _, in := range running {
		for _, st := range in.group.Status() {
			idx := strconv.Itoa(st.Index)
			ch <- prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, float64(st.Restarts), in.rev.App, in.rev.Slot, in.rev.Name, idx)
			healthy := 0.0
			if st.Healthy {
				healthy = 1
			}
			ch <- prometheus.MustNewConstMetric(healthyDesc, prometheus.GaugeValue, healthy, in.rev.App, in.rev.Slot, in.rev.Name, idx)
		}
	}
	for k, rws := range routes {
		for _, rw := range rws {
			ch <- prometheus.MustNewConstMetric(weightDesc, prometheus.GaugeValue, float64(rw.Weight), k.app, k.slot, rw.Revision)
		}
	}
}
