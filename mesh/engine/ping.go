package engine

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"

	"go4.org/mem"
	tskey "tailscale.com/types/key"

	"github.com/moatmesh/moat/mesh/key"
)

// Path pings are how two members find and keep a direct UDP path: a ping
// sent to each of a peer's candidate addresses, answered by a pong from
// the peer, proves that the address reaches the peer and that the peer's
// answers reach back. They travel on the WireGuard socket beside
// WireGuard's own messages (whose first four bytes are 1–4, 0, 0, 0), so
// they cross the same NATs and firewalls, and open the same NAT mappings
// (hole punching).
//
// A ping or pong is
//
//	pingMagic | kind (1 byte) | sender's public key (32) | box
//
// where box is the transaction id sealed to the receiver with NaCl box
// (Curve25519, XSalsa20-Poly1305) between the two members' WireGuard
// keys, as Tailscale's DERP sealing uses its node key: only the peer
// named in the netmap can make one. A forged pong could at most send a
// peer's packets to the wrong address for a few seconds; WireGuard still
// authenticates every packet.

var pingMagic = []byte("moat\xd1\x5c")

const (
	kindPing   byte = 1
	kindPong   byte = 2
	txLen           = 12
	pingHeader      = 6 + 1 + key.Len
)

type txID [txLen]byte

func newTxID() txID {
	var t txID
	rand.Read(t[:])
	return t
}

// isPing reports whether b is a path ping or pong.
func isPing(b []byte) bool { return len(b) > pingHeader && bytes.HasPrefix(b, pingMagic) }

// sealer makes and opens pings with this member's key.
type sealer struct {
	priv tskey.NodePrivate
	self key.Public
}

func newSealer(p key.Private) sealer {
	var raw [key.Len]byte
	hex.Decode(raw[:], []byte(p.Hex()))
	return sealer{priv: tskey.NodePrivateFromRaw32(mem.B(raw[:])), self: p.Public()}
}

// seal makes a ping or pong for peer to.
func (s sealer) seal(kind byte, to key.Public, tx txID) []byte {
	raw, self := to.Raw(), s.self.Raw()
	box := s.priv.SealTo(tskey.NodePublicFromRaw32(mem.B(raw[:])), tx[:])
	b := make([]byte, 0, pingHeader+len(box))
	b = append(b, pingMagic...)
	b = append(b, kind)
	b = append(b, self[:]...)
	return append(b, box...)
}

// open checks a ping or pong and returns its kind, sender and
// transaction; ok is false for anything a peer did not seal.
func (s sealer) open(b []byte) (kind byte, from key.Public, tx txID, ok bool) {
	if !isPing(b) {
		return 0, key.Public{}, tx, false
	}
	kind = b[len(pingMagic)]
	var raw [key.Len]byte
	copy(raw[:], b[len(pingMagic)+1:pingHeader])
	from = key.PublicFromRaw(raw)
	clear, ok := s.priv.OpenFrom(tskey.NodePublicFromRaw32(mem.B(raw[:])), b[pingHeader:])
	if !ok || len(clear) != txLen || (kind != kindPing && kind != kindPong) {
		return 0, key.Public{}, tx, false
	}
	copy(tx[:], clear)
	return kind, from, tx, true
}
