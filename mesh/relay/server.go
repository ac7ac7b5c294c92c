// Package relay carries WireGuard packets between mesh members that have
// no direct UDP path, over HTTPS (TCP 443 or the coordinator's port). It
// is Tailscale's DERP protocol with Tailscale's own server and client
// (tailscale.com/derp): a member connects with its WireGuard key as its
// DERP key, and the relay forwards each packet to the member whose key the
// sender named.
//
// The relay only ever sees WireGuard ciphertext: WireGuard encrypts and
// authenticates every packet end to end, so the relay can neither read a
// packet nor make one a member accepts. It admits only keys the
// coordinator knows (Admit), so strangers cannot use it.
package relay

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"go4.org/mem"
	"tailscale.com/derp/derpserver"
	"tailscale.com/tailcfg"
	tskey "tailscale.com/types/key"

	"github.com/moatmesh/moat/mesh/key"
)

// Path is where a coordinator serves the relay.
const Path = "/derp"

// Admit reports whether the member with WireGuard key k may use the
// relay. It is asked once per connection, and again by Retain.
type Admit func(ctx context.Context, k key.Public) bool

// ServerConfig configures a relay Server.
type ServerConfig struct {
	// Admit decides which members may connect. Required.
	Admit Admit
	// MeshKey is the secret relays that forward to each other share
	// (MeshWith): a relay admits a peer relay holding it without asking
	// Admit. Default (zero): a random key, for a relay alone.
	MeshKey [32]byte
	// Logger receives refusals and mesh changes. Default: none.
	Logger *slog.Logger
}

// Server is a relay. It is an http.Handler for Path (and Path+"/probe").
type Server struct {
	derp    *derpserver.Server
	http    http.Handler
	admit   Admit
	admitLn *http.Server
	watch   *watcher // who is connected here; closes a connection (retain.go)
	log     *slog.Logger
}

// NewServer starts a relay. DERP asks an admission URL about each
// client; the server answers it itself on a loopback listener under a
// random path, so no one else can. Close stops it.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Admit == nil {
		return nil, errors.New("relay: ServerConfig.Admit is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.MeshKey == ([32]byte{}) {
		rand.Read(cfg.MeshKey[:])
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var tok [16]byte
	rand.Read(tok[:])
	path := "/admit/" + hex.EncodeToString(tok[:])
	s := &Server{admit: cfg.Admit, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+path, s.serveAdmit)
	s.admitLn = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go s.admitLn.Serve(ln)

	setSendQueueDepth()
	s.derp = derpserver.New(tskey.NewNode(), func(format string, args ...any) {
		log.Debug("relay: " + fmt.Sprintf(format, args...))
	})
	s.derp.SetVerifyClientURL("http://" + ln.Addr().String() + path)
	s.derp.SetVerifyClientURLFailOpen(false)
	if err := s.derp.SetMeshKey(hex.EncodeToString(cfg.MeshKey[:])); err != nil {
		s.Close()
		return nil, err
	}
	s.http = derpserver.Handler(s.derp)
	if s.watch, err = startWatcher(s.derp, log); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// serveAdmit answers DERP's admission request for one client.
func (s *Server) serveAdmit(w http.ResponseWriter, r *http.Request) {
	var req tailcfg.DERPAdmitClientRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&req); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	k := publicOf(req.NodePublic)
	ok := s.admit(r.Context(), k)
	if !ok {
		s.log.Info("relay: refused an unknown key", "key", k.Short(), "from", req.Source)
	}
	json.NewEncoder(w).Encode(tailcfg.DERPAdmitClientResponse{Allow: ok})
}

// ServeHTTP implements http.Handler: DERP's upgrade at Path, its probe at
// Path+"/probe".
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := w.(http.Hijacker); ok {
		w = clearDeadlines{w, h}
	}
	s.http.ServeHTTP(w, r)
}

// PublicKey is the relay's own key, which other relays meshing with it
// pin (MeshWith). It is new with every Server.
func (s *Server) PublicKey() key.Public { return publicOf(s.derp.PublicKey()) }

// Close stops the relay and its admission listener; connected members
// are cut off and reconnect elsewhere (or when it is back).
func (s *Server) Close() error {
	if s.watch != nil {
		s.watch.close()
	}
	return errors.Join(s.derp.Close(), s.admitLn.Close())
}

// clearDeadlines lifts the read and write deadlines an http.Server set
// on a connection (ReadTimeout, WriteTimeout) once DERP has taken it
// over: the relay's connections live for hours and DERP keeps them alive
// itself. It also hands DERP the connection with its writes coalesced
// (coalesce.go).
type clearDeadlines struct {
	http.ResponseWriter
	h http.Hijacker
}

func (c clearDeadlines) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := c.h.Hijack()
	if err == nil {
		nc.SetDeadline(time.Time{})
		nc = newCoalesceConn(nc)
	}
	return nc, brw, err
}

// publicOf turns a DERP key into a moat key.
func publicOf(k tskey.NodePublic) key.Public { return key.PublicFromRaw(k.Raw32()) }

// nodePublic turns a moat key into a DERP key.
func nodePublic(k key.Public) tskey.NodePublic {
	raw := k.Raw()
	return tskey.NodePublicFromRaw32(mem.B(raw[:]))
}

// sendQueueDepthEnv is the only setting DERP's server has for how many
// packets it queues for one member before it drops more.
const sendQueueDepthEnv = "TS_DEBUG_DERP_PER_CLIENT_SEND_QUEUE_DEPTH"

// sendQueueDepth replaces DERP's default of 32 packets. A member
// receiving a bulk transfer through the relay is where the relayed path
// is slowest, so its queue is where the sender's TCP window waits; when
// the queue is full DERP drops its oldest packet, and the TCP inside the
// tunnel (gVisor's Reno on netstack members, the kernel's CUBIC on TUN
// members) halves or cuts its window for each loss. Senders hand the
// relay whole WireGuard batches (up to 128 packets, one or more 64 KiB
// segments, at a time), which overflowed 128 again and again: the
// relayed TUN pair of meshbench lost 29,000–52,000 packets in 5 s at 128
// (one in 6–7) and 11,500–24,000 at 512, and the CPU per byte of the
// relayed transfer fell by a sixth (less retransmitted). See "Relay
// cost" in docs/reach.md.
//
// A queue uses memory only for packets waiting in it: at most ~750 KB
// for a member that stops reading, until DERP's write timeout drops it;
// and a queue full of one bulk transfer delays a member's other packets
// by its length, ~8 ms at 0.7 Gbit/s.
const sendQueueDepth = "512"

// setSendQueueDepth sets sendQueueDepthEnv for derpserver.New, which
// reads it, unless the operator set it.
var setSendQueueDepth = sync.OnceFunc(func() {
	if os.Getenv(sendQueueDepthEnv) == "" {
		os.Setenv(sendQueueDepthEnv, sendQueueDepth)
	}
})
