package main

import (
	"context"
	"fmt"
	"io"

	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/control"
)

// doLogout revokes the credential at the coordinator, then deletes it.
// When the coordinator cannot be reached the credential is kept, since it
// would still work for anyone who copied it.
func doLogout(ctx context.Context, dir client.Dir, w io.Writer) error {
	l, err := dir.LoadLogin()
	if err != nil {
		return err
	}
	c, err := control.New(control.Config{URL: l.Coordinator, Fingerprint: l.Fingerprint, Credential: l.Credential})
	if err != nil {
		return err
	}
	if err := c.Logout(ctx); err != nil && !control.IsAuth(err) {
		return fmt.Errorf("revoke at the coordinator: %w; the credential is kept, try again when the coordinator is reachable", err)
	}
	if err := dir.RemoveLogin(); err != nil {
		return err
	}
	fmt.Fprintf(w, "Signed out: the coordinator revoked this device's credential and it is deleted here.\n")
	return nil
}
