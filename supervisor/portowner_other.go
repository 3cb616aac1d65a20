//go:build !linux

package supervisor

// listeningInodes: off Linux listensOn does not look (it reports true).
func listeningInodes(pid, port int) (map[uint64]bool, error) {
	return procListeningInodes(pid, port)
}
