package control

import (
	"context"
	"net/http"

	"github.com/moatmesh/moat/mesh/wire"
)

// Lease asks the coordinator for tokens of a person's daily quota and
// returns unused ones (nodes only; see wire.LeaseRequest). It implements
// the guard's LeaseSource.
func (c *Client) Lease(ctx context.Context, req wire.LeaseRequest) (wire.LeaseResponse, error) {
	var out wire.LeaseResponse
	_, err := c.do(ctx, c.http, http.MethodPost, "/api/v1/node/lease", req, &out)
	return out, err
}

// Usage returns the signed-in person's own use and what remains of their
// limits and budgets (GET /api/v1/usage; a person's device only).
func (c *Client) Usage(ctx context.Context) (wire.Usage, error) {
	var out wire.Usage
	_, err := c.do(ctx, c.http, http.MethodGet, "/api/v1/usage", nil, &out)
	return out, err
}
