package control

import (
	"sync/atomic"

	"github.com/moatmesh/moat/mesh/wire"
)

// credential is a Client's device credential, which a node replaces
// while its requests are in flight (a rotation).
type credential struct{ v atomic.Pointer[wire.Secret] }

func newCredential(s wire.Secret) *credential {
	c := new(credential)
	c.v.Store(&s)
	return c
}

// Credential is the credential c sends now.
func (c *Client) Credential() wire.Secret { return *c.cred.v.Load() }

// SetCredential makes c send cred from now on. Requests already sent
// keep the one they were sent with (a netmap stream included: it is
// opened with the new one when it reconnects).
func (c *Client) SetCredential(cred wire.Secret) { c.cred.v.Store(&cred) }
