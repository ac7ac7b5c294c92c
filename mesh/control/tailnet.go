package control

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/moatmesh/moat/mesh/wire"
)

// TailnetStream holds one tailnet stream open (POST /api/v1/tailnet, see
// wire.TailnetMap) and calls fn with every map. It returns when the
// stream ends or stays silent too long, fn fails, or ctx is done; a
// coordinator that does not map tailnet callers answers an Error with
// Code wire.CodeTailnetOff.
func (c *Client) TailnetStream(ctx context.Context, req wire.TailnetRequest, fn func(*wire.TailnetMap) error) error {
	req.Version = wire.Version
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hreq, err := http.NewRequest(http.MethodPost, c.base.String()+"/api/v1/tailnet", bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/json")
	return follow(ctx, c, hreq, (*wire.StreamReader).NextTailnet, fn)
}
