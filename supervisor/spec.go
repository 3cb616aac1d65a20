package supervisor

import (
	"io"
	"slices"
	"strings"

	"github.com/batonhq/baton"
)

// Spec describes one group of identical app instances, typically one
// revision.
type Spec struct {
	// Name identifies the group in logs and errors, e.g. "hello--000002".
	Name string
	// Dir is the working directory; empty means baton's own.
	Dir string
	// Command is run with /bin/sh -c and must serve HTTP on $PORT. It must
	// be empty when Container is set.
	Command string
	// Container, when set, runs each instance as a runc container of an
	// image instead of Command; Dir is not used then.
	Container *Container
	// Env is the complete environment of the app; the supervisor appends
	// PORT=<port>, which wins over any PORT already in Env. With a
	// Container it is added to the image's environment and wins.
	Env []string
	// Instances is how many processes run, each on its own port.
	Instances int
	// Health is the check that decides when an instance is healthy.
	Health HealthCheck
	// Output receives every stdout and stderr line of every instance as
	// "[N] line\n", N being the instance index from 1. Lines are whole and
	// writes never overlap. A slow writer slows the apps down (their pipes
	// fill up), so it should not block. May be nil.
	Output io.Writer
	// OnHealth is called when an instance turns healthy or unhealthy after
	// SetLive, outside any lock. Calls for one instance come one at a time
	// and in order; calls for different instances may run concurrently.
	// Transitions caused by Stop are not reported. It must not call Stop
	// or Close (they wait for the goroutine running it). May be nil.
	OnHealth func(addr string, healthy bool)
}

// withDefaults checks s and fills unset health fields with baton's
// manifest defaults.
func (s Spec) withDefaults() (Spec, error) {
	switch {
	case s.Name == "":
		return s, baton.Errorf(baton.EINVALID, "supervisor spec has no name")
	case s.Container == nil && strings.TrimSpace(s.Command) == "":
		return s, baton.Errorf(baton.EINVALID, "%s: no command to run", s.Name)
	case s.Container != nil && s.Command != "":
		return s, baton.Errorf(baton.EINVALID, "%s: a command and a container to run: give one", s.Name)
	case s.Instances < 1:
		return s, baton.Errorf(baton.EINVALID, "%s: instances must be at least 1, got %d", s.Name, s.Instances)
	case s.Health.Interval < 0 || s.Health.Timeout < 0:
		return s, baton.Errorf(baton.EINVALID, "%s: health interval and timeout must not be negative", s.Name)
	}
	s.Env = slices.Clone(s.Env) // the caller may reuse its slice
	if s.Health.Path == "" {
		s.Health.Path = baton.DefaultHealthPath
	}
	if !strings.HasPrefix(s.Health.Path, "/") {
		return s, baton.Errorf(baton.EINVALID, "%s: health path %q must start with /", s.Name, s.Health.Path)
	}
	if s.Health.Interval == 0 {
		s.Health.Interval = baton.DefaultHealthInterval
	}
	if s.Health.Timeout == 0 {
		s.Health.Timeout = baton.DefaultHealthTimeout
	}
	return s, nil
}
