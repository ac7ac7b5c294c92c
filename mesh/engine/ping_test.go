package engine

import (
	"testing"

	"github.com/moatmesh/moat/mesh/key"
)

// Only the peer a ping is sealed to can open it, and only as coming from
// its sender; a changed byte or a claimed sender that did not seal it is
// refused.
func TestPingSealing(t *testing.T) {
	keys := make([]key.Private, 3)
	for i := range keys {
		k, err := key.NewPrivate()
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	a, b, c := newSealer(keys[0]), newSealer(keys[1]), newSealer(keys[2])
	tx := newTxID()
	msg := a.seal(kindPing, b.self, tx)
	if !isPing(msg) {
		t.Fatal("a ping does not look like one")
	}
	kind, from, got, ok := b.open(msg)
	if !ok || kind != kindPing || !from.Equal(a.self) || got != tx {
		t.Fatalf("b opened (%v, %s, %x, %v)", kind, from.Short(), got, ok)
	}
	if _, _, _, ok := c.open(msg); ok {
		t.Fatal("a ping sealed to b opened for c")
	}
	forged := append([]byte(nil), msg...)
	cs := c.self.Raw()
	copy(forged[len(pingMagic)+1:], cs[:]) // claims to be from c
	if _, _, _, ok := b.open(forged); ok {
		t.Fatal("a ping with a swapped sender key opened")
	}
	msg[len(msg)-1] ^= 1
	if _, _, _, ok := b.open(msg); ok {
		t.Fatal("a changed ping opened")
	}
	if isPing([]byte{1, 0, 0, 0, 5, 6, 7}) {
		t.Fatal("a WireGuard message taken for a ping")
	}
}
