package member

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/relay"
	"github.com/moatmesh/moat/mesh/wire"
)

// useRelay points the engine at the netmap's relays, then the
// coordinator's own (its URL + relay.Path), which alone is used when the
// netmap names none. With several, the member uses the first that
// answers (relayChooser).
//
// Every relay is verified as the coordinator is: against the pinned
// certificate when the member pins the coordinator's (a relay process of
// a cluster with a self-signed certificate serves that certificate), else
// against the system roots. A relay is reached through the same HTTP
// proxy as the coordinator (HTTPS_PROXY).
func (m *Member) useRelay(nm *wire.NetMap, ctl *control.Client) {
	urls := make([]string, 0, len(nm.Relays))
	for _, r := range nm.Relays {
		if r.URL != "" && !slices.Contains(urls, r.URL) {
			urls = append(urls, r.URL)
		}
	}
	// The coordinator's own relay, at the URL this member reaches the
	// coordinator at, is the last resort whatever the netmap says (the
	// coordinator names its own at its public URL, which may not be it).
	if own := ctl.URL(relay.Path); !slices.Contains(urls, own) {
		urls = append(urls, own)
	}
	m.relays().set(urls, ctl)
	if m.stunFor != ctl.URL("") {
		m.stunFor = ctl.URL("")
		if srv, ok := STUNServer(m.stunFor); ok {
			m.eng.SetSTUN(srv)
		}
	}
}

// STUNServer is the coordinator's STUN responder: its host (resolved,
// the first address) on relay.DefaultSTUNPort.
func STUNServer(coordinatorURL string) (netip.AddrPort, bool) {
	u, err := url.Parse(coordinatorURL)
	if err != nil || u.Hostname() == "" {
		return netip.AddrPort{}, false
	}
	addr, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		addrs, lerr := net.DefaultResolver.LookupNetIP(ctx, "ip", u.Hostname())
		if lerr != nil || len(addrs) == 0 {
			return netip.AddrPort{}, false
		}
		addr = addrs[0]
	}
	if addr.IsLoopback() {
		return netip.AddrPort{}, false // a coordinator on this host: nothing to learn
	}
	return netip.AddrPortFrom(addr.Unmap(), relay.DefaultSTUNPort), true
}

// Choosing among several relays: the member connects to the first at
// once and at the same time asks them all whether they answer (their
// probe, /derp/probe), moving to the first that does; while connected to
// a relay that is not the first, it asks the relays before it every
// relayRecheck and goes back to the first that answers; while its relay
// is not connected for relayDownAfter, it asks them all again and moves
// to the first other relay that answers (a relay may answer its probe yet
// refuse members), and does not go back to the one it left before
// relayFailedFor, however well that one answers its probe. Latency plays
// no part yet: probes over HTTPS from every member to every relay would
// cost the relays a TLS handshake each.
const (
	relayRecheck   = 5 * time.Second
	relayDownAfter = 2 * time.Second
	relayFailedFor = 30 * time.Second
	relayTick      = 500 * time.Millisecond
	relayProbeWait = 2 * time.Second
)

// relays returns m's chooser, starting its goroutine (one of m.runs,
// so Close waits for it) on first use.
func (m *Member) relays() *relayChooser {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.chooser == nil {
		c := &relayChooser{m: m, kick: make(chan struct{}, 1)}
		m.mu.chooser = c
		stopped := m.mu.stopped
		m.runs.Go(func() { c.run(stopped) })
	}
	return m.mu.chooser
}

// relayChooser keeps m's engine on the first of its relays that answers.
type relayChooser struct {
	m    *Member
	kick chan struct{} // cap 1: the relays changed
	// useMu is held across choosing the engine's relay and giving it to
	// the engine, so that the engine and mu.current agree.
	useMu sync.Mutex
	mu    struct {
		sync.Mutex
		urls    []string
		ctl     *control.Client
		current string    // the relay the engine was given
		since   time.Time // when current was given, or last seen connected
		// failedUntil: relays left for being down, and until when the
		// "better relay" recheck does not go back to them.
		failedUntil map[string]time.Time
	}
}

// set makes urls the relays, best first; the first is used at once when
// the current one is not among them.
func (c *relayChooser) set(urls []string, ctl *control.Client) {
	c.mu.Lock()
	changed := !slices.Equal(c.mu.urls, urls) || c.mu.ctl != ctl
	c.mu.urls, c.mu.ctl = urls, ctl
	for u := range c.mu.failedUntil {
		if !slices.Contains(urls, u) {
			delete(c.mu.failedUntil, u)
		}
	}
	c.mu.Unlock()
	if changed {
		c.use("", ctl)
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// use gives the engine want as its relay, provided the relays are still
// those of ctl and name want; want "" means the current relay when the
// relays name it, else the first. It reports whether it gave one.
func (c *relayChooser) use(want string, ctl *control.Client) bool {
	c.useMu.Lock()
	defer c.useMu.Unlock()
	c.mu.Lock()
	urls := c.mu.urls
	if c.mu.ctl != ctl || ctl == nil || len(urls) == 0 {
		c.mu.Unlock()
		return false
	}
	target := want
	switch {
	case target == "" && slices.Contains(urls, c.mu.current):
		target = c.mu.current
	case target == "":
		target = urls[0]
	case !slices.Contains(urls, target):
		c.mu.Unlock()
		return false // a stale choice: the relays changed meanwhile
	}
	if target != c.mu.current {
		c.mu.since = time.Now()
	}
	c.mu.current = target
	c.mu.Unlock()
	if err := c.m.eng.SetRelay(target, ctl.TLSConfig(), ctl.Proxy(target)); err != nil {
		c.m.log.Warn("relay not usable; peers without a direct path are unreachable", "relay", target, "err", err)
	}
	return true
}

// run re-chooses until stopped ends.
func (c *relayChooser) run(stopped context.Context) {
	t := time.NewTicker(relayTick)
	defer t.Stop()
	var lastLook time.Time
	for {
		fresh := false // the relays changed: ask them all at once
		select {
		case <-stopped.Done():
			return
		case <-t.C:
		case <-c.kick:
			fresh = true
		}
		c.mu.Lock()
		urls, ctl, current := c.mu.urls, c.mu.ctl, c.mu.current
		st := c.m.eng.Relay()
		now := time.Now()
		if st.Connected && st.URL == current {
			c.mu.since = now
		}
		down := now.Sub(c.mu.since) >= relayDownAfter
		var ask []string // up: only better ones, not those left lately
		i := slices.Index(urls, current)
		for _, u := range urls[:max(i, 0)] {
			if now.After(c.mu.failedUntil[u]) {
				ask = append(ask, u)
			}
		}
		c.mu.Unlock()
		if ctl == nil || len(urls) == 0 {
			continue
		}
		if i < 0 { // not among the relays (cannot stay so; but never keep it)
			c.use("", ctl)
			continue
		}
		wait := relayRecheck
		if down {
			wait = relayDownAfter
		}
		if len(urls) < 2 || (!fresh && ((!down && len(ask) == 0) || now.Sub(lastLook) < wait)) {
			continue
		}
		lastLook = now
		if down || fresh {
			ask = urls // any that answers
		}
		ok := c.answering(stopped, ask, ctl)
		best := ""
		for j, u := range ask {
			// Down, the current relay answering its probe says nothing:
			// it may refuse members; any other is better.
			if ok[j] && (!down || u != current) {
				best = u
				break
			}
		}
		c.m.log.Debug("relay: asked the relays", "current", current, "current_down", down, "asked", ask, "first_answering", best)
		if best == "" || best == current {
			continue
		}
		if down {
			c.mu.Lock()
			if c.mu.failedUntil == nil {
				c.mu.failedUntil = make(map[string]time.Time)
			}
			c.mu.failedUntil[current] = time.Now().Add(relayFailedFor)
			c.mu.Unlock()
		}
		if c.use(best, ctl) {
			c.m.log.Info("relay: moving", "from", current, "to", best, "current_connected", !down)
		}
	}
}

// answering asks the relays' probes at once and reports, for each of
// urls, whether it answered.
func (c *relayChooser) answering(ctx context.Context, urls []string, ctl *control.Client) []bool {
	ok := make([]bool, len(urls))
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Go(func() {
			err := relayAnswers(ctx, u, ctl.TLSConfig(), ctl.Proxy(u))
			if ok[i] = err == nil; !ok[i] {
				c.m.log.Debug("relay: no answer", "relay", u, "err", err)
			}
		})
	}
	wg.Wait()
	return ok
}

// relayAnswers asks the relay at u for its probe: nil when it answered
// 200.
func relayAnswers(ctx context.Context, u string, tlsConf *tls.Config, proxy *url.URL) error {
	ctx, cancel := context.WithTimeout(ctx, relayProbeWait)
	defer cancel()
	if tlsConf != nil {
		// The control client's transport offers HTTP/2 in it; this one
		// speaks HTTP/1.1 only.
		tlsConf = tlsConf.Clone()
		tlsConf.NextProtos = nil
	}
	tr := &http.Transport{TLSClientConfig: tlsConf, Proxy: http.ProxyURL(proxy), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, strings.TrimSuffix(u, "/")+"/probe", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe answered %s", resp.Status)
	}
	return nil
}
