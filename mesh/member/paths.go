package member

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/wire"
)

// Path reports: every member tells the coordinator how it reaches its
// peers, for the nodes and devices pages.
const (
	// pathsEvery is how often the member checks whether a path changed
	// and reports it when it did.
	pathsEvery = 5 * time.Second
	// pathsRefresh is how often it reports unchanged paths, so that the
	// handshake times shown stay fresh.
	pathsRefresh = 2 * time.Minute
	// sessionLife is how long a WireGuard session lives after its
	// handshake (wireguard-go's RejectAfterTime): a peer with no
	// handshake since is not in contact.
	sessionLife = 180 * time.Second
)

// reportPaths reports the member's paths to ctl whenever they change, and
// at least every pathsRefresh, until ctx ends or the coordinator says it
// does not know the call.
func (m *Member) reportPaths(ctx context.Context, ctl *control.Client) {
	var last wire.PathReport
	var sent time.Time
	t := time.NewTicker(pathsEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r, err := m.pathReport(time.Now())
		if err != nil || samePaths(r, last) && time.Since(sent) < pathsRefresh {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = ctl.ReportPaths(rctx, r)
		cancel()
		switch {
		case errors.Is(err, control.ErrUnsupported):
			m.log.Debug("the coordinator takes no path reports; not reporting them")
			return
		case err != nil:
			m.log.Debug("paths not reported; next check retries", "err", err)
		default:
			last, sent = r, time.Now()
		}
	}
}

// pathReport says how the engine reaches each peer now: the
// wire.MaxPathReport peers with the most recent handshakes.
func (m *Member) pathReport(now time.Time) (wire.PathReport, error) {
	peers, err := m.eng.Peers()
	if err != nil {
		return wire.PathReport{}, err
	}
	slices.SortStableFunc(peers, func(a, b engine.PeerStatus) int { return b.LastHandshake.Compare(a.LastHandshake) })
	r := wire.PathReport{Paths: []wire.PeerPath{}}
	for _, p := range peers[:min(len(peers), wire.MaxPathReport)] {
		r.Paths = append(r.Paths, peerPath(p, now))
	}
	// In key order, so that a new handshake alone changes nothing.
	slices.SortFunc(r.Paths, func(a, b wire.PeerPath) int { return strings.Compare(a.Peer.Hex(), b.Peer.Hex()) })
	return r, nil
}

// peerPath is one peer's path as reported: none unless a session is up.
func peerPath(p engine.PeerStatus, now time.Time) wire.PeerPath {
	out := wire.PeerPath{Peer: p.Key, Path: wire.PathNone, LastHandshake: p.LastHandshake}
	if p.LastHandshake.IsZero() || now.Sub(p.LastHandshake) > sessionLife {
		return out
	}
	switch ep, err := netip.ParseAddrPort(p.Endpoint); {
	case p.Path == engine.PathDirect && err == nil:
		out.Path, out.Endpoint = wire.PathDirect, ep
		out.RTTMillis = float64(p.RTT.Microseconds()) / 1000
	case p.Path == engine.PathRelay:
		out.Path, out.Relay = wire.PathRelay, p.Relay
	}
	return out
}

// samePaths reports whether two reports say the same paths, whatever
// their handshake times and round trips.
func samePaths(a, b wire.PathReport) bool {
	return slices.EqualFunc(a.Paths, b.Paths, func(x, y wire.PeerPath) bool {
		return x.Peer == y.Peer && x.Path == y.Path && x.Endpoint == y.Endpoint && x.Relay == y.Relay
	})
}
