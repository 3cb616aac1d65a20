//go:build !linux

package proxy

// deferAccept: off Linux the proxy takes connections as they come.
func deferAccept(fd uintptr) error { return nil }
