package client

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/moatmesh/moat/mesh/control"
)

func TestPlainError(t *testing.T) {
	wrap := func(err error) error {
		return fmt.Errorf("coordinator unreachable: %w", &url.Error{Op: "Get", URL: "https://moat.example.com/api/v1/netmap?seq=0", Err: err})
	}
	dial := func(errno error) error {
		return wrap(&net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: errno}})
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{dial(syscall.ECONNREFUSED), "connection refused: nothing is listening there"},
		{dial(syscall.EHOSTUNREACH), "no route to it from this network"},
		{wrap(&net.DNSError{Err: "no such host", Name: "moat.example.com", IsNotFound: true}), "the name moat.example.com does not resolve"},
		{wrap(context.DeadlineExceeded), "timed out"},
		{wrap(x509.UnknownAuthorityError{}), "its TLS certificate is not trusted here; for a self-signed coordinator pass --coordinator-fingerprint to `moat login`"},
		{&control.Error{Status: 503, Message: "store not reachable"}, "store not reachable"},
		{wrap(errors.New("coordinator certificate fingerprint 00 does not match the pinned one")), "coordinator certificate fingerprint 00 does not match the pinned one"},
		{errors.New("coordinator closed the netmap stream"), "coordinator closed the netmap stream"},
	} {
		if got := plainError(tc.err); got != tc.want {
			t.Errorf("plainError(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
