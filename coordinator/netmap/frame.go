package netmap

import (
	"crypto/sha256"
	"io"
	"strconv"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
)

// frame is one device's netmap as it goes on the wire: encoded pieces,
// the peers among them shared with other devices' frames. Written out it
// is exactly the JSON of a wire.NetMap, one line.
type frame struct {
	self     *fragment
	peers    []*fragment // sorted by device ID, as the compiled policy lists peers; shared, never changed
	peersSum [sha256.Size]byte
	list     *peerList // peers as built, when shared: written joined (nil: not known)
	rules    []byte    // JSON; nil for people's devices
	digest   [sha256.Size]byte
}

// seal computes the frame's digest: what the netmap says, apart from its
// sequence number and creation time.
func (f *frame) seal() {
	f.peersSum = peersSum(f.peers)
	f.sealPeers()
}

// sealPeers computes the frame's digest from peersSum, already set.
func (f *frame) sealPeers() {
	h := sha256.New()
	h.Write(f.self.digest[:])
	h.Write(f.peersSum[:])
	h.Write(f.rules)
	h.Sum(f.digest[:0])
}

// peersSum is the digest of a list of peer entries.
func peersSum(peers []*fragment) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range peers {
		h.Write(p.digest[:])
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

var comma = []byte{','}

var versionPrefix = []byte(`{"version":` + strconv.Itoa(wire.Version) + `,"seq":`)

// writeTo writes the frame as one NDJSON line with the given sequence
// number and creation time, and relays, the JSON of the netmap's
// "relays" (Config.Relays), after the rules; nil writes none.
func (f *frame) writeTo(w io.Writer, seq uint64, created time.Time, relays []byte) error {
	buf := make([]byte, 0, 256+len(f.self.json))
	buf = append(buf, versionPrefix...)
	buf = strconv.AppendUint(buf, seq, 10)
	buf = append(buf, `,"created":"`...)
	buf = created.UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","self":`...)
	buf = append(buf, f.self.json...)
	buf = append(buf, `,"peers":[`...)
	if _, err := w.Write(buf); err != nil {
		return err
	}
	if f.list != nil && f.list.shared {
		if _, err := w.Write(f.list.join()); err != nil {
			return err
		}
	} else {
		for i, p := range f.peers {
			if i > 0 {
				if _, err := w.Write(comma); err != nil {
					return err
				}
			}
			if _, err := w.Write(p.json); err != nil {
				return err
			}
		}
	}
	tail := []byte("]")
	if f.rules != nil {
		tail = append(append(tail, `,"rules":`...), f.rules...)
	}
	if relays != nil {
		tail = append(append(tail, `,"relays":`...), relays...)
	}
	_, err := w.Write(append(tail, "}\n"...))
	return err
}
