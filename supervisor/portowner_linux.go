package supervisor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// listeningInodes are the inodes of the TCP sockets listening on port in
// pid's network namespace: asked of the kernel over NETLINK_SOCK_DIAG when
// pid shares baton's namespace (instances do, unless a container runs in
// a namespace of its own), read from /proc otherwise or when the kernel
// does not answer.
func listeningInodes(pid, port int) (map[uint64]bool, error) {
	if same, err := sameNetNS(pid); err == nil && same {
		if inodes, err := diagListeningInodes(port); err == nil {
			return inodes, nil
		}
	}
	return procListeningInodes(pid, port)
}

// sameNetNS reports whether pid is in this process's network namespace.
func sameNetNS(pid int) (bool, error) {
	self, err := os.Stat("/proc/self/ns/net")
	if err != nil {
		return false, err
	}
	other, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return false, err
	}
	return os.SameFile(self, other), nil
}

// Sizes and offsets of the sock_diag messages (linux/inet_diag.h).
const (
	inetDiagReqV2Len = 56 // struct inet_diag_req_v2
	inetDiagMsgLen   = 72 // struct inet_diag_msg
	inetDiagSportAt  = 4  // inet_diag_msg.id.idiag_sport, big-endian
	inetDiagInodeAt  = 68 // inet_diag_msg.idiag_inode
	tcpListen        = 10 // TCP_LISTEN, a bit of inet_diag_req_v2.idiag_states
)

// diagListeningInodes asks the kernel for the TCP sockets (IPv4 and IPv6)
// listening on port in this process's network namespace. Asked for
// listeners only, the kernel walks its table of listening sockets alone,
// not every connection (which /proc/net/tcp lists).
func diagListeningInodes(port int) (map[uint64]bool, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	out := map[uint64]bool{}
	for seq, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		req := make([]byte, unix.NLMSG_HDRLEN+inetDiagReqV2Len)
		ne := binary.NativeEndian
		ne.PutUint32(req[0:], uint32(len(req)))
		ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
		ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
		ne.PutUint32(req[8:], uint32(seq+1))
		r := req[unix.NLMSG_HDRLEN:]
		r[0], r[1] = family, unix.IPPROTO_TCP
		ne.PutUint32(r[4:], 1<<tcpListen)
		binary.BigEndian.PutUint16(r[8:], uint16(port)) // id.idiag_sport: the kernel skips other listeners
		if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return nil, err
		}
		if err := readDiagDump(fd, uint32(seq+1), func(m []byte) {
			if len(m) >= inetDiagMsgLen && int(binary.BigEndian.Uint16(m[inetDiagSportAt:])) == port {
				out[uint64(ne.Uint32(m[inetDiagInodeAt:]))] = true
			}
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readDiagDump reads the answers to dump request seq until its end, calling
// each with the payload of every message.
func readDiagDump(fd int, seq uint32, each func([]byte)) error {
	buf := make([]byte, 32<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
						return syscall.Errno(-errno)
					}
				}
				return errors.New("sock_diag: an error message without its code")
			default:
				each(m.Data)
			}
		}
	}
}
