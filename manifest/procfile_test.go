package manifest

import (
	"testing"

	"github.com/batonhq/baton"
)

func TestParseProcfile(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string // run.command, or the error message if err is set
		err  bool
	}{
		{"web only", "web: ./server --port $PORT\n", "./server --port $PORT", false},
		{"among others", "# processes\nworker: ./work\n\nweb:bundle exec puma -p $PORT\r\nrelease: ./migrate\n", "bundle exec puma -p $PORT", false},
		{"byte order mark", "\xef\xbb\xbfweb: ./app", "./app", false},
		{"no web line", "worker: ./work\n", "Procfile: there is no web: line; add one with the command that starts the app, e.g. \"web: ./server\"", true},
		{"empty", "", "Procfile: there is no web: line; add one with the command that starts the app, e.g. \"web: ./server\"", true},
		{"two web lines", "web: a\nweb: b\n", "Procfile: line 2 is a second web: line; keep one", true},
		{"empty command", "web:   \n", "Procfile: line 1: the web: line has no command", true},
		{"not a process line", "web: a\nthis is not a procfile\n", "Procfile: line 2 is not \"name: command\"", true},
		{"space before colon", "web : a\n", "Procfile: line 1 is not \"name: command\"", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseProcfile([]byte(tt.doc))
			if tt.err {
				if baton.ErrorCode(err) != baton.EUNPROCESSABLE || baton.ErrorMessage(err) != tt.want {
					t.Fatalf("ParseProcfile = %v, want %s %q", err, baton.EUNPROCESSABLE, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := baton.Manifest{Source: "Procfile", Run: baton.RunSpec{Command: tt.want}}.WithDefaults()
			if m.Source != want.Source || m.Run != want.Run || m.Health.Path != want.Health.Path {
				t.Fatalf("ParseProcfile = %+v, want %+v", m, want)
			}
		})
	}
}

func FuzzParseProcfile(f *testing.F) {
	f.Add([]byte("web: ./app\nworker: x\n"))
	f.Add([]byte("web:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseProcfile(data)
		if err != nil {
			if baton.ErrorCode(err) != baton.EUNPROCESSABLE {
				t.Fatalf("ParseProcfile = %v, want nil or %s", err, baton.EUNPROCESSABLE)
			}
			return
		}
		if m.Run.Command == "" || m.Source != "Procfile" {
			t.Fatalf("ParseProcfile accepted %q as %+v", data, m)
		}
	})
}
