//go:build !linux

package proxy

import "syscall"

// deferAccept: off Linux the proxy takes connections as they come (no
// Control on its listener).
var deferAccept func(network, address string, rc syscall.RawConn) error
