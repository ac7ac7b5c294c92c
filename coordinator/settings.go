package coordinator

import (
	"context"
	"time"
)

// secretSetting returns the random 32-byte secret stored (sealed) under
// name, creating it on first use. Every replica reads the same value back.
func (s *Server) secretSetting(ctx context.Context, name string) ([]byte, error) {
	return sharedSecret(ctx, s.store, s.box, name, random32)
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
