package coordinator

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

// secretSetting returns the random 32-byte secret stored (sealed) under
// name, creating it on first use. Every replica reads the same value back.
func (s *Server) secretSetting(ctx context.Context, name string) ([]byte, error) {
	ad := []byte("setting:" + name)
	sealed, err := s.store.Setting(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		v := make([]byte, 32)
		rand.Read(v)
		if err := s.store.SetSetting(ctx, name, s.box.Seal(v, ad)); err != nil {
			return nil, fmt.Errorf("store %s: %w", name, err)
		}
		sealed, err = s.store.Setting(ctx, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	v, err := s.box.Open(sealed, ad)
	if err != nil {
		return nil, fmt.Errorf("unseal %s (was the data dir's seal.key replaced?): %w", name, err)
	}
	return v, nil
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
