package manifest

import (
	"strings"
	"testing"
	"time"
)

func TestFromLabels(t *testing.T) {
	m, found, err := FromLabels(map[string]string{
		"org.opencontainers.image.title": "hello",
		"dev.baton.health.path":          "/healthz",
		"dev.baton.health.start_timeout": "20s",
		"dev.baton.run.instances":        "2",
		"dev.baton.run.max_per_host":     "1",
		"dev.baton.warmup.paths":         "/, /api/ping",
		"dev.baton.warmup.statuses":      "200, 204",
		"dev.baton.resources.memory":     "128MiB",
		"dev.baton.resources.cpus":       "0.5",
		"dev.baton.release.command":      "/app migrate",
	})
	if err != nil || !found {
		t.Fatalf("FromLabels: found %v, err %v", found, err)
	}
	if m.Health.Path != "/healthz" || m.Health.StartTimeout != 20*time.Second || m.Run.Instances != 2 || m.Run.MaxPerHost != 1 || m.Run.Command != "" {
		t.Fatalf("run/health: %+v %+v", m.Run, m.Health)
	}
	if strings.Join(m.Warmup.Paths, " ") != "/ /api/ping" || len(m.Warmup.Statuses) != 2 || m.Warmup.Statuses[1] != 204 {
		t.Fatalf("warmup: %+v", m.Warmup)
	}
	if m.Resources.MemoryBytes != 128<<20 || m.Resources.CPUs != 0.5 || m.Release.Command != "/app migrate" || m.Source != "image labels" {
		t.Fatalf("resources/release: %+v %+v %q", m.Resources, m.Release, m.Source)
	}
}

func TestFromLabelsNone(t *testing.T) {
	if _, found, err := FromLabels(map[string]string{"maintainer": "x"}); found || err != nil {
		t.Fatalf("found %v err %v, want neither", found, err)
	}
}

func TestFromLabelsBad(t *testing.T) {
	for labels, want := range map[[2]string]string{
		{"dev.baton.health.paths", "/"}:      "image label dev.baton.health.paths: unknown",
		{"dev.baton.health.path", "health"}:  `labels: [health] path: "health" is not a URL path`,
		{"dev.baton.run.instances", "two"}:   "labels:",
		{"dev.baton.run.max_per_host", "-1"}: "labels: [run] max_per_host -1 is not between 0 (no cap) and 64",
		{"dev.baton.resources.memory", "1"}:  "[resources] memory \"1\" is not a size of at least 4MiB",
	} {
		_, _, err := FromLabels(map[string]string{labels[0]: labels[1]})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=%s: err %v, want it to contain %q", labels[0], labels[1], err, want)
		}
	}
}

func TestParseImageCommandOptional(t *testing.T) {
	m, err := ParseImage([]byte("[health]\npath = \"/up\"\n[resources]\nmemory = \"64MiB\"\ncpus = 1.5\n"))
	if err != nil || m.Run.Command != "" || m.Run.Instances != 1 || m.Resources.CPUs != 1.5 {
		t.Fatalf("ParseImage: %+v, %v", m, err)
	}
	if _, err := Parse([]byte("[health]\npath = \"/up\"\n")); err == nil {
		t.Fatal("Parse accepted a baton.toml without [run] command")
	}
	if _, err := ParseImage([]byte("[resources]\ncpus = 1000\n")); err == nil || !strings.Contains(err.Error(), "between 0.01 and 256") {
		t.Fatalf("cpus 1000: %v", err)
	}
}

// TestLabelKindsCoverTheSchema: every key whose value is not a string
// (by valueTypes' description) has its kind in labelKinds, and only those.
func TestLabelKindsCoverTheSchema(t *testing.T) {
	for key, desc := range valueTypes {
		if !strings.Contains(key, ".") {
			continue // a table
		}
		notString := strings.HasPrefix(desc, "a list") || strings.Contains(desc, "number")
		if _, has := labelKinds[key]; has != notString {
			t.Errorf("%s (%s): in labelKinds %v, want %v", key, desc, has, notString)
		}
	}
}
