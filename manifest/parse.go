package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/batonhq/baton"
	toml "github.com/pelletier/go-toml/v2"
)

// Bounds on run.instances, run.max_per_host and warmup.retries.
const (
	MaxInstances = 64
	MaxRetries   = 100
)

// Parse reads a baton.toml document. Unknown tables and keys are refused,
// durations are strings like "30s", and every value is checked; any problem
// is an EUNPROCESSABLE error that names the key. The result has defaults
// applied and Source "baton.toml".
func Parse(data []byte) (baton.Manifest, error) {
	return parse(data, true)
}

// ParseImage reads the baton.toml of a container image: as Parse, but
// [run] command may be left out (the image's entrypoint and cmd run).
func ParseImage(data []byte) (baton.Manifest, error) {
	return parse(data, false)
}

func parse(data []byte, needCommand bool) (baton.Manifest, error) {
	var f file
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return baton.Manifest{}, decodeErr(err)
	}
	m, err := f.manifest(needCommand)
	if err != nil {
		return baton.Manifest{}, err
	}
	m.Source = TOMLFile
	return m.WithDefaults(), nil
}

func (f *file) manifest(needCommand bool) (baton.Manifest, error) {
	var m baton.Manifest
	var err error
	if m.Run, err = f.Run.spec(needCommand); err != nil {
		return m, err
	}
	if m.Build, err = f.Build.spec(); err != nil {
		return m, err
	}
	if m.Release, err = f.Release.spec(); err != nil {
		return m, err
	}
	if m.Health, err = f.Health.spec(); err != nil {
		return m, err
	}
	if m.Warmup, err = f.Warmup.spec(); err != nil {
		return m, err
	}
	if m.Resources, err = f.Resources.spec(); err != nil {
		return m, err
	}
	return m, nil
}

func (t runTable) spec(needCommand bool) (baton.RunSpec, error) {
	s := baton.RunSpec{Command: t.Command}
	if needCommand && strings.TrimSpace(t.Command) == "" {
		return s, tomlErr("[run] command is missing; it is the command that starts the app, with PORT in its environment")
	}
	if err := checkCommand("run", t.Command); err != nil {
		return s, err
	}
	if t.Instances != nil {
		if n := *t.Instances; n < 1 || n > MaxInstances {
			return s, tomlErr("[run] instances %d is not between 1 and %d", n, MaxInstances)
		}
		s.Instances = *t.Instances
	}
	if t.MaxPerHost != nil {
		if n := *t.MaxPerHost; n < 0 || n > MaxInstances {
			return s, tomlErr("[run] max_per_host %d is not between 0 (no cap) and %d; it caps the instances of a revision on one host", n, MaxInstances)
		}
		s.MaxPerHost = *t.MaxPerHost
	}
	return s, nil
}

func (t buildTable) spec() (s baton.BuildSpec, err error) {
	if err := checkCommand("build", t.Command); err != nil {
		return s, err
	}
	s.Command = t.Command
	seen := map[string]bool{}
	for _, k := range t.Env {
		if err := baton.ValidateSetting(baton.Setting{Key: k}); err != nil {
			return s, tomlErr("[build] env: %s", baton.ErrorMessage(err))
		}
		if seen[k] {
			return s, tomlErr("[build] env names %s twice", k)
		}
		seen[k] = true
	}
	if len(t.Env) > 0 && strings.TrimSpace(t.Command) == "" {
		return s, tomlErr("[build] env names settings for a build, but [build] command is missing")
	}
	s.Env = t.Env
	s.Timeout, err = durationBetween("[build] timeout", t.Timeout, time.Second, 24*time.Hour)
	return s, err
}

func (t releaseTable) spec() (s baton.ReleaseSpec, err error) {
	if err := checkCommand("release", t.Command); err != nil {
		return s, err
	}
	s.Command = t.Command
	for _, r := range t.Resources {
		if r == "" || strings.IndexFunc(r, isSpaceOrControl) >= 0 {
			return s, tomlErr("[release] resources: %q is not a resource name; use a name without spaces, like \"postgres:main\"", r)
		}
	}
	s.Resources = t.Resources
	if s.Timeout, err = durationBetween("[release] timeout", t.Timeout, time.Second, 24*time.Hour); err != nil {
		return s, err
	}
	s.ResourceWait, err = durationBetween("[release] resource_wait", t.ResourceWait, time.Second, 24*time.Hour)
	return s, err
}

func (t healthTable) spec() (s baton.HealthSpec, err error) {
	if t.Path != nil {
		if err := checkPath("[health] path", *t.Path); err != nil {
			return s, err
		}
		s.Path = *t.Path
	}
	if s.Interval, err = durationBetween("[health] interval", t.Interval, 10*time.Millisecond, time.Hour); err != nil {
		return s, err
	}
	if s.Timeout, err = durationBetween("[health] timeout", t.Timeout, 10*time.Millisecond, time.Hour); err != nil {
		return s, err
	}
	s.StartTimeout, err = durationBetween("[health] start_timeout", t.StartTimeout, time.Second, 24*time.Hour)
	return s, err
}

func (t warmupTable) spec() (s baton.WarmupSpec, err error) {
	for _, p := range t.Paths {
		if err := checkPath("[warmup] paths", p); err != nil {
			return s, err
		}
	}
	s.Paths = t.Paths
	for _, code := range t.Statuses {
		if code < 100 || code > 599 {
			return s, tomlErr("[warmup] statuses: %d is not an HTTP status (100 to 599)", code)
		}
	}
	s.Statuses = t.Statuses
	if s.Timeout, err = durationBetween("[warmup] timeout", t.Timeout, 10*time.Millisecond, time.Hour); err != nil {
		return s, err
	}
	if t.Retries != nil {
		// Zero cannot mean "no retries": the manifest's zero value means
		// "use the default".
		if n := *t.Retries; n < 1 || n > MaxRetries {
			return s, tomlErr("[warmup] retries %d is not between 1 and %d", n, MaxRetries)
		}
		s.Retries = *t.Retries
	}
	return s, nil
}

// MaxCPUs bounds [resources] cpus.
const MaxCPUs = 256

func (t resourcesTable) spec() (s baton.ResourcesSpec, err error) {
	if t.Memory != nil {
		n, err := baton.ParseSize(*t.Memory)
		if err != nil || n < 4<<20 {
			return s, tomlErr("[resources] memory %q is not a size of at least 4MiB; write it like \"256MiB\" or \"1GiB\"", *t.Memory)
		}
		s.MemoryBytes = n
	}
	if t.CPUs != nil {
		if c := *t.CPUs; c < 0.01 || c > MaxCPUs {
			return s, tomlErr("[resources] cpus %g is not between 0.01 and %d", c, MaxCPUs)
		}
		s.CPUs = *t.CPUs
	}
	return s, nil
}

// durationBetween parses an optional duration; absent is zero (default).
func durationBetween(key string, v *string, lo, hi time.Duration) (time.Duration, error) {
	if v == nil {
		return 0, nil
	}
	d, err := time.ParseDuration(*v)
	switch {
	case err != nil:
		return 0, tomlErr("%s %q is not a duration like \"2s\" or \"1m30s\"", key, *v)
	case d <= 0:
		return 0, tomlErr("%s %q must be more than zero", key, *v)
	case d < lo:
		return 0, tomlErr("%s %q is shorter than %v", key, *v, lo)
	case d > hi:
		return 0, tomlErr("%s %q is longer than %v", key, *v, hi)
	}
	return d, nil
}

func checkCommand(table, cmd string) error {
	if strings.IndexByte(cmd, 0) >= 0 {
		return tomlErr("[%s] command contains a NUL character", table)
	}
	return nil
}

// checkPath accepts an HTTP request path: it starts with "/" and has no
// spaces or control characters.
func checkPath(key, p string) error {
	if !strings.HasPrefix(p, "/") || strings.IndexFunc(p, isSpaceOrControl) >= 0 {
		return tomlErr("%s: %q is not a URL path; write it like \"/healthz\"", key, p)
	}
	return nil
}

func isSpaceOrControl(r rune) bool {
	return r <= ' ' || r == 0x7f
}

func tomlErr(format string, args ...any) error {
	return baton.Errorf(baton.EUNPROCESSABLE, TOMLFile+": "+format, args...)
}

func lineErr(row int, format string, args ...any) error {
	return baton.Errorf(baton.EUNPROCESSABLE, "%s line %d: %s", TOMLFile, row, fmt.Sprintf(format, args...))
}

// decodeErr rewrites a go-toml error as a sentence about baton.toml,
// naming the line and, where known, the key.
func decodeErr(err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		msgs := make([]string, 0, len(strict.Errors))
		for i := range strict.Errors {
			msgs = append(msgs, unknownKey(&strict.Errors[i]))
		}
		return baton.Errorf(baton.EUNPROCESSABLE, "%s", strings.Join(msgs, "; "))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		if want := expected(de.Key()); want != "" && strings.Contains(de.Error(), "cannot decode") {
			return lineErr(row, "%s must be %s", keyName(de.Key()), want)
		}
		return lineErr(row, "%s", strings.TrimPrefix(de.Error(), "toml: "))
	}
	return tomlErr("%s", strings.TrimPrefix(err.Error(), "toml: "))
}

func unknownKey(e *toml.DecodeError) string {
	row, _ := e.Position()
	key := e.Key()
	if len(key) == 1 {
		return fmt.Sprintf("%s line %d: unknown table [%s]; baton.toml has [run], [build], [release], [health], [warmup] and [resources]", TOMLFile, row, key[0])
	}
	known := knownKeys[key[0]]
	if known == "" {
		return fmt.Sprintf("%s line %d: unknown key %s", TOMLFile, row, keyName(key))
	}
	return fmt.Sprintf("%s line %d: unknown key %s; [%s] has %s", TOMLFile, row, keyName(key), key[0], known)
}

// keyName writes a key as people read it in baton.toml: "[health] path".
func keyName(key toml.Key) string {
	switch len(key) {
	case 0:
		return "the document"
	case 1:
		return "[" + key[0] + "]"
	}
	return "[" + key[0] + "] " + strings.Join(key[1:], ".")
}
