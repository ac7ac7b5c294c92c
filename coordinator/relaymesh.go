package coordinator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/key"
)

// The relays of all replicas mesh, so that a member relayed through one
// replica reaches a member relayed through another. Each replica with a
// Config.RelayMeshURL announces it and its relay's key in the database
// every relayMeshBeat and meshes its relay with every other replica
// announced recently (relay.Server.MeshWith), pinning the key announced:
// replicas may mesh over plain HTTP on their own addresses, and a man in
// the middle presenting another key is refused before the mesh key is
// sent. The mesh key they share is in the secrets table (relay.go). A
// replica that stops forgets its row; one that dies ages out after
// relayMeshStale.
//
// The beat alone would leave a new replica unmeshed for up to a beat: a
// member attached to it would not hear members attached elsewhere (DERP
// drops a packet for a member it does not know of, and a lost handshake
// is tried again after 1 s once, then only every 5 s). So a replica also says on the Bus (its
// relayMeshTopic) when its relay is up, once its mesh URL answers, and
// when it stops; every replica syncs as soon as it hears either, and
// again whenever it listens anew (it may have missed one); this takes a
// database connection of its own. The beat remains for a replica that
// died without saying so.

const (
	relayMeshBeat  = 5 * time.Second
	relayMeshStale = 3 * relayMeshBeat
	relayMeshTopic = "relay" // store.Bus.Topic
	// A starting replica asks its own relay's probe every relayUpPoll
	// until it answers (its listener is up) before telling the others,
	// for at most relayMeshStale: a replica that dials a relay not
	// listening yet tries again only after DERP's 5 s.
	relayUpPoll = 50 * time.Millisecond
	// relayRelisten is the pause after a lost listening connection.
	relayRelisten = time.Second
)

// Messages on relayMeshTopic: "REPLICA up" and "REPLICA gone".
const (
	relayMsgUp   = "up"
	relayMsgGone = "gone"
)

// relayMesh keeps this replica's relay meshed with the others'. Its
// goroutines are owned by the Server (s.wg) and stop with s.stop.
type relayMesh struct {
	s       *Server
	replica string
	tls     *tls.Config
	bus     *store.Bus                    // relayMeshTopic; nil if the store has none
	kick    chan struct{}                 // a sync is due (another replica came or went)
	peers   map[store.RelayReplica]func() // stops the forwarding
}

// startRelayMesh starts meshing when this replica has a relay mesh URL.
func (s *Server) startRelayMesh(ctx context.Context) {
	if s.cfg.RelayMeshURL == "" {
		return
	}
	m := &relayMesh{s: s, replica: store.NewID("r_"), tls: s.relayMeshTLS(),
		kick: make(chan struct{}, 1), peers: map[store.RelayReplica]func(){}}
	if bus, err := s.store.Bus(ctx); err != nil {
		s.log.Warn("relay mesh: new replicas are meshed with only at the next beat", "err", err)
	} else {
		m.bus = bus.Topic(relayMeshTopic)
		s.wg.Add(1)
		go m.listen(ctx)
	}
	s.wg.Add(1)
	go m.loop(ctx)
}

// relayMeshTLS verifies other replicas as members verify this one: the
// name of the public URL (replicas share its certificate, whatever
// address they are dialled at), and the self-signed certificate when
// that is what replicas serve.
func (s *Server) relayMeshTLS() *tls.Config {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if u, err := url.Parse(s.cfg.PublicURL); err == nil {
		conf.ServerName = u.Hostname()
	}
	if len(s.cfg.SelfSignedCert) > 0 {
		if cert, err := x509.ParseCertificate(s.cfg.SelfSignedCert); err == nil {
			conf.RootCAs = x509.NewCertPool()
			conf.RootCAs.AddCert(cert)
		}
	}
	return conf
}

// loop announces this replica and follows the others until ctx ends.
// Once this replica's row is in, it tells the others it is up.
func (m *relayMesh) loop(ctx context.Context) {
	defer m.s.wg.Done()
	t := time.NewTicker(relayMeshBeat)
	defer t.Stop()
	m.sync(ctx)
	if m.bus != nil {
		m.s.wg.Add(1)
		go m.tellUp(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			m.stop()
			return
		case <-t.C:
		case <-m.kick:
		}
		m.sync(ctx)
	}
}

// syncSoon asks loop to sync now.
func (m *relayMesh) syncSoon() {
	select {
	case m.kick <- struct{}{}:
	default: // one is due already
	}
}

// listen hears the other replicas come and go until ctx ends, listening
// again after a lost connection, and syncs whenever it starts listening.
func (m *relayMesh) listen(ctx context.Context) {
	defer m.s.wg.Done()
	for {
		err := m.bus.Listen(ctx, m.syncSoon, m.hear)
		if ctx.Err() != nil {
			return
		}
		m.s.log.Warn("relay mesh: listening for other replicas failed; listening again", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(relayRelisten):
		}
	}
}

// hear syncs on another replica's message.
func (m *relayMesh) hear(msg string) {
	from, kind, _ := strings.Cut(msg, " ")
	if from == m.replica {
		return
	}
	if kind != relayMsgUp && kind != relayMsgGone {
		m.s.log.Warn("relay mesh: unknown message from another replica", "kind", kind)
	}
	m.syncSoon()
}

// tellUp tells the other replicas that this one's relay is up, once its
// probe answers at the mesh URL, as the others will dial it.
func (m *relayMesh) tellUp(ctx context.Context) {
	defer m.s.wg.Done()
	probe := strings.TrimSuffix(m.s.cfg.RelayMeshURL, "/") + "/probe"
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: m.tls}}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(relayMeshStale)
	for !relayAnswers(ctx, hc, probe) {
		if time.Now().After(deadline) {
			m.s.log.Warn("relay mesh: this replica's relay does not answer at its mesh URL; telling the others anyway", "probe", probe)
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(relayUpPoll):
		}
	}
	m.publish(ctx, relayMsgUp)
}

// relayAnswers reports whether a relay's probe answers 200.
func relayAnswers(ctx context.Context, hc *http.Client, probe string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, probe, nil)
	if err != nil {
		return false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// publish tells the other replicas kind; a failure leaves them their beat.
func (m *relayMesh) publish(ctx context.Context, kind string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := m.bus.Publish(ctx, m.replica+" "+kind); err != nil {
		m.s.log.Warn("relay mesh: could not tell the other replicas", "about", kind, "err", err)
	}
}

// sync announces this replica and meshes with exactly the replicas
// announced recently. Presence is about running processes, so it uses
// the real clock, not Config.Now.
func (m *relayMesh) sync(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, relayMeshBeat)
	defer cancel()
	now := time.Now()
	st := m.s.store
	self := store.RelayReplica{URL: m.s.cfg.RelayMeshURL, Key: m.s.relay.PublicKey().String()}
	if err := st.AnnounceRelay(ctx, m.replica, self, now, now.Add(-time.Hour)); err != nil {
		m.s.log.Warn("relay mesh: could not announce this replica", "err", err)
	}
	others, err := st.Relays(ctx, now.Add(-relayMeshStale))
	if err != nil {
		m.s.log.Warn("relay mesh: could not read the other replicas", "err", err)
		return // keep the mesh as it is
	}
	want := map[store.RelayReplica]bool{}
	for replica, r := range others {
		if replica != m.replica && r.URL != self.URL {
			want[r] = true
		}
	}
	m.update(want)
}

// update starts forwarding to the relays in want and stops it to others.
func (m *relayMesh) update(want map[store.RelayReplica]bool) {
	for r, stop := range m.peers {
		if !want[r] {
			m.s.log.Info("relay mesh: a replica left", "relay", r.URL)
			stop()
			delete(m.peers, r)
		}
	}
	for r := range want {
		if m.peers[r] != nil {
			continue
		}
		stop, err := m.meshWith(r)
		if err != nil {
			m.s.log.Warn("relay mesh: not meshing with another replica", "relay", r.URL, "err", err)
			continue
		}
		m.s.log.Info("relay mesh: meshing with a replica", "relay", r.URL)
		m.peers[r] = stop
	}
}

// meshWith meshes with r's relay, pinning the key it announced; a
// replica that announced none (an older binary) is not meshed with.
func (m *relayMesh) meshWith(r store.RelayReplica) (stop func(), err error) {
	k, err := key.ParsePublic(r.Key)
	if err != nil {
		return nil, fmt.Errorf("its relay key %q: %w (upgrade it)", r.Key, err)
	}
	return m.s.relay.MeshWith(r.URL, k, m.tls)
}

// stop ends all forwarding, forgets this replica's row and tells the
// others, so that they stop dialling it at once.
func (m *relayMesh) stop() {
	var wg sync.WaitGroup
	for _, stop := range m.peers {
		wg.Go(stop)
	}
	wg.Wait()
	ctx, cancel := contextWithTimeout(2 * time.Second)
	defer cancel()
	m.s.store.ForgetRelay(ctx, m.replica)
	if m.bus != nil {
		m.publish(ctx, relayMsgGone)
	}
}
