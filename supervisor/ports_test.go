package supervisor

import (
	"net"
	"slices"
	"strconv"
	"testing"
)

func TestPortsAreDistinctUntilReleased(t *testing.T) {
	var p portSet
	seen := make(map[int]bool)
	var all []int
	for range 10 {
		ports, err := p.allocate(3)
		if err != nil {
			t.Fatal(err)
		}
		for _, port := range ports {
			if seen[port] {
				t.Fatalf("port %d handed out twice", port)
			}
			seen[port] = true
			// Free to bind: nothing else holds it.
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err != nil {
				t.Fatalf("bind allocated port: %v", err)
			}
			l.Close()
		}
		all = append(all, ports...)
	}
	p.release(all)
	if len(p.owned) != 0 {
		t.Errorf("%d ports still owned after release", len(p.owned))
	}
}

// TestPortsAvoidTheEphemeralRange: instance ports come from below the
// kernel's range for outgoing connections' source ports, which could
// otherwise take a probed port before the app binds it, and a released
// port is not handed out again at once.
func TestPortsAvoidTheEphemeralRange(t *testing.T) {
	lo, hi := dynamicRange()
	elo, ehi, err := ephemeralRange()
	if err != nil {
		t.Fatal(err)
	}
	var p portSet
	first, err := p.allocate(5)
	if err != nil {
		t.Fatal(err)
	}
	p.release(first)
	again, err := p.allocate(5)
	if err != nil {
		t.Fatal(err)
	}
	for _, port := range append(first, again...) {
		if port < lo || port >= hi || (port >= elo && port <= ehi) {
			t.Fatalf("port %d: want one in [%d, %d) outside the ephemeral range %d–%d", port, lo, hi, elo, ehi)
		}
		if slices.Contains(first, port) && slices.Contains(again, port) {
			t.Fatalf("port %d handed out again right after its release (first %v, then %v)", port, first, again)
		}
	}
}
