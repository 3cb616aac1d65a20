package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ProblemTypeBase prefixes the "type" of every problem the proxy answers
// with; the fragment names the problem (e.g. "#unknown-host").
const ProblemTypeBase = "https://github.com/batonhq/baton/blob/main/docs/problems.md"

// problem is an RFC 9457 problem detail as the proxy sends it to clients.
// App, slot, host and revision are extension members so scripts need not
// parse the sentence.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Host     string `json:"host,omitempty"`
	App      string `json:"app,omitempty"`
	Slot     string `json:"slot,omitempty"`
	Revision string `json:"revision,omitempty"`

	retryAfter int // seconds; sent as Retry-After when positive
	// cause is what the request metrics count the answer as.
	cause Cause
}

func (pb *problem) write(w http.ResponseWriter) {
	body, err := json.Marshal(pb)
	if err != nil { // cannot happen: only strings and ints
		body = []byte(`{"title":"Internal error","status":500}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if pb.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(pb.retryAfter))
	}
	w.WriteHeader(pb.Status)
	w.Write(append(body, '\n'))
}

func problemType(slug string) string { return ProblemTypeBase + "#" + slug }

// clipHost keeps a client's host name in a problem to a sane length.
func clipHost(host string) string {
	if len(host) > maxHostLen {
		return host[:maxHostLen]
	}
	return host
}

func unknownHost(host, domain string) *problem {
	host = clipHost(host)
	return &problem{
		Type:   problemType("unknown-host"),
		Title:  "Unknown host",
		Status: http.StatusNotFound,
		Detail: fmt.Sprintf("no app is served at host %q; apps are served at APP.%s (production slot) and APP-SLOT.%s (other slots)",
			host, domain, domain),
		Host: host,
	}
}

func noLiveRevision(rt *route) *problem {
	return &problem{
		Type:   problemType("no-live-revision"),
		Title:  "No live revision",
		Status: http.StatusServiceUnavailable,
		Detail: fmt.Sprintf("app %s has no live revision in slot %s yet; deploy one with `baton deploy %s PATH`",
			rt.app, rt.slot, rt.app),
		Host: rt.host, App: rt.app, Slot: rt.slot,
		retryAfter: 10,
		cause:      CauseNoLiveRevision,
	}
}

// noLiveInstance: revisions have traffic but none of their instances can
// take a request right now (all draining, restarting, or refusing).
func noLiveInstance(rt *route, revision string) *problem {
	what := "app " + rt.app
	if revision != "" {
		what = "revision " + revision + " of app " + rt.app
	}
	return &problem{
		Type:   problemType("no-live-instance"),
		Title:  "No live instance",
		Status: http.StatusServiceUnavailable,
		Detail: fmt.Sprintf("%s has no instance taking requests in slot %s right now (restarting or draining); retry shortly",
			what, rt.slot),
		Host: rt.host, App: rt.app, Slot: rt.slot, Revision: revision,
		retryAfter: 1,
		cause:      CauseNoLiveRevision,
	}
}

// notRunHere answers a request that reached a host's peer listener for an
// app that host does not run (routing moved meanwhile): the forwarding
// host retries shortly with a fresher table.
func notRunHere(rt *route) *problem {
	return &problem{
		Type:   problemType("not-run-here"),
		Title:  "App not run on this host",
		Status: http.StatusMisdirectedRequest,
		Detail: fmt.Sprintf("app %s is not run on this host (it moved to another host); retry shortly", rt.app),
		Host:   rt.host, App: rt.app, Slot: rt.slot,
		retryAfter: 1,
		cause:      CauseNoLiveRevision,
	}
}

// peerKeyRefused answers a request to a host's peer listener that does not
// carry the cluster's peer key: only the other hosts' proxies may send
// requests there (they are served and trusted as those hosts forward them).
func peerKeyRefused(host string) *problem {
	return &problem{
		Type:   problemType("peer-key-refused"),
		Title:  "Not a host of this cluster",
		Status: http.StatusForbidden,
		Detail: "this is a baton host's peer listener, which serves only the other hosts of its cluster (they send the cluster's key, " + PeerKeyHeader + "); send requests to a host's proxy port instead",
		Host:   clipHost(host),
	}
}

func unknownRevision(rt *route, revision string) *problem {
	routed := strings.Join(rt.revisionNames(), ", ")
	if routed == "" {
		routed = "none"
	}
	return &problem{
		Type:   problemType("unknown-revision"),
		Title:  "Unknown revision",
		Status: http.StatusNotFound,
		Detail: fmt.Sprintf("revision %q named by the Baton-Revision header is not routed for app %s in slot %s; routed revisions: %s",
			revision, rt.app, rt.slot, routed),
		Host: rt.host, App: rt.app, Slot: rt.slot, Revision: revision,
		cause: CauseUnknownRevision,
	}
}

// badGateway never carries the upstream error: it names internal
// addresses. The log has it.
func badGateway(rt *route) *problem {
	return &problem{
		Type:   problemType("bad-gateway"),
		Title:  "Bad gateway",
		Status: http.StatusBadGateway,
		Detail: fmt.Sprintf("app %s in slot %s could not be reached or failed before answering; the server log has the details",
			rt.app, rt.slot),
		Host: rt.host, App: rt.app, Slot: rt.slot,
		cause: CauseUpstreamFailed,
	}
}

func gatewayTimeout(rt *route, wait time.Duration) *problem {
	return &problem{
		Type:   problemType("gateway-timeout"),
		Title:  "Gateway timeout",
		Status: http.StatusGatewayTimeout,
		Detail: fmt.Sprintf("app %s in slot %s did not answer in time (response headers are awaited for %s)", rt.app, rt.slot, wait),
		Host:   rt.host, App: rt.app, Slot: rt.slot,
		cause: CauseUpstreamTimeout,
	}
}
