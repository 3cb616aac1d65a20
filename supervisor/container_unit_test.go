package supervisor

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestResolveUser(t *testing.T) {
	rootfs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup} {
		if err := os.WriteFile(filepath.Join(rootfs, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		user     string
		uid, gid uint32
		groups   []uint32
		home     string
		fails    bool
	}{
		{user: "", uid: 0, gid: 0},
		{user: "app", uid: 1234, gid: 2345, groups: []uint32{3456}, home: "/home/app"},
		{user: "1234", uid: 1234, gid: 2345, groups: []uint32{3456}, home: "/home/app"},
		{user: "app:extra", uid: 1234, gid: 3456, home: "/home/app"},
		{user: "app:7", uid: 1234, gid: 7, groups: []uint32{3456}, home: "/home/app"},
		{user: "500", uid: 500, gid: 0},
		{user: "500:600", uid: 500, gid: 600},
		{user: "nobody", fails: true},
		{user: "app:nogroup", fails: true},
		{user: ":1", fails: true},
		{user: "1:", fails: true},
	} {
		uid, gid, groups, home, err := resolveUser(rootfs, tt.user)
		if (err != nil) != tt.fails {
			t.Errorf("%q: error %v", tt.user, err)
			continue
		}
		if !tt.fails && (uid != tt.uid || gid != tt.gid || !slices.Equal(groups, tt.groups) || home != tt.home) {
			t.Errorf("%q = %d %d %v %q, want %d %d %v %q", tt.user, uid, gid, groups, home, tt.uid, tt.gid, tt.groups, tt.home)
		}
	}

	// A symlink out of the image is not followed to the host's files.
	escaped := t.TempDir()
	if err := os.MkdirAll(filepath.Join(escaped, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(escaped, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := resolveUser(escaped, "root"); err == nil {
		t.Error("a name was resolved through a symlink to the host's /etc/passwd")
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"A=image", "B=image", "PORT=1"}, []string{"B=baton", "C=baton", "PORT=8080", "A=last"})
	want := []string{"A=last", "B=baton", "PORT=8080", "C=baton"}
	if !slices.Equal(got, want) {
		t.Errorf("mergeEnv = %q, want %q", got, want)
	}
}

func TestContainerIDs(t *testing.T) {
	setup := &containerSetup{Container: Container{BundleDir: "/b", Env: []string{"X=1"}}}
	for _, tt := range []struct {
		name, label string
		index       int
		prefix      string
	}{
		{name: "hello--000002", index: 3, prefix: "baton-hello--000002-3-"},
		{name: "dep 7/é", label: "release", prefix: "baton-dep_7_-release-"},
		{name: "dep-1", prefix: "baton-dep-1-command-"},
	} {
		run, err := newContainerRun(setup, tt.name, tt.index, tt.label, nil)
		if err != nil {
			t.Fatal(err)
		}
		id := run.ref.ID
		if !validContainerID(id) || len(id) != len(tt.prefix)+12 || id[:len(tt.prefix)] != tt.prefix {
			t.Errorf("%q %d %q: ID %q, want %s + 12 hex", tt.name, tt.index, tt.label, id, tt.prefix)
		}
		if run.ref.Bundle != filepath.Join("/b", id) {
			t.Errorf("bundle %q", run.ref.Bundle)
		}
		if !slices.Equal(run.env, []string{defaultPath, "X=1"}) {
			t.Errorf("env %q", run.env)
		}
	}
}

// TestReadRecordRefusesForeignContainer: a damaged record cannot make
// ReapOrphans remove a directory that is not one of baton's bundles.
func TestReadRecordRefusesForeignContainer(t *testing.T) {
	dir := t.TempDir()
	good := ContainerRef{ID: "baton-a-1-00", Runtime: "/usr/sbin/runc", Root: "/r", Bundle: "/b/baton-a-1-00"}
	for name, c := range map[string]ContainerRef{
		"good":          good,
		"other bundle":  {ID: good.ID, Runtime: good.Runtime, Root: good.Root, Bundle: "/etc"},
		"not baton's":   {ID: "web", Runtime: good.Runtime, Root: good.Root, Bundle: "/b/web"},
		"relative root": {ID: good.ID, Runtime: good.Runtime, Root: "r", Bundle: good.Bundle},
	} {
		rec := stateRecord{PGID: 4242, PID: 4242, Name: "a", Index: 1, Dir: c.Bundle, Container: &c}
		writeRecord(t, dir, rec)
		_, err := readRecord(filepath.Join(dir, "4242.pid"), 4242)
		if (err == nil) != (name == "good") {
			t.Errorf("%s: readRecord error %v", name, err)
		}
	}
}
