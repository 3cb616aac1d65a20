package server

import (
	"net"
	"os"
	"strconv"
	"strings"
)

// notifySystemd tells systemd (Type=notify, NotifyAccess=all) that baton
// serves and which process it is: after a restart in place the new
// process becomes the service's main process, so the old one can exit
// without systemd taking the service for stopped. Without NOTIFY_SOCKET
// (not run by systemd) it does nothing.
func (s *Server) notifySystemd() {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	if strings.HasPrefix(addr, "@") {
		addr = "\x00" + addr[1:] // an abstract socket
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		s.log.Warn("tell systemd baton is ready", "err", err)
		return
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("READY=1\nMAINPID=" + strconv.Itoa(os.Getpid()) + "\n")); err != nil {
		s.log.Warn("tell systemd baton is ready", "err", err)
	}
}
