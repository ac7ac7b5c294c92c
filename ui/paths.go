package ui

import (
	"net/url"
	"time"
)

// Path is how a member last said it reaches one peer; the nodes and
// devices pages show it with Text (templates/_paths.html).
type Path struct {
	Peer      string    // the peer's hostname
	Path      string    // "direct", "relay" or "none"
	Endpoint  string    // the peer's UDP address, for "direct"
	Relay     string    // the relay's URL, for "relay"
	Handshake time.Time // the last WireGuard handshake; zero: none
	Reported  time.Time // when the member reported it
}

// Text says the path in a few words: "direct 203.0.113.5:41641",
// "relayed via moat.example.com" or "no contact".
func (p Path) Text() string {
	switch p.Path {
	case "direct":
		return "direct " + p.Endpoint
	case "relay":
		if u, err := url.Parse(p.Relay); err == nil && u.Host != "" {
			return "relayed via " + u.Host
		}
		return "relayed"
	}
	return "no contact"
}
