package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"syscall"

	"github.com/moatmesh/moat/mesh/control"
)

// plainError says in a few words what went wrong talking to the
// coordinator, instead of the whole chain of wrapped errors ("coordinator
// unreachable: Get "https://…/api/v1/netmap?seq=0": dial tcp …: connect:
// connection refused").
func plainError(err error) string {
	var (
		dns     *net.DNSError
		ce      *control.Error
		unknown x509.UnknownAuthorityError
		verify  *tls.CertificateVerificationError
		host    x509.HostnameError
		op      *net.OpError
	)
	switch {
	case errors.As(err, &ce):
		return ce.Message
	case errors.As(err, &dns):
		return "the name " + dns.Name + " does not resolve"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: nothing is listening there"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "no route to it from this network"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "timed out"
	case errors.As(err, &host):
		return "its TLS certificate is for another name: " + host.Error()
	case errors.As(err, &unknown), errors.As(err, &verify):
		return "its TLS certificate is not trusted here; for a self-signed coordinator pass --coordinator-fingerprint to `moat login`"
	case errors.As(err, &op) && op.Err != nil:
		return op.Err.Error()
	}
	// Keep the innermost message: it is the one that says what happened.
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "coordinator unreachable: ") {
		msg = msg[i+2:]
	}
	return msg
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
