package kudu

import (
	"context"
	"strings"
	"testing"

	"github.com/batonhq/baton"
)

// settingsOf is a SettingsReader with fixed production settings.
type settingsOf []baton.Setting

func (s settingsOf) Settings(_ context.Context, app, slot string) ([]baton.Setting, error) {
	if slot != baton.ProductionSlot {
		return nil, nil
	}
	return s, nil
}

func TestSettingsOf(t *testing.T) {
	r := settingsOf{{Key: "GREETING", Value: "hi"}, {Key: "DB_PASSWORD", Value: "s3cret", Secret: true}}
	got, err := SettingsOf(r)(context.Background(), "hello")
	if err != nil || len(got) != 1 || got["GREETING"] != "hi" {
		t.Fatalf("SettingsOf = %v, %v; want GREETING only", got, err)
	}
}

// appWith is an AppReader with fixed app options.
type appWith baton.AppOptions

func (o appWith) App(_ context.Context, name string) (baton.App, error) {
	return baton.App{Name: name, Options: baton.AppOptions(o)}, nil
}

// TestPolicyOf: the Kudu policy comes from the app's option, not from a
// setting (which the app would see in its environment).
func TestPolicyOf(t *testing.T) {
	ctx := context.Background()
	if p, err := PolicyOf(appWith{})(ctx, "hello"); p != baton.PolicyQueue || err != nil {
		t.Fatalf("unset: %q %v", p, err)
	}
	if p, err := PolicyOf(appWith{KuduOnConflict: baton.PolicyFail, GitOnConflict: baton.PolicyCancel})(ctx, "hello"); p != baton.PolicyFail || err != nil {
		t.Fatalf("fail: %q %v", p, err)
	}
	_, err := PolicyOf(appWith{KuduOnConflict: "sometimes"})(ctx, "hello")
	if baton.ErrorCode(err) != baton.EINVALID || !strings.Contains(baton.ErrorMessage(err), "app option kudu_on_conflict") {
		t.Fatalf("invalid: %v", err)
	}
}
