package engine

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/moatmesh/moat/mesh/key"
)

// fallbackSim drives one peer's path state in virtual time: a packet
// every step (each may send the pings due), pongs back after rtt while
// UDP is open, none while it is blocked.
type fallbackSim struct {
	t     *testing.T
	b     *pathBind
	peer  key.Public
	p     *peerPath
	now   time.Time
	step  time.Duration // between packets
	pongs []pongDue
}

type pongDue struct {
	tx txID
	at time.Time
}

const (
	simStep = 10 * time.Millisecond // steady traffic
	simRTT  = time.Millisecond
)

func newFallbackSim(t *testing.T) *fallbackSim {
	priv, err := key.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	peerKey, _ := key.NewPrivate()
	b := newPathBind(newCappedBind(conn.NewStdNetBind()), priv, slog.New(slog.DiscardHandler))
	peer := peerKey.Public()
	b.setPeers(map[key.Public][]netip.AddrPort{peer: {netip.MustParseAddrPort("192.0.2.10:41641")}})
	p := b.mu.peers[peer]
	p.speaksMoat = true // it answers pings
	return &fallbackSim{t: t, b: b, peer: peer, p: p, now: time.Unix(1_000_000, 0), step: simStep}
}

// send is one packet at s.now with UDP open or not: the pings it sends,
// the pongs due by then, and where it went.
func (s *fallbackSim) send(udpOpen bool) (udp bool, relay bool) {
	for len(s.pongs) > 0 && !s.pongs[0].at.After(s.now) {
		s.p.ponged(s.pongs[0].tx, s.pongs[0].at)
		s.pongs = s.pongs[1:]
	}
	before := len(s.p.pings)
	s.b.pingsLocked(s.peer, s.p, s.now)
	if udpOpen && len(s.p.pings) != before {
		for tx, sp := range s.p.pings {
			if sp.sent.Equal(s.now) {
				s.pongs = append(s.pongs, pongDue{tx, s.now.Add(simRTT)})
			}
		}
	}
	a, r := s.p.route(s.now, true)
	return a.IsValid(), r
}

// run sends a packet every s.step for d and returns when the relay first
// carried packets and when the relay alone did (zero: never), counted from
// the start.
func (s *fallbackSim) run(d time.Duration, udpOpen bool) (relayed, relayOnly time.Duration) {
	start := s.now
	for ; s.now.Sub(start) < d; s.now = s.now.Add(s.step) {
		udp, relay := s.send(udpOpen)
		if relay && relayed == 0 {
			relayed = s.now.Sub(start) + simStep
		}
		if relay && !udp && relayOnly == 0 {
			relayOnly = s.now.Sub(start) + simStep
		}
	}
	return relayed, relayOnly
}

// The time from UDP blocked to packets over the relay is bounded by the
// ping period and the pong wait, whatever the phase of the pings when
// UDP goes: counted in virtual time, so load cannot move it. While UDP
// works nothing is sent twice, and when it opens again the peer is back
// on direct alone within a ping period.
func TestFallbackToRelayTime(t *testing.T) {
	bound := pingEvery + pongWait + 2*simStep // a step to send the ping, a step to see it late
	if bound > time.Second {
		t.Fatalf("pingEvery + pongWait = %v: the fallback target is 2 s with margin", bound)
	}
	var worst, worstOnly time.Duration
	for phase := time.Duration(0); phase < pingEvery; phase += 30 * time.Millisecond {
		s := newFallbackSim(t)
		s.run(time.Second, true) // the first ping proves the path
		if relayed, _ := s.run(2*time.Second+phase, true); relayed != 0 {
			t.Fatalf("phase %v: the relay carried packets while the direct path answered", phase)
		}
		if udp, relay := s.send(true); !udp || relay {
			t.Fatalf("phase %v: not on direct alone before the block", phase)
		}
		relayed, relayOnly := s.run(3*time.Second, false)
		if relayed == 0 || relayed > bound {
			t.Errorf("phase %v: relayed %v after UDP was blocked, want at most %v", phase, relayed, bound)
		}
		if relayOnly == 0 || relayOnly > trustDirect+2*simStep {
			t.Errorf("phase %v: on the relay alone %v after the block, want at most %v", phase, relayOnly, trustDirect+2*simStep)
		}
		worst, worstOnly = max(worst, relayed), max(worstOnly, relayOnly)

		s.run(pingEvery+simStep, true) // UDP opens: a ping period to prove it
		if udp, relay := s.send(true); !udp || relay {
			t.Errorf("phase %v: UDP open again for %v, yet udp %v relay %v", phase, pingEvery, udp, relay)
		}
	}
	t.Logf("UDP blocked → relayed: at most %v (virtual time; bound %v); relay alone at most %v", worst, bound, worstOnly)
}

// With sparse traffic, as a TCP connect's SYNs 1 s apart, the first packet
// sent pingEvery + pongWait after the last pong goes over the relay too:
// the second SYN after UDP is blocked at the latest (counted, not timed).
func TestFallbackSparseTraffic(t *testing.T) {
	for phase := time.Duration(0); phase < pingEvery; phase += 50 * time.Millisecond {
		s := newFallbackSim(t)
		s.run(2*time.Second+phase, true) // steady traffic, then quiet
		s.step = time.Second
		relayed, _ := s.run(4*time.Second, false)
		if relayed == 0 || relayed > time.Second+simStep {
			t.Errorf("phase %v: relayed %v after the block, want by the second packet (1 s)", phase, relayed)
		}
	}
}

// The path shown for a peer stays the direct one it last proved while
// the peer is idle, and turns to the relay once a ping on it goes
// unanswered.
func TestPathShownIdleAndBlocked(t *testing.T) {
	s := newFallbackSim(t)
	s.run(time.Second, true)
	s.now = s.now.Add(time.Minute) // idle: no packets, no pings
	if path, ep, _ := s.p.describe(s.now, true); path != PathDirect || ep != netip.MustParseAddrPort("192.0.2.10:41641") {
		t.Fatalf("idle for a minute: %s %v, want the direct path", path, ep)
	}
	s.step = simStep
	start := s.now
	for ; ; s.now = s.now.Add(simStep) {
		s.send(false)
		if path, _, _ := s.p.describe(s.now, true); path == PathRelay {
			break
		}
		if s.now.Sub(start) > pingEvery+pongWait+2*simStep {
			t.Fatalf("UDP blocked for %v with traffic and still shown direct", s.now.Sub(start))
		}
	}
}
