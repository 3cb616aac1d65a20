// Package buildinfo says which baton this binary is: its version, commit,
// build time and Go version, from what the Go toolchain records in it.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Info describes the running binary.
type Info struct {
	Version   string `json:"version"`              // module version, or "(devel)" for a build from a work tree
	Commit    string `json:"commit,omitempty"`     // VCS revision, when built from a checkout
	BuildTime string `json:"build_time,omitempty"` // the commit's time (RFC 3339), when known
	Modified  bool   `json:"modified,omitempty"`   // the work tree had uncommitted changes
	GoVersion string `json:"go_version"`
}

// Read returns what the toolchain recorded about this binary; fields it
// did not record stay empty.
func Read() Info {
	info := Info{Version: "(devel)", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	if v := bi.Main.Version; v != "" {
		info.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.time":
			info.BuildTime = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is the one-line form: "baton v1.2.3 (commit abcdef123456, Go go1.24)".
func (i Info) String() string {
	s := "baton " + i.Version
	if i.Commit != "" {
		c := i.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if i.Modified {
			c += "+modified"
		}
		s += " (commit " + c + ", " + i.GoVersion + ")"
	} else {
		s += " (" + i.GoVersion + ")"
	}
	return s
}
