package supervisor

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// A health check only says that something answers at an instance's
// address. Another program can bind the port between the probe that found
// it free and the app (ports.go): the app then fails to listen and exits,
// but a check made meanwhile is answered by that other program, and the
// instance would count as healthy and get traffic meant for it. Before an
// instance first counts as healthy, listensOn checks that the socket
// listening on its port belongs to its own process or a descendant (a
// shell's child, a container's process under runc).

// listensOn reports whether root or one of its descendants holds a socket
// listening on port in root's network namespace. Off Linux it cannot tell
// and reports true.
func listensOn(root, port int) (bool, error) {
	if runtime.GOOS != "linux" {
		return true, nil
	}
	inodes, err := listeningInodes(root, port)
	if err != nil || len(inodes) == 0 {
		return false, err
	}
	for _, pid := range withDescendants(root) {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			continue // exited meanwhile
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
			if err != nil {
				continue
			}
			if ino, ok := strings.CutPrefix(link, "socket:["); ok && inodes[strings.TrimSuffix(ino, "]")] {
				return true, nil
			}
		}
	}
	return false, nil
}

// listeningInodes are the inodes of the TCP sockets listening on port in
// pid's network namespace (/proc/PID/net/tcp and tcp6).
func listeningInodes(pid, port int) (map[string]bool, error) {
	out := map[string]bool{}
	suffix := fmt.Sprintf(":%04X", port)
	for _, name := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, name))
		if err != nil {
			if name == "tcp6" {
				continue // no IPv6
			}
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) > 9 && fields[3] == "0A" && strings.HasSuffix(fields[1], suffix) {
				out[fields[9]] = true
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// withDescendants is root followed by every process descended from it,
// by the parent ids in /proc/*/stat.
func withDescendants(root int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return []int{root}
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}
