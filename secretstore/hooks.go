package secretstore

import (
	"context"

	"github.com/batonhq/baton"
)

// hookAAD binds a sealed hook secret to its hook, as additional binds a
// setting's to its app and key.
func hookAAD(id string) (app, key string) { return "hook", id }

// CreateHook seals the hook's signing secret before storing it.
func (s *Store) CreateHook(ctx context.Context, h baton.Hook) (baton.Hook, error) {
	plain := h.Secret
	if plain != "" {
		app, key := hookAAD(h.ID)
		h.Secret = s.seal(app, key, plain)
	}
	h, err := s.Store.CreateHook(ctx, h)
	h.Secret = plain
	return h, err
}

// Hook returns a hook with its secret opened.
func (s *Store) Hook(ctx context.Context, id string) (baton.Hook, error) {
	h, err := s.Store.Hook(ctx, id)
	if err != nil {
		return h, err
	}
	return h, s.openHook(&h)
}

// Hooks returns the hooks with their secrets opened.
func (s *Store) Hooks(ctx context.Context) ([]baton.Hook, error) {
	hs, err := s.Store.Hooks(ctx)
	if err != nil {
		return nil, err
	}
	for i := range hs {
		if err := s.openHook(&hs[i]); err != nil {
			return nil, err
		}
	}
	return hs, nil
}

func (s *Store) openHook(h *baton.Hook) error {
	app, key := hookAAD(h.ID)
	v, err := s.open(app, key, h.Secret)
	if err != nil {
		return baton.Errorf(baton.ECONFLICT, "the secret of webhook %s cannot be decrypted with this server's secret key: "+
			"the key file was replaced, or another controller sharing the store has a different one; remove the hook and add it again", h.ID)
	}
	h.Secret = v
	return nil
}
