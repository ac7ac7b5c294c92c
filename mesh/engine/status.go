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
	Key           key.Public
	Endpoint      string    // current underlay endpoint, "" when unknown
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
	return st.peers, nil
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
