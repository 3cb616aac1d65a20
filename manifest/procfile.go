package manifest

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/batonhq/baton"
)

// procLine is Heroku's Procfile line format: "name: command".
var procLine = regexp.MustCompile(`^([A-Za-z0-9_-]+):\s*(.*)$`)

// ParseProcfile reads a Procfile: its web: line's command becomes
// run.command and everything else takes its default. Other process types
// are allowed and ignored. The result has Source "Procfile".
func ParseProcfile(data []byte) (baton.Manifest, error) {
	m, hasWeb, err := parseProcfile(data)
	if err != nil {
		return baton.Manifest{}, err
	}
	if !hasWeb {
		return baton.Manifest{}, procErr("there is no web: line; add one with the command that starts the app, e.g. \"web: ./server\"")
	}
	return m, nil
}

func parseProcfile(data []byte) (m baton.Manifest, hasWeb bool, err error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		match := procLine.FindStringSubmatch(line)
		if match == nil {
			return baton.Manifest{}, false, procErr("line %d is not \"name: command\"", i+1)
		}
		if match[1] != "web" {
			continue
		}
		if hasWeb {
			return baton.Manifest{}, false, procErr("line %d is a second web: line; keep one", i+1)
		}
		if match[2] == "" {
			return baton.Manifest{}, false, procErr("line %d: the web: line has no command", i+1)
		}
		hasWeb = true
		m.Run.Command = match[2]
	}
	if !hasWeb {
		return baton.Manifest{}, false, nil
	}
	m.Source = ProcfileFile
	return m.WithDefaults(), true, nil
}

func procErr(format string, args ...any) error {
	return baton.Errorf(baton.EUNPROCESSABLE, ProcfileFile+": "+format, args...)
}
