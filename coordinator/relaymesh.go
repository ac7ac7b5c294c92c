package coordinator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
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

const (
	relayMeshBeat  = 5 * time.Second
	relayMeshStale = 3 * relayMeshBeat
)

// relayMesh keeps this replica's relay meshed with the others'. Its
// goroutine is owned by the Server (s.wg) and stops with s.stop.
type relayMesh struct {
	s       *Server
	replica string
	tls     *tls.Config
	peers   map[store.RelayReplica]func() // stops the forwarding
}

// startRelayMesh starts meshing when this replica has a relay mesh URL.
func (s *Server) startRelayMesh(ctx context.Context) {
	if s.cfg.RelayMeshURL == "" {
		return
	}
	m := &relayMesh{s: s, replica: store.NewID("r_"), tls: s.relayMeshTLS(), peers: map[store.RelayReplica]func(){}}
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
func (m *relayMesh) loop(ctx context.Context) {
	defer m.s.wg.Done()
	t := time.NewTicker(relayMeshBeat)
	defer t.Stop()
	for {
		m.sync(ctx)
		select {
		case <-ctx.Done():
			m.stop()
			return
		case <-t.C:
		}
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

// stop ends all forwarding and forgets this replica's row.
func (m *relayMesh) stop() {
	var wg sync.WaitGroup
	for _, stop := range m.peers {
		wg.Go(stop)
	}
	wg.Wait()
	ctx, cancel := contextWithTimeout(2 * time.Second)
	defer cancel()
	m.s.store.ForgetRelay(ctx, m.replica)
}
