package engine

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/moatmesh/moat/mesh/key"
)

// PeerStatus is what wireguard-go reports about one peer.
type PeerStatus struct {
	Key key.Public
	// Path is how packets to the peer travel now: PathDirect,
	// PathRelay or PathUnproven.
	Path string
	// Endpoint is the peer's UDP address for PathDirect (and the best
	// guess for PathUnproven); "" otherwise.
	Endpoint string
	// Relay is the relay's URL for PathRelay.
	Relay string
	// RTT is the round trip of the last path ping on the direct path.
	RTT           time.Duration
	LastHandshake time.Time // zero: no handshake yet
	RxBytes       uint64
	TxBytes       uint64
}

type deviceStatus struct {
	port  uint16
	peers []PeerStatus
}

// Peers reports every configured peer's handshake and traffic counters.
func (e *Engine) Peers() ([]PeerStatus, error) {
	st, err := e.status()
	if err != nil {
		return nil, err
	}
	relayURL, _, _ := e.bind.relayState()
	for i := range st.peers {
		p := &st.peers[i]
		path, ep, rtt := e.bind.pathOf(p.Key)
		p.Path, p.Endpoint, p.RTT = path, "", rtt
		if ep.IsValid() {
			p.Endpoint = ep.String()
		}
		if path == PathRelay {
			p.Relay = relayURL
		}
	}
	return st.peers, nil
}

// RelayStatus says which relay the engine uses, whether it is connected
// and, when not, why.
type RelayStatus struct {
	URL       string // "" when the engine has no relay
	Connected bool
	Err       error
}

// Relay reports the engine's relay connection.
func (e *Engine) Relay() RelayStatus {
	u, ok, err := e.bind.relayState()
	return RelayStatus{URL: u, Connected: ok, Err: err}
}

func (e *Engine) status() (deviceStatus, error) {
	var st deviceStatus
	text, err := e.dev.IpcGet()
	if err != nil {
		return st, fmt.Errorf("engine: status: %w", err)
	}
	var cur *PeerStatus
	var sec, nsec int64
	flush := func() {
		if cur != nil {
			if sec != 0 || nsec != 0 {
				cur.LastHandshake = time.Unix(sec, nsec)
			}
			st.peers = append(st.peers, *cur)
		}
		sec, nsec = 0, 0
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "listen_port":
			p, _ := strconv.ParseUint(v, 10, 16)
			st.port = uint16(p)
		case "public_key":
			flush()
			raw, err := hex.DecodeString(v)
			if err != nil || len(raw) != key.Len {
				return st, fmt.Errorf("engine: status: bad peer key from device")
			}
			cur = &PeerStatus{Key: key.PublicFromRaw([key.Len]byte(raw))}
		case "endpoint":
			cur.Endpoint = v
		case "last_handshake_time_sec":
			sec, _ = strconv.ParseInt(v, 10, 64)
		case "last_handshake_time_nsec":
			nsec, _ = strconv.ParseInt(v, 10, 64)
		case "rx_bytes":
			cur.RxBytes, _ = strconv.ParseUint(v, 10, 64)
		case "tx_bytes":
			cur.TxBytes, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	flush()
	return st, nil
}
