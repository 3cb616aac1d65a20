package manifest

import (
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

// knownKeys lists each table's keys for "unknown key" messages; it must
// match the structs in toml.go.
var knownKeys = map[string]string{
	"run":       "command, instances, max_per_host",
	"build":     "command, timeout, env",
	"release":   "command, resources, timeout, resource_wait",
	"health":    "path, interval, timeout, start_timeout",
	"warmup":    "paths, statuses, timeout, retries",
	"resources": "memory, cpus",
}

const durationType = `a duration string like "30s"`

// valueTypes says what each key holds, for type-mismatch messages.
var valueTypes = map[string]string{
	"run":                   "a table",
	"build":                 "a table",
	"release":               "a table",
	"health":                "a table",
	"warmup":                "a table",
	"resources":             "a table",
	"resources.memory":      `a size string like "256MiB"`,
	"resources.cpus":        "a number of CPUs like 0.5",
	"run.command":           "a string",
	"run.instances":         "a whole number",
	"run.max_per_host":      "a whole number",
	"build.command":         "a string",
	"build.timeout":         durationType,
	"build.env":             `a list of setting names like ["NEXT_PUBLIC_API_URL"]`,
	"release.command":       "a string",
	"release.resources":     `a list of strings like ["postgres:main"]`,
	"release.timeout":       durationType,
	"release.resource_wait": durationType,
	"health.path":           "a string",
	"health.interval":       durationType,
	"health.timeout":        durationType,
	"health.start_timeout":  durationType,
	"warmup.paths":          `a list of strings like ["/", "/api/ping"]`,
	"warmup.statuses":       "a list of whole numbers like [200, 204]",
	"warmup.timeout":        durationType,
	"warmup.retries":        "a whole number",
}

func expected(key toml.Key) string {
	return valueTypes[strings.Join(key, ".")]
}
