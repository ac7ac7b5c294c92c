package engine

import "net/netip"

// RenewSession retires the WireGuard session with the peer holding addr
// and starts a new handshake, as Dial does for a connection attempt that
// goes unanswered. A program that keeps connections open (the client's
// router) calls it when a request on one goes unanswered: a peer that
// restarted has forgotten the session, and WireGuard alone would notice
// only after 15 s. A healthy peer loses nothing but one handshake.
func (e *Engine) RenewSession(addr netip.Addr) { e.rehandshake(addr.Unmap()) }
