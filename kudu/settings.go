package kudu

import (
	"context"

	"github.com/batonhq/baton"
)

// PolicySetting is the app setting (of the production slot) that gives
// Kudu deployments their conflict policy when the request names none:
// kudu_on_conflict=fail makes a busy app answer 409 as Kudu does.
const PolicySetting = "kudu_on_conflict"

// SettingsReader reads a slot's settings; baton.Store is one.
type SettingsReader interface {
	Settings(ctx context.Context, app, slot string) ([]baton.Setting, error)
}

// SettingsOf returns a Config.Settings that lists the production slot's
// settings, leaving out secrets entirely.
func SettingsOf(r SettingsReader) func(ctx context.Context, app string) (map[string]string, error) {
	return func(ctx context.Context, app string) (map[string]string, error) {
		ss, err := r.Settings(ctx, app, baton.ProductionSlot)
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, s := range ss {
			if !s.Secret {
				out[s.Key] = s.Value
			}
		}
		return out, nil
	}
}

// PolicyOf returns a Config.Policy that reads PolicySetting from the
// production slot's settings; unset means queue.
func PolicyOf(r SettingsReader) func(ctx context.Context, app string) (baton.Policy, error) {
	return func(ctx context.Context, app string) (baton.Policy, error) {
		ss, err := r.Settings(ctx, app, baton.ProductionSlot)
		if err != nil {
			return "", err
		}
		for _, s := range ss {
			if s.Key == PolicySetting {
				p, err := baton.ParsePolicy(s.Value)
				if err != nil {
					return "", baton.Errorf(baton.EINVALID, "app setting %s: %s", PolicySetting, baton.ErrorMessage(err))
				}
				return p, nil
			}
		}
		return baton.PolicyQueue, nil
	}
}
