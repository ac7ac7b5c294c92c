package coordinator

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/wire"
)

// Without a usable enrollment key, enrolling a live node's public key is
// refused as a bad key (401), and the answer names no device: the owner
// of a key is revealed only to holders of a usable key.
func TestEnrollChecksKeyBeforeRevealingOwner(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, tagsOnly)
	node, res := tc.enrollNode(t, tok, "llama")
	for _, bad := range []string{"moat_ek_unknown", ""} {
		_, err := tc.client(t, "").Enroll(context.Background(), wire.EnrollRequest{AuthKey: wire.Secret(bad), Key: node.priv.Public(), Hostname: "probe"})
		var ce *control.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized || ce.Code != "bad_enroll_key" {
			t.Fatalf("enroll of a live key with enrollment key %q: %v, want 401 bad_enroll_key", bad, err)
		}
		if strings.Contains(err.Error(), string(res.DeviceID)) {
			t.Fatalf("the refusal names the node: %v", err)
		}
	}
}
