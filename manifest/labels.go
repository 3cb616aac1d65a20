package manifest

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/batonhq/baton"
)

// LabelPrefix starts the image labels that stand in for baton.toml:
// dev.baton.health.path=/healthz is [health] path = "/healthz".
const LabelPrefix = "dev.baton."

// FromLabels reads the manifest of a container image from its labels
// (LabelPrefix + "table.key"), checked by the same rules as baton.toml.
// found is false when the image has none. A list is written as
// "a, b" or as TOML ("[\"a\", \"b\"]").
func FromLabels(labels map[string]string) (m baton.Manifest, found bool, err error) {
	tables := map[string][]string{}
	for k, v := range labels {
		key, ok := strings.CutPrefix(k, LabelPrefix)
		if !ok {
			continue
		}
		table, name, ok := strings.Cut(key, ".")
		if !ok || valueTypes[key] == "" {
			return m, true, baton.Errorf(baton.EUNPROCESSABLE, "image label %s: unknown; labels under %s name a baton.toml key such as %shealth.path", k, LabelPrefix, LabelPrefix)
		}
		tables[table] = append(tables[table], name+" = "+labelValue(key, v))
	}
	if len(tables) == 0 {
		return m, false, nil
	}
	names := make([]string, 0, len(tables))
	for t := range tables {
		names = append(names, t)
	}
	sort.Strings(names)
	var doc strings.Builder
	for _, t := range names {
		sort.Strings(tables[t])
		fmt.Fprintf(&doc, "[%s]\n%s\n", t, strings.Join(tables[t], "\n"))
	}
	m, err = ParseImage([]byte(doc.String()))
	if err != nil {
		return m, true, baton.Errorf(baton.EUNPROCESSABLE, "the image's %s* labels: %s", LabelPrefix, strings.TrimPrefix(baton.ErrorMessage(err), TOMLFile+": "))
	}
	m.Source = "image labels"
	return m, true, nil
}

// labelValue writes a label's text as the TOML value its key holds.
func labelValue(key, v string) string {
	v = strings.TrimSpace(v)
	switch kind := labelKinds[key]; kind {
	case "strings", "ints":
		if strings.HasPrefix(v, "[") {
			return v
		}
		var items []string
		for _, it := range strings.Split(v, ",") {
			if it = strings.TrimSpace(it); it == "" {
				continue
			}
			if kind == "ints" {
				items = append(items, it)
			} else {
				items = append(items, strconv.Quote(it))
			}
		}
		return "[" + strings.Join(items, ", ") + "]"
	case "number":
		return v
	}
	return strconv.Quote(v)
}

// labelKinds says which keys hold something other than a string (which
// every other key of valueTypes holds): lists of strings or of whole
// numbers, and numbers. TestLabelKindsCoverTheSchema keeps it in step
// with toml.go.
var labelKinds = map[string]string{
	"build.env":         "strings",
	"release.resources": "strings",
	"warmup.paths":      "strings",
	"warmup.statuses":   "ints",
	"run.instances":     "number",
	"run.max_per_host":  "number",
	"warmup.retries":    "number",
	"resources.cpus":    "number",
}
