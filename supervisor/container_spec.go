package supervisor

// The OCI runtime spec (config.json) of a run, as far as baton uses it:
// what `runc spec` generates, with the image's process, a read-only root,
// writable /tmp and /run, the host's network (no network namespace: the
// app listens on 127.0.0.1:$PORT) and the host's name resolution files.

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

type ociSpec struct {
	OCIVersion  string            `json:"ociVersion"`
	Process     ociProcess        `json:"process"`
	Root        ociRoot           `json:"root"`
	Hostname    string            `json:"hostname"`
	Mounts      []ociMount        `json:"mounts"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Linux       ociLinux          `json:"linux"`
}

type ociProcess struct {
	Terminal        bool            `json:"terminal"`
	User            ociUser         `json:"user"`
	Args            []string        `json:"args"`
	Env             []string        `json:"env"`
	Cwd             string          `json:"cwd"`
	Capabilities    ociCapabilities `json:"capabilities"`
	Rlimits         []ociRlimit     `json:"rlimits"`
	NoNewPrivileges bool            `json:"noNewPrivileges"`
}

type ociUser struct {
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	AdditionalGids []uint32 `json:"additionalGids,omitempty"`
}

type ociCapabilities struct {
	Bounding  []string `json:"bounding"`
	Effective []string `json:"effective"`
	Permitted []string `json:"permitted"`
}

type ociRlimit struct {
	Type string `json:"type"`
	Hard uint64 `json:"hard"`
	Soft uint64 `json:"soft"`
}

type ociRoot struct {
	Path     string `json:"path"`
	Readonly bool   `json:"readonly"`
}

type ociMount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type"`
	Source      string   `json:"source"`
	Options     []string `json:"options,omitempty"`
}

type ociLinux struct {
	Resources     ociResources   `json:"resources"`
	Namespaces    []ociNamespace `json:"namespaces"`
	MaskedPaths   []string       `json:"maskedPaths"`
	ReadonlyPaths []string       `json:"readonlyPaths"`
}

type ociResources struct {
	Devices []ociDeviceRule `json:"devices"`
	Memory  *ociMemory      `json:"memory,omitempty"`
	CPU     *ociCPU         `json:"cpu,omitempty"`
}

type ociDeviceRule struct {
	Allow  bool   `json:"allow"`
	Access string `json:"access"`
}

type ociMemory struct {
	Limit int64 `json:"limit"`
}

type ociCPU struct {
	Quota  int64  `json:"quota"`
	Period uint64 `json:"period"`
}

type ociNamespace struct {
	Type string `json:"type"`
}

// cpuPeriod is the CFS period CPUs is expressed in (100 ms).
const cpuPeriod = 100_000

// defaultCapabilities are those `runc spec` gives, without the ambient
// set: a non-root user gets none, as with Docker.
var defaultCapabilities = []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}

// ociSpec returns the runtime spec of the run.
func (r *containerRun) ociSpec() ociSpec {
	c := r.setup
	spec := ociSpec{
		OCIVersion: "1.0.2",
		Process: ociProcess{
			User: ociUser{UID: c.uid, GID: c.gid, AdditionalGids: c.groups},
			Args: c.Args,
			Env:  r.env,
			Cwd:  c.Cwd,
			Capabilities: ociCapabilities{
				Bounding: defaultCapabilities, Effective: defaultCapabilities, Permitted: defaultCapabilities,
			},
			Rlimits:         []ociRlimit{{Type: "RLIMIT_NOFILE", Hard: c.nofile, Soft: c.nofile}},
			NoNewPrivileges: true,
		},
		Root:        ociRoot{Path: c.Rootfs, Readonly: true},
		Hostname:    r.hostname,
		Mounts:      containerMounts(),
		Annotations: r.labels,
		Linux: ociLinux{
			Resources: ociResources{Devices: []ociDeviceRule{{Allow: false, Access: "rwm"}}},
			// No network namespace: the container shares the host's.
			Namespaces: []ociNamespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if c.MemoryBytes > 0 {
		spec.Linux.Resources.Memory = &ociMemory{Limit: c.MemoryBytes}
	}
	if c.CPUs > 0 {
		spec.Linux.Resources.CPU = &ociCPU{Quota: max(int64(c.CPUs*cpuPeriod), 1000), Period: cpuPeriod}
	}
	return spec
}

// containerMounts are the mounts of `runc spec` plus a tmpfs on /tmp and
// /run (the root is read-only) and the host's /etc/hosts and
// /etc/resolv.conf, read-only, so that the app resolves names as the host
// does.
func containerMounts() []ociMount {
	mounts := []ociMount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=755"}},
	}
	for _, f := range []string{"/etc/hosts", "/etc/resolv.conf"} {
		if info, err := os.Stat(f); err == nil && info.Mode().IsRegular() {
			mounts = append(mounts, ociMount{Destination: f, Type: "bind", Source: f, Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}})
		}
	}
	return mounts
}

// resolveUser turns "user[:group]" into ids, looking names up in the
// image's /etc/passwd and /etc/group (read inside rootfs: a symlink there
// cannot lead to the host's). A user found in /etc/passwd gets its
// primary group unless one is given, the groups that list it, and its
// home directory.
func resolveUser(rootfs, spec string) (uid, gid uint32, groups []uint32, home string, err error) {
	if spec == "" {
		return 0, 0, nil, "", nil
	}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" || (hasGroup && groupPart == "") {
		return 0, 0, nil, "", fmt.Errorf("%q is not user[:group]", spec)
	}
	passwd, _ := readImageFile(rootfs, "etc/passwd") // none: numbers only
	var user *passwdEntry
	if n, ok := parseID(userPart); ok {
		uid = n
		for _, e := range parsePasswd(passwd) {
			if e.uid == n {
				user = &e
				break
			}
		}
	} else {
		for _, e := range parsePasswd(passwd) {
			if e.name == userPart {
				user = &e
				break
			}
		}
		if user == nil {
			return 0, 0, nil, "", fmt.Errorf("no user %q in the image's /etc/passwd", userPart)
		}
		uid = user.uid
	}
	if user != nil {
		gid, home = user.gid, user.home
	}
	group, _ := readImageFile(rootfs, "etc/group")
	if hasGroup {
		if n, ok := parseID(groupPart); ok {
			gid = n
		} else {
			found := false
			for _, e := range parseGroups(group) {
				if e.name == groupPart {
					gid, found = e.gid, true
					break
				}
			}
			if !found {
				return 0, 0, nil, "", fmt.Errorf("no group %q in the image's /etc/group", groupPart)
			}
		}
	}
	if user != nil {
		for _, e := range parseGroups(group) {
			for _, m := range e.members {
				if m == user.name && e.gid != gid {
					groups = append(groups, e.gid)
				}
			}
		}
	}
	return uid, gid, groups, home, nil
}

// readImageFile reads name inside rootfs without following a symlink out
// of it.
func readImageFile(rootfs, name string) ([]byte, error) {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.ReadFile(name)
}

func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

// parsePasswd reads "name:x:uid:gid:gecos:home:shell" lines, skipping
// malformed ones.
func parsePasswd(data []byte) []passwdEntry {
	var out []passwdEntry
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 6 {
			continue
		}
		uid, ok1 := parseID(f[2])
		gid, ok2 := parseID(f[3])
		if ok1 && ok2 && f[0] != "" {
			out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid, home: f[5]})
		}
	}
	return out
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// parseGroups reads "name:x:gid:member,member" lines, skipping malformed
// ones.
func parseGroups(data []byte) []groupEntry {
	var out []groupEntry
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 4 {
			continue
		}
		gid, ok := parseID(f[2])
		if !ok || f[0] == "" {
			continue
		}
		e := groupEntry{name: f[0], gid: gid}
		if f[3] != "" {
			e.members = strings.Split(f[3], ",")
		}
		out = append(out, e)
	}
	return out
}
