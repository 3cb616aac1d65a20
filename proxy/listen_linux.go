package proxy

import "syscall"

// deferAccept, the proxy listener's Control, makes the kernel hand over
// an accepted connection only once its first bytes have arrived
// (TCP_DEFER_ACCEPT, nginx's "deferred" and HAProxy's "defer-accept").
// HTTP and TLS clients speak first, so the connection's goroutine finds
// the request already there: its first read succeeds instead of waiting
// in the poller and being woken again, a park, a wake and a syscall less
// per connection, which is what a client that opens a connection per
// request pays for. A client that connects and says nothing for the
// timeout (one second, in SYN-ACK retransmits) is handed over then
// anyway, so idle timeouts still see it; a port scanner or a TCP health
// check that connects and closes never costs the proxy a goroutine.
func deferAccept(_, _ string, rc syscall.RawConn) error {
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 1)
	}); cerr != nil {
		return cerr
	}
	return err
}
