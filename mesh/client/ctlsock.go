package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/router"
	"github.com/moatmesh/moat/mesh/wire"
)

// A running client serves a small HTTP API on a unix socket in its state
// directory (which only its owner can enter): GET /status and POST /down.

// Status is what GET /status answers, and Client.Status returns.
type Status struct {
	Coordinator string        `json:"coordinator"`
	Connected   bool          `json:"connected"`
	Problem     string        `json:"problem,omitempty"` // what is wrong, for people
	Endpoint    string        `json:"endpoint"`          // the local endpoint's base URL
	Backend     string        `json:"backend"`
	Identity    wire.Identity `json:"identity"`
	Addresses   []netip.Addr  `json:"addresses"`
	NetMapSeq   uint64        `json:"netmapSeq"`
	Nodes       []NodeStatus  `json:"nodes"`
	Models      []string      `json:"models"`
	// MCP are the MCP servers this device may use, served at
	// Endpoint + "/mcp/NAME".
	MCP []string `json:"mcp,omitempty"`
}

// NodeStatus is one peer serving models.
type NodeStatus struct {
	Name          string       `json:"name"`
	Addresses     []netip.Addr `json:"addresses"`
	Models        []string     `json:"models"`
	LastHandshake time.Time    `json:"lastHandshake,omitzero"`
	// Path is how packets to the node travel: "direct" (UDP to
	// Endpoint), "relay" (through Relay over HTTPS) or "unproven" (UDP
	// to Endpoint, nothing proved it yet). Empty from older clients.
	Path     string `json:"path,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	Relay    string `json:"relay,omitempty"`
	// RTTMillis is the direct path's last round trip, in milliseconds.
	RTTMillis float64 `json:"rttMs,omitempty"`
}

// ErrNotUp means no client answers on the state directory's control
// socket.
var ErrNotUp = errors.New("moat up is not running")

// listenControl opens the control socket, refusing to start a second
// client on the directory and clearing a socket file left by one that
// crashed.
func listenControl(dir Dir) (net.Listener, error) {
	if err := dir.Ensure(); err != nil {
		return nil, err
	}
	path := dir.Path(SocketFile)
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, errors.New("moat up is already running; stop it with `moat down`")
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	os.Chmod(path, 0o600)
	return ln, nil
}

func (c *Client) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(c.Status())
	})
	mux.HandleFunc("POST /down", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
		c.stop()
	})
	return mux
}

// Status reports the login, the connection, the netmap in use and the
// nodes it offers, with their last WireGuard handshakes.
func (c *Client) Status() Status {
	c.mu.Lock()
	l, problem := c.mu.login, c.mu.problem
	c.mu.Unlock()
	nm := c.member.NetMap()
	st := Status{Coordinator: l.Coordinator, Connected: problem == "", Problem: problem,
		Endpoint: c.local, Backend: c.Backend().String(), Identity: l.Identity, Addresses: l.Addresses}
	if st.Identity.Expiry.IsZero() {
		st.Identity.Expiry = l.Expiry
	}
	if nm == nil {
		return st
	}
	st.Identity, st.Addresses, st.NetMapSeq = nm.Self.Identity, nm.Self.Addresses, nm.Seq
	c.addNodes(&st, nm)
	return st
}

// addNodes lists nm's peers that serve models, and the models.
func (c *Client) addNodes(st *Status, nm *wire.NetMap) {
	eps := map[[32]byte]engine.PeerStatus{}
	if ps, err := c.member.Engine().Peers(); err == nil {
		for _, p := range ps {
			eps[p.Key.Raw()] = p
		}
	}
	for _, p := range nm.Peers {
		if len(p.Models) == 0 {
			continue
		}
		name := p.Identity.DeviceName
		if name == "" {
			name = p.Key.Short()
		}
		ep := eps[p.Key.Raw()]
		st.Nodes = append(st.Nodes, NodeStatus{Name: name, Addresses: p.Addresses, Models: p.Models, LastHandshake: ep.LastHandshake,
			Path: ep.Path, Endpoint: ep.Endpoint, Relay: ep.Relay, RTTMillis: float64(ep.RTT.Microseconds()) / 1000})
		st.Models = append(st.Models, p.Models...)
	}
	slices.Sort(st.Models)
	st.Models = slices.Compact(st.Models)
	st.MCP = router.MCPServers(nm.Peers)
}

// controlClient talks to the client running on dir.
func controlClient(dir Dir) *http.Client {
	path := dir.Path(SocketFile)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
}

// FetchStatus asks the client running on dir for its status (ErrNotUp:
// none runs).
func FetchStatus(ctx context.Context, dir Dir) (*Status, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://moat/status", nil)
	resp, err := controlClient(dir).Do(req)
	if err != nil {
		return nil, ErrNotUp
	}
	defer resp.Body.Close()
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("status from moat up: %w", err)
	}
	return &st, nil
}

// Down asks the client running on dir to stop and waits, up to 10 s,
// until it has (ErrNotUp: none runs).
func Down(ctx context.Context, dir Dir) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://moat/down", nil)
	resp, err := controlClient(dir).Do(req)
	if err != nil {
		return ErrNotUp
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if _, err := FetchStatus(ctx, dir); errors.Is(err, ErrNotUp) {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("moat up did not stop within 10s")
		case <-t.C:
		}
	}
}
