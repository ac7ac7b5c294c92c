package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/moatmesh/moat/mesh/wire"
)

// StartLogin begins a device login; show the person AuthURL, then call
// WaitLogin with Poll.
func (c *Client) StartLogin(ctx context.Context, req wire.LoginRequest) (*wire.LoginStart, error) {
	req.Version = wire.Version
	if err := req.Validate(); err != nil {
		return nil, err
	}
	var out wire.LoginStart
	_, err := c.do(ctx, c.http, http.MethodPost, "/api/v1/login", req, &out)
	return &out, err
}

// WaitLogin polls until the person finished signing in (or ctx ends), and
// returns the device's credential and addresses.
func (c *Client) WaitLogin(ctx context.Context, poll wire.Secret) (*wire.LoginResult, error) {
	for {
		var out wire.LoginResult
		status, err := c.do(ctx, c.long, http.MethodPost, "/api/v1/login/poll", map[string]string{"poll": string(poll)}, &out)
		if err != nil {
			return nil, err
		}
		if status == http.StatusOK {
			return &out, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// Enroll joins a node with an enrollment key.
func (c *Client) Enroll(ctx context.Context, req wire.EnrollRequest) (*wire.EnrollResult, error) {
	req.Version = wire.Version
	if err := req.Validate(); err != nil {
		return nil, err
	}
	var out wire.EnrollResult
	_, err := c.do(ctx, c.http, http.MethodPost, "/api/v1/enroll", req, &out)
	return &out, err
}

// Advertise tells the coordinator what a node serves and where it is.
func (c *Client) Advertise(ctx context.Context, endpoints []netip.AddrPort, models []wire.ModelAd, status any) error {
	body := map[string]any{"endpoints": endpoints, "models": models}
	if status != nil {
		body["status"] = status
	}
	_, err := c.do(ctx, c.http, http.MethodPost, "/api/v1/node", body, nil)
	return err
}

// ReportEndpoints tells the coordinator where a device's WireGuard
// socket may be reached (POST /api/v1/endpoints), for its peers'
// netmaps.
func (c *Client) ReportEndpoints(ctx context.Context, endpoints []netip.AddrPort) error {
	_, err := c.do(ctx, c.http, http.MethodPost, "/api/v1/endpoints", map[string]any{"endpoints": endpoints}, nil)
	return err
}

// ReportPaths tells the coordinator how this member reaches its peers
// (POST /api/v1/paths). A coordinator from before the call answers 404:
// the error then matches ErrUnsupported.
func (c *Client) ReportPaths(ctx context.Context, r wire.PathReport) error {
	code, err := c.do(ctx, c.http, http.MethodPost, "/api/v1/paths", r, nil)
	if code == http.StatusNotFound {
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return err
}

// ErrUnsupported marks a call the coordinator does not know (it is older
// than this member).
var ErrUnsupported = errors.New("the coordinator does not support this call")

// Logout revokes this device's credential at the coordinator.
func (c *Client) Logout(ctx context.Context) error {
	_, err := c.do(ctx, c.http, http.MethodPost, "/api/v1/logout", struct{}{}, nil)
	return err
}

// WithCredential returns a copy of c that authenticates with cred.
func (c *Client) WithCredential(cred wire.Secret) *Client {
	cc := *c
	cc.cred = newCredential(cred)
	return &cc
}

// RenewNodeCredential asks for the node's next credential (POST
// /api/v1/node/credential). The caller saves it, then SetCredential.
func (c *Client) RenewNodeCredential(ctx context.Context) (*wire.NodeCredential, error) {
	var res wire.NodeCredential
	if _, err := c.do(ctx, c.http, http.MethodPost, "/api/v1/node/credential", struct{}{}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
