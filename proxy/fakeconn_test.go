package proxy

import (
	"bytes"
	"net"
)

// bufConn is a net.Conn that only collects writes, for wbuf in unit tests.
type bufConn struct {
	net.Conn
	*bytes.Buffer
}

func (c *bufConn) Write(p []byte) (int, error) { return c.Buffer.Write(p) }
func (c *bufConn) Read(p []byte) (int, error)  { return c.Buffer.Read(p) }
