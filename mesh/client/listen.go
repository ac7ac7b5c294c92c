package client

import (
	"errors"
	"fmt"
	"net"
)

// ErrNotLoopback refuses a local endpoint beyond loopback: anyone who
// reaches it would use the models as this device's person.
var ErrNotLoopback = errors.New("not a loopback address: anyone who reaches it would use your models as you")

// CheckListen checks a local endpoint address (HOST:PORT): its host must
// be loopback unless anyHost.
func CheckListen(addr string, anyHost bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("local endpoint %q: want HOST:PORT", addr)
	}
	if !anyHost && !isLoopbackHost(host) {
		return fmt.Errorf("local endpoint %s: %w", addr, ErrNotLoopback)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
