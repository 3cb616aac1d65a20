package manifest

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want func(*baton.Manifest)
	}{
		{"minimal", `[run]
command = "./server"`, func(m *baton.Manifest) {}},
		{"everything", `
# comment
[run]
command = "node server.js"
instances = 3
max_per_host = 1

[build]
command = "npm ci && npm run build"
timeout = "15m"
env = ["NEXT_PUBLIC_API_URL", "SENTRY_RELEASE"]

[release]
command = "./migrate up"
resources = ["postgres:main", "redis:cache"]
timeout = "5m"
resource_wait = "2m30s"

[health]
path = "/healthz?full=1"
interval = "250ms"
timeout = "1s"
start_timeout = "2m"

[warmup]
paths = ["/", "/api/ping"]
statuses = [200, 204]
timeout = "30s"
retries = 2
`, func(m *baton.Manifest) {
			m.Run = baton.RunSpec{Command: "node server.js", Instances: 3, MaxPerHost: 1}
			m.Build = baton.BuildSpec{Command: "npm ci && npm run build", Timeout: 15 * time.Minute, Env: []string{"NEXT_PUBLIC_API_URL", "SENTRY_RELEASE"}}
			m.Release = baton.ReleaseSpec{Command: "./migrate up", Resources: []string{"postgres:main", "redis:cache"}, Timeout: 5 * time.Minute, ResourceWait: 150 * time.Second}
			m.Health = baton.HealthSpec{Path: "/healthz?full=1", Interval: 250 * time.Millisecond, Timeout: time.Second, StartTimeout: 2 * time.Minute}
			m.Warmup = baton.WarmupSpec{Paths: []string{"/", "/api/ping"}, Statuses: []int{200, 204}, Timeout: 30 * time.Second, Retries: 2}
		}},
		{"dotted keys and inline table", `run = { command = "./app", instances = 64 }
health.path = "/up"`, func(m *baton.Manifest) {
			m.Run = baton.RunSpec{Command: "./app", Instances: 64}
			m.Health.Path = "/up"
		}},
		{"multi-line command", "[run]\ncommand = '''\nexec ./server \\\n  --port $PORT\n'''", func(m *baton.Manifest) {
			m.Run.Command = "exec ./server \\\n  --port $PORT\n"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			want := baton.Manifest{Source: "baton.toml", Run: baton.RunSpec{Command: "./server"}}
			tt.want(&want)
			want = want.WithDefaults()
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Parse =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	const run = "[run]\ncommand = \"./app\"\n"
	tests := []struct {
		name string
		doc  string
		want string // the whole message
	}{
		{"empty", "", `baton.toml: [run] command is missing; it is the command that starts the app, with PORT in its environment`},
		{"blank command", "[run]\ncommand = \"  \"", `baton.toml: [run] command is missing; it is the command that starts the app, with PORT in its environment`},
		{"NUL in command", "[run]\ncommand = \"a\\u0000b\"", `baton.toml: [run] command contains a NUL character`},
		{"syntax", "[run\ncommand = 1", `baton.toml line 1: expected ']' to close table name`},
		{"unknown key", run + "comand = \"x\"", `baton.toml line 3: unknown key [run] comand; [run] has command, instances, max_per_host`},
		{"unknown table", run + "[env]\nA = \"b\"", `baton.toml line 3: unknown table [env]; baton.toml has [run], [build], [release], [health], [warmup] and [resources]`},
		{"unknown top-level key", run + "[health]\npath = \"/\"\n[x]", `baton.toml line 5: unknown table [x]; baton.toml has [run], [build], [release], [health], [warmup] and [resources]`},
		{"two unknown keys", run + "a = 1\nb = 2", `baton.toml line 3: unknown key [run] a; [run] has command, instances, max_per_host; baton.toml line 4: unknown key [run] b; [run] has command, instances, max_per_host`},
		{"instances zero", run + "instances = 0", `baton.toml: [run] instances 0 is not between 1 and 64`},
		{"instances too many", run + "instances = 65", `baton.toml: [run] instances 65 is not between 1 and 64`},
		{"instances string", run + "instances = \"2\"", `baton.toml line 3: [run] instances must be a whole number`},
		{"instances float", run + "instances = 1.5", `baton.toml line 3: [run] instances must be a whole number`},
		{"max_per_host negative", run + "max_per_host = -1", `baton.toml: [run] max_per_host -1 is not between 0 (no cap) and 64; it caps the instances of a revision on one host`},
		{"max_per_host too many", run + "max_per_host = 65", `baton.toml: [run] max_per_host 65 is not between 0 (no cap) and 64; it caps the instances of a revision on one host`},
		{"max_per_host string", run + "max_per_host = \"1\"", `baton.toml line 3: [run] max_per_host must be a whole number`},
		{"run not a table", "run = \"./app\"", `baton.toml line 1: [run] must be a table`},
		{"duration not a duration", run + "[health]\ninterval = \"abc\"", `baton.toml: [health] interval "abc" is not a duration like "2s" or "1m30s"`},
		{"duration as number", run + "[health]\ninterval = 30", `baton.toml line 4: [health] interval must be a duration string like "30s"`},
		{"duration without unit", run + "[build]\ntimeout = \"30\"", `baton.toml: [build] timeout "30" is not a duration like "2s" or "1m30s"`},
		{"zero duration", run + "[release]\ntimeout = \"0s\"", `baton.toml: [release] timeout "0s" must be more than zero`},
		{"negative duration", run + "[health]\nstart_timeout = \"-5s\"", `baton.toml: [health] start_timeout "-5s" must be more than zero`},
		{"tiny interval", run + "[health]\ninterval = \"1ns\"", `baton.toml: [health] interval "1ns" is shorter than 10ms`},
		{"build env not a name", run + "[build]\ncommand = \"make\"\nenv = [\"A-B\"]", `baton.toml: [build] env: setting name "A-B" is not an environment variable name: use letters, digits and '_', not starting with a digit`},
		{"build env reserved", run + "[build]\ncommand = \"make\"\nenv = [\"PORT\"]", `baton.toml: [build] env: setting PORT is set by baton itself and cannot be changed`},
		{"build env twice", run + "[build]\ncommand = \"make\"\nenv = [\"A\", \"A\"]", `baton.toml: [build] env names A twice`},
		{"build env without command", run + "[build]\nenv = [\"A\"]", `baton.toml: [build] env names settings for a build, but [build] command is missing`},
		{"build env not a list", run + "[build]\ncommand = \"make\"\nenv = \"A\"", `baton.toml line 5: [build] env must be a list of setting names like ["NEXT_PUBLIC_API_URL"]`},
		{"huge timeout", run + "[build]\ntimeout = \"48h\"", `baton.toml: [build] timeout "48h" is longer than 24h0m0s`},
		{"resource wait", run + "[release]\nresource_wait = \"x\"", `baton.toml: [release] resource_wait "x" is not a duration like "2s" or "1m30s"`},
		{"health path without slash", run + "[health]\npath = \"healthz\"", `baton.toml: [health] path: "healthz" is not a URL path; write it like "/healthz"`},
		{"health path with space", run + "[health]\npath = \"/a b\"", `baton.toml: [health] path: "/a b" is not a URL path; write it like "/healthz"`},
		{"empty health path", run + "[health]\npath = \"\"", `baton.toml: [health] path: "" is not a URL path; write it like "/healthz"`},
		{"warmup path", run + "[warmup]\npaths = [\"/\", \"http://x/\"]", `baton.toml: [warmup] paths: "http://x/" is not a URL path; write it like "/healthz"`},
		{"status too low", run + "[warmup]\nstatuses = [99]", `baton.toml: [warmup] statuses: 99 is not an HTTP status (100 to 599)`},
		{"status too high", run + "[warmup]\nstatuses = [200, 600]", `baton.toml: [warmup] statuses: 600 is not an HTTP status (100 to 599)`},
		{"statuses strings", run + "[warmup]\nstatuses = [\"200\"]", `baton.toml line 4: [warmup] statuses must be a list of whole numbers like [200, 204]`},
		{"retries zero", run + "[warmup]\nretries = 0", `baton.toml: [warmup] retries 0 is not between 1 and 100`},
		{"empty resource", run + "[release]\nresources = [\"\"]", `baton.toml: [release] resources: "" is not a resource name; use a name without spaces, like "postgres:main"`},
		{"resource with space", run + "[release]\nresources = [\"postgres main\"]", `baton.toml: [release] resources: "postgres main" is not a resource name; use a name without spaces, like "postgres:main"`},
		{"resources not a list", run + "[release]\nresources = \"pg\"", `baton.toml line 4: [release] resources must be a list of strings like ["postgres:main"]`},
		{"duplicate table", run + "[run]", `baton.toml line 3: table run already exists`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if baton.ErrorCode(err) != baton.EUNPROCESSABLE {
				t.Fatalf("Parse = %v, want an %s error", err, baton.EUNPROCESSABLE)
			}
			if got := baton.ErrorMessage(err); got != tt.want {
				t.Fatalf("message =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("[run]\ncommand = \"./app\"\ninstances = 2\n[health]\npath = \"/\"\ninterval = \"1s\"\n"))
	f.Add([]byte("[release]\nresources = [\"a\"]\n[warmup]\nstatuses = [200]\nretries = 3\n"))
	f.Add([]byte("run = { command = 'x' }\nx.y.z = 1\n"))
	f.Add([]byte("[run\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if baton.ErrorCode(err) != baton.EUNPROCESSABLE {
				t.Fatalf("Parse = %v, want nil or %s", err, baton.EUNPROCESSABLE)
			}
			if strings.Contains(baton.ErrorMessage(err), "manifest.") {
				t.Errorf("message leaks Go type names: %s", baton.ErrorMessage(err))
			}
			return
		}
		if strings.TrimSpace(m.Run.Command) == "" || m.Run.Instances < 1 || m.Run.Instances > MaxInstances ||
			!strings.HasPrefix(m.Health.Path, "/") || m.Health.Interval <= 0 || m.Warmup.Retries < 1 {
			t.Fatalf("Parse accepted an invalid manifest: %+v", m)
		}
	})
}
