package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/batonhq/baton"
)

// FuzzTrafficBody feeds PUT …/traffic bodies through what setTraffic does
// before it queues anything (decode, then baton.ValidateWeights):
// no panic; a refusal is an EINVALID or ETOOLARGE problem document; an
// accepted body has whole percents from 0 to 100 that sum to 100.
func FuzzTrafficBody(f *testing.F) {
	for _, s := range []string{
		`{"weights":{"hello--000001":100}}`,
		`{"weights":{"hello--000001":50,"hello--000002":50}}`,
		`{"weights":{"a":101,"b":-1}}`,
		`{"weights":{"a":1e2}}`,
		`{"weights":{"a":50.5,"b":49.5}}`,
		`{"weights":{"a":9223372036854775807,"b":-9223372036854775707}}`,
		`{"weights":{"a":100,"a":0}}`,
		`{"weights":{}}`,
		`{"weights":null}`,
		`{"weights":{"a":"100"}}`,
		`{"weights":{"a":100},"extra":1}`,
		`{"weights":{"a":100}} trailing`,
		`[]`, `null`, ``, `{`, `{"weights":{"` + strings.Repeat("a", 1<<20) + `":100}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := httptest.NewRequest("PUT", "/api/v1/apps/hello/slots/production/traffic", strings.NewReader(string(data)))
		var body baton.TrafficParams
		err := decode(r, &body)
		if err == nil {
			err = baton.ValidateWeights(body.Weights)
		}
		if err == nil {
			sum := 0
			for rev, n := range body.Weights {
				if n < 0 || n > 100 {
					t.Fatalf("accepted weight %d for %q", n, rev)
				}
				sum += n
			}
			if sum != 100 {
				t.Fatalf("accepted weights summing to %d: %s", sum, data)
			}
			return
		}
		code := baton.ErrorCode(err)
		if code != baton.EINVALID && code != baton.ETOOLARGE {
			t.Fatalf("refusal %v has code %s, want invalid or too_large", err, code)
		}
		w := httptest.NewRecorder()
		writeError(w, r, slog.New(slog.NewTextHandler(io.Discard, nil)), err)
		var p Problem
		if w.Header().Get("Content-Type") != "application/problem+json" || json.Unmarshal(w.Body.Bytes(), &p) != nil ||
			p.Status != w.Code || (w.Code != http.StatusBadRequest && w.Code != http.StatusRequestEntityTooLarge) || p.Detail == "" {
			t.Fatalf("refusal is not a problem document: %d %s %s", w.Code, w.Header(), w.Body)
		}
	})
}
