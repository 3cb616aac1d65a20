package kudu

import (
	"context"

	"github.com/batonhq/baton"
)

// PolicyOption names the app option (baton.AppOptions.KuduOnConflict)
// that gives Kudu deployments their conflict policy when the request names
// none: `baton apps set APP --kudu-on-conflict fail` makes a busy app
// answer 409 as Kudu does. It is not a setting: the app never sees it.
const PolicyOption = "kudu_on_conflict"

// AppReader reads an app; baton.Store is one.
type AppReader interface {
	App(ctx context.Context, name string) (baton.App, error)
}

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

// PolicyOf returns a Config.Policy that reads the app's option
// kudu_on_conflict; unset means queue.
func PolicyOf(r AppReader) func(ctx context.Context, app string) (baton.Policy, error) {
	return func(ctx context.Context, app string) (baton.Policy, error) {
		a, err := r.App(ctx, app)
		if err != nil {
			return "", err
		}
		p, err := baton.ParsePolicy(string(a.Options.KuduOnConflict))
		if err != nil {
			return "", baton.Errorf(baton.EINVALID, "app option %s: %s", PolicyOption, baton.ErrorMessage(err))
		}
		return p, nil
	}
}
