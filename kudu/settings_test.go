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

func TestPolicyOf(t *testing.T) {
	ctx := context.Background()
	if p, err := PolicyOf(settingsOf{})(ctx, "hello"); p != baton.PolicyQueue || err != nil {
		t.Fatalf("unset: %q %v", p, err)
	}
	if p, err := PolicyOf(settingsOf{{Key: PolicySetting, Value: "fail"}})(ctx, "hello"); p != baton.PolicyFail || err != nil {
		t.Fatalf("fail: %q %v", p, err)
	}
	_, err := PolicyOf(settingsOf{{Key: PolicySetting, Value: "sometimes"}})(ctx, "hello")
	if baton.ErrorCode(err) != baton.EINVALID || !strings.Contains(baton.ErrorMessage(err), "app setting kudu_on_conflict") {
		t.Fatalf("invalid: %v", err)
	}
}
