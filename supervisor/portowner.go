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
	// The process itself first (the common case), then its descendants.
	for pids, i := []int{root}, 0; i < len(pids); i++ {
		if holdsSocket(pids[i], inodes) {
			return true, nil
		}
		pids = append(pids, childrenOf(pids[i])...)
	}
	return false, nil
}

// holdsSocket reports whether pid has a descriptor of one of the sockets.
func holdsSocket(pid int, inodes map[uint64]bool) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return false // exited meanwhile
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if err != nil {
			continue
		}
		num, ok := strings.CutPrefix(link, "socket:[")
		if !ok {
			continue
		}
		if ino, err := strconv.ParseUint(strings.TrimSuffix(num, "]"), 10, 64); err == nil && inodes[ino] {
			return true
		}
	}
	return false
}

// childrenOf lists pid's children (/proc/PID/task/TID/children, one file
// per thread).
func childrenOf(pid int) []int {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(s); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// procListeningInodes are the inodes of the TCP sockets listening on port
// in pid's network namespace, from /proc/PID/net/tcp and tcp6. The kernel
// writes those files from every TCP socket of the namespace, connected
// and closing ones included: on a busy host tens of thousands of lines
// (diagListeningInodes asks for listeners only, where it can).
func procListeningInodes(pid, port int) (map[uint64]bool, error) {
	out := map[uint64]bool{}
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
			line := sc.Text()
			if !strings.Contains(line, suffix+" ") {
				continue // most lines: not this port, no need to split them
			}
			fields := strings.Fields(line)
			if len(fields) > 9 && fields[3] == "0A" && strings.HasSuffix(fields[1], suffix) {
				if ino, err := strconv.ParseUint(fields[9], 10, 64); err == nil {
					out[ino] = true
				}
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
