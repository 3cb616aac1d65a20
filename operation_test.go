package baton_test

import (
	"strings"
	"testing"

	"github.com/batonhq/baton"
)

// TestEncodeParamsWireFormat pins the stored form of every kind's params:
// records written before the params were typed must still decode, and the
// API shows this text (Deployment.Params).
func TestEncodeParamsWireFormat(t *testing.T) {
	zero, fifty := 0, 50
	for _, tc := range []struct {
		kind baton.Kind
		p    baton.OpParams
		want string
	}{
		{baton.KindDeploy, nil, ""},
		{baton.KindDeploy, baton.DeployParams{}, ""},
		{baton.KindDeploy, baton.DeployParams{Weight: &zero}, `{"weight":0}`},
		{baton.KindDeploy, baton.DeployParams{Weight: &fifty}, `{"weight":50}`},
		{baton.KindStabilize, baton.RevisionParams{}, `{"revision":""}`},
		{baton.KindActivate, baton.RevisionParams{Revision: "hello--000002"}, `{"revision":"hello--000002"}`},
		{baton.KindTraffic, baton.TrafficParams{Weights: map[string]int{"b": 10, "a": 90}}, `{"weights":{"a":90,"b":10}}`},
		{baton.KindSwap, baton.SwapParams{Source: "staging", Target: "production"}, `{"source":"staging","target":"production","preview":false}`},
		{baton.KindSwap, baton.SwapParams{Source: "staging", Target: "production", Preview: true, PreviewTimeout: "1h0m0s"},
			`{"source":"staging","target":"production","preview":true,"preview_timeout":"1h0m0s"}`},
		{baton.KindConfig, baton.SettingsChange{Unset: []string{"A"}}, `{"unset":["A"]}`},
		{baton.KindConfig, baton.SettingsChange{Set: []baton.Setting{{Key: "A", Value: "<1>", Secret: true}}},
			`{"set":[{"app":"","slot":"","key":"A","value":"\u003c1\u003e","sticky":false,"secret":true}]}`},
	} {
		got, err := baton.EncodeParams(tc.kind, tc.p)
		if err != nil || got != tc.want {
			t.Errorf("EncodeParams(%s, %#v) = %s, %v; want %s", tc.kind, tc.p, got, err, tc.want)
		}
	}
}

func TestEncodeParamsRefusesWrongKind(t *testing.T) {
	if _, err := baton.EncodeParams(baton.KindTraffic, baton.RevisionParams{Revision: "x"}); baton.ErrorCode(err) != baton.EINTERNAL {
		t.Errorf("EncodeParams(traffic, RevisionParams) error = %v, want EINTERNAL", err)
	}
	if _, err := baton.DecodeParams[baton.SwapParams](baton.KindDeploy, ""); baton.ErrorCode(err) != baton.EINTERNAL {
		t.Errorf("DecodeParams[SwapParams](deploy) error = %v, want EINTERNAL", err)
	}
}

func TestDecodeParams(t *testing.T) {
	dp, err := baton.DecodeParams[baton.DeployParams](baton.KindDeploy, "")
	if err != nil || dp.Weight != nil || dp.RequestedWeight() != 0 {
		t.Errorf("deploy without params = %+v, %v; want no weight", dp, err)
	}
	dp, err = baton.DecodeParams[baton.DeployParams](baton.KindDeploy, `{"weight":30}`)
	if err != nil || dp.RequestedWeight() != 30 {
		t.Errorf("deploy with weight 30 = %+v, %v", dp, err)
	}
	tp, err := baton.DecodeParams[baton.TrafficParams](baton.KindTraffic, `{"weights":{"a":100}}`)
	if err != nil || tp.Weights["a"] != 100 {
		t.Errorf("traffic = %+v, %v", tp, err)
	}
	// A stored operation whose params cannot be read must not run with
	// zero values: every such case is an EINVALID error naming the kind.
	for _, tc := range []struct {
		kind   baton.Kind
		params string
		decode func(baton.Kind, string) error
	}{
		{baton.KindTraffic, "", func(k baton.Kind, s string) error {
			_, err := baton.DecodeParams[baton.TrafficParams](k, s)
			return err
		}},
		{baton.KindTraffic, `{"weights":{"a":"x"}}`, func(k baton.Kind, s string) error {
			_, err := baton.DecodeParams[baton.TrafficParams](k, s)
			return err
		}},
		{baton.KindStabilize, `{"revision":`, func(k baton.Kind, s string) error {
			_, err := baton.DecodeParams[baton.RevisionParams](k, s)
			return err
		}},
		{baton.KindRestart, "", func(k baton.Kind, s string) error {
			_, err := baton.DecodeParams[baton.RevisionParams](k, s)
			return err
		}},
		{baton.KindSwap, `[]`, func(k baton.Kind, s string) error { _, err := baton.DecodeParams[baton.SwapParams](k, s); return err }},
		{baton.KindConfig, `{"set":{}}`, func(k baton.Kind, s string) error {
			_, err := baton.DecodeParams[baton.SettingsChange](k, s)
			return err
		}},
		{baton.KindDeploy, `{"weight":"ten"}`, func(k baton.Kind, s string) error { _, err := baton.DecodeParams[baton.DeployParams](k, s); return err }},
	} {
		if err := tc.decode(tc.kind, tc.params); baton.ErrorCode(err) != baton.EINVALID {
			t.Errorf("decode %s params %q: error %v, want EINVALID", tc.kind, tc.params, err)
		}
	}
}

func TestSwapParamsCheck(t *testing.T) {
	sp := baton.SwapParams{Source: "staging", Preview: true}
	if err := sp.Check(); err != nil || sp.Target != baton.ProductionSlot || sp.PreviewTimeout != "1h0m0s" || sp.PreviewLimit() != baton.DefaultPreviewTimeout {
		t.Errorf("Check = %v, %+v; want target production and the default preview timeout written out", err, sp)
	}
	sp = baton.SwapParams{Source: "staging", Preview: true, PreviewTimeout: "90m"}
	if err := sp.Check(); err != nil || sp.PreviewTimeout != "1h30m0s" {
		t.Errorf("Check(90m) = %v, %+v", err, sp)
	}
	for _, bad := range []baton.SwapParams{
		{Source: "production"},
		{Source: "staging", PreviewTimeout: "1h"},
		{Source: "staging", Preview: true, PreviewTimeout: "soon"},
		{Source: "staging", Preview: true, PreviewTimeout: "-1m"},
	} {
		if err := bad.Check(); baton.ErrorCode(err) != baton.EINVALID {
			t.Errorf("Check(%+v) = %v, want EINVALID", bad, err)
		}
	}
}

func TestNamedRevisions(t *testing.T) {
	enc := func(k baton.Kind, p baton.OpParams) string {
		s, err := baton.EncodeParams(k, p)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, c := range []struct {
		kind   baton.Kind
		params string
		want   string
	}{
		{baton.KindRestart, enc(baton.KindRestart, baton.RevisionParams{Revision: "hello--000003"}), "hello--000003"},
		{baton.KindRollback, enc(baton.KindRollback, baton.RollbackParams{To: "hello--000002"}), "hello--000002"},
		{baton.KindTraffic, enc(baton.KindTraffic, baton.TrafficParams{Weights: map[string]int{"hello--000004": 100}}), "hello--000004"},
		{baton.KindDeploy, enc(baton.KindDeploy, baton.DeployParams{Image: "registry/hello--000009:v1"}), ""},
		{baton.KindRollback, "not json", ""},
	} {
		if got := strings.Join(baton.NamedRevisions(c.kind, c.params), ","); got != c.want {
			t.Errorf("%s %s: %q, want %q", c.kind, c.params, got, c.want)
		}
	}
}
