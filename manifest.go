package baton

import "time"

// Manifest says how to build, run and check a revision. It comes from
// baton.toml at the artifact root, or from a Procfile's web: line.
type Manifest struct {
	// Source is the file the manifest was read from ("baton.toml", "Procfile").
	Source  string      `json:"source"`
	Run     RunSpec     `json:"run"`
	Build   BuildSpec   `json:"build"`
	Release ReleaseSpec `json:"release"`
	Health  HealthSpec  `json:"health"`
	Warmup  WarmupSpec  `json:"warmup"`
	// Resources bound a container image's instances; archives run as
	// plain processes and ignore them.
	Resources ResourcesSpec `json:"resources"`
}

// ResourcesSpec limits each instance of a container image. Zero is no
// limit.
type ResourcesSpec struct {
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
	CPUs        float64 `json:"cpus,omitempty"`
}

// RunSpec is how instances are started. Command runs under /bin/sh -c with
// PORT set. For a container image an empty Command runs the image's own
// entrypoint and cmd.
type RunSpec struct {
	Command   string `json:"command"`
	Instances int    `json:"instances"`
	// MaxPerHost caps the instances of a revision on one host when several
	// hosts share the store ([run] max_per_host; 0: no cap). `baton scale
	// --max-per-host` overrides it.
	MaxPerHost int `json:"max_per_host"`
}

// BuildSpec is an optional command run once in the revision folder.
type BuildSpec struct {
	Command string        `json:"command"`
	Timeout time.Duration `json:"timeout"`
	// Env names the settings the build reads (build-time settings): the
	// build gets them in its environment, and a change of one of them
	// builds again. A change of any other setting only restarts the app
	// with the build output it has.
	Env []string `json:"env,omitempty"`
}

// BuildTime returns those of keys that are build-time settings (in Env):
// a change of any of them needs a new build.
func (b BuildSpec) BuildTime(keys []string) []string {
	var out []string
	for _, k := range keys {
		for _, e := range b.Env {
			if k == e {
				out = append(out, k)
				break
			}
		}
	}
	return out
}

// ReleaseSpec is an optional command run once per deployment before start,
// holding locks on the named shared resources.
type ReleaseSpec struct {
	Command      string        `json:"command"`
	Resources    []string      `json:"resources"`
	Timeout      time.Duration `json:"timeout"`
	ResourceWait time.Duration `json:"resource_wait"`
}

// HealthSpec is the HTTP check that gates traffic.
type HealthSpec struct {
	Path         string        `json:"path"`
	Interval     time.Duration `json:"interval"`
	Timeout      time.Duration `json:"timeout"`
	StartTimeout time.Duration `json:"start_timeout"`
}

// WarmupSpec is what a swap requests before routing flips.
type WarmupSpec struct {
	Paths    []string      `json:"paths"`
	Statuses []int         `json:"statuses"`
	Timeout  time.Duration `json:"timeout"`
	Retries  int           `json:"retries"`
}

// Manifest defaults.
const (
	DefaultInstances      = 1
	DefaultHealthPath     = "/"
	DefaultHealthInterval = 500 * time.Millisecond
	DefaultHealthTimeout  = 2 * time.Second
	DefaultStartTimeout   = 60 * time.Second
	DefaultBuildTimeout   = 10 * time.Minute
	DefaultReleaseTimeout = 10 * time.Minute
	DefaultResourceWait   = 10 * time.Minute
	DefaultWarmupTimeout  = 90 * time.Second
	DefaultWarmupRetries  = 5
)

// WithDefaults returns m with every unset field given its default.
func (m Manifest) WithDefaults() Manifest {
	if m.Run.Instances == 0 {
		m.Run.Instances = DefaultInstances
	}
	if m.Build.Timeout == 0 {
		m.Build.Timeout = DefaultBuildTimeout
	}
	if m.Release.Timeout == 0 {
		m.Release.Timeout = DefaultReleaseTimeout
	}
	if m.Release.ResourceWait == 0 {
		m.Release.ResourceWait = DefaultResourceWait
	}
	if m.Health.Path == "" {
		m.Health.Path = DefaultHealthPath
	}
	if m.Health.Interval == 0 {
		m.Health.Interval = DefaultHealthInterval
	}
	if m.Health.Timeout == 0 {
		m.Health.Timeout = DefaultHealthTimeout
	}
	if m.Health.StartTimeout == 0 {
		m.Health.StartTimeout = DefaultStartTimeout
	}
	if len(m.Warmup.Paths) == 0 {
		m.Warmup.Paths = []string{"/"}
	}
	if m.Warmup.Timeout == 0 {
		m.Warmup.Timeout = DefaultWarmupTimeout
	}
	if m.Warmup.Retries == 0 {
		m.Warmup.Retries = DefaultWarmupRetries
	}
	return m
}
