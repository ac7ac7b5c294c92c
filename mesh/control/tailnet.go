package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
)

// TailnetStream holds one tailnet stream open (POST /api/v1/tailnet, see
// wire.TailnetMap) and calls fn with every map. It returns when the
// stream ends or stays silent too long, fn fails, or ctx is done; a
// coordinator that does not map tailnet callers answers an Error with
// Code wire.CodeTailnetOff.
func (c *Client) TailnetStream(ctx context.Context, req wire.TailnetRequest, fn func(*wire.TailnetMap) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := time.AfterFunc(streamIdle, cancel)
	defer idle.Stop()
	req.Version = wire.Version
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.String()+"/api/v1/tailnet", bytes.NewReader(body))
	if err != nil {
		return err
	}
	setMemberHeaders(hreq.Header)
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Authorization", "Bearer "+string(c.Credential()))
	resp, err := c.long.Do(hreq)
	if err != nil {
		return fmt.Errorf("coordinator unreachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readError(resp)
	}
	r := wire.NewStreamReader(&idleReader{resp.Body, idle})
	for {
		m, err := r.NextTailnet()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errStreamEnded
			}
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
	}
}
