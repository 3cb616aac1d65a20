package supervisor

import (
	"net"
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
