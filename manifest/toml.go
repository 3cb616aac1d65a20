package manifest

// file is baton.toml as written. Durations are strings so that a bad one
// is reported with its key; pointers tell "absent" from "zero".
type file struct {
	Run     runTable     `toml:"run"`
	Build   buildTable   `toml:"build"`
	Release releaseTable `toml:"release"`
	Health  healthTable  `toml:"health"`
	Warmup  warmupTable  `toml:"warmup"`
	// Resources applies to container images only.
	Resources resourcesTable `toml:"resources"`
}

type runTable struct {
	Command    string `toml:"command"`
	Instances  *int   `toml:"instances"`
	MaxPerHost *int   `toml:"max_per_host"`
}

type buildTable struct {
	Command string   `toml:"command"`
	Timeout *string  `toml:"timeout"`
	Env     []string `toml:"env"`
}

type releaseTable struct {
	Command      string   `toml:"command"`
	Resources    []string `toml:"resources"`
	Timeout      *string  `toml:"timeout"`
	ResourceWait *string  `toml:"resource_wait"`
}

type healthTable struct {
	Path         *string `toml:"path"`
	Interval     *string `toml:"interval"`
	Timeout      *string `toml:"timeout"`
	StartTimeout *string `toml:"start_timeout"`
}

type warmupTable struct {
	Paths    []string `toml:"paths"`
	Statuses []int    `toml:"statuses"`
	Timeout  *string  `toml:"timeout"`
	Retries  *int     `toml:"retries"`
}

type resourcesTable struct {
	Memory *string  `toml:"memory"`
	CPUs   *float64 `toml:"cpus"`
}
