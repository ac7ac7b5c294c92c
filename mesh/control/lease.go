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
