package main

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

	"github.com/moatmesh/moat/mesh/wire"
)

// `moat up` serves a small HTTP API on a unix socket in the state
// directory (which only its owner can enter): GET /status and POST /down.

// statusReport is what GET /status answers.
type statusReport struct {
	Coordinator string        `json:"coordinator"`
	Connected   bool          `json:"connected"`
	Problem     string        `json:"problem,omitempty"` // what is wrong, for people
	Endpoint    string        `json:"endpoint"`          // the local endpoint's base URL
	Backend     string        `json:"backend"`
	Identity    wire.Identity `json:"identity"`
	Addresses   []netip.Addr  `json:"addresses"`
	NetMapSeq   uint64        `json:"netmapSeq"`
	Nodes       []nodeStatus  `json:"nodes"`
	Models      []string      `json:"models"`
}

// nodeStatus is one peer serving models.
type nodeStatus struct {
	Name          string       `json:"name"`
	Addresses     []netip.Addr `json:"addresses"`
	Models        []string     `json:"models"`
	LastHandshake time.Time    `json:"lastHandshake,omitzero"`
}

// errNotUp means no `moat up` answers on the control socket.
var errNotUp = errors.New("moat up is not running")

// listenControl opens the control socket, refusing to start a second
// `moat up` and clearing a socket file left by one that crashed.
func listenControl(dir stateDir) (net.Listener, error) {
	if err := dir.ensure(); err != nil {
		return nil, err
	}
	path := dir.path(socketFile)
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

func (d *daemon) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(d.status())
	})
	mux.HandleFunc("POST /down", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
		d.cancel()
	})
	return mux
}

// status gathers the report from the last netmap and the engine.
func (d *daemon) status() statusReport {
	d.mu.Lock()
	l, nm, problem := d.mu.login, d.mu.netmap, d.mu.problem
	d.mu.Unlock()
	st := statusReport{Coordinator: l.Coordinator, Connected: problem == "", Problem: problem,
		Endpoint: d.local, Backend: d.eng.Backend().String(), Identity: l.Identity, Addresses: l.Addresses}
	if st.Identity.Expiry.IsZero() {
		st.Identity.Expiry = l.Expiry
	}
	if nm == nil {
		return st
	}
	st.Identity, st.Addresses, st.NetMapSeq = nm.Self.Identity, nm.Self.Addresses, nm.Seq
	hs := map[[32]byte]time.Time{}
	if ps, err := d.eng.Peers(); err == nil {
		for _, p := range ps {
			hs[p.Key.Raw()] = p.LastHandshake
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
		st.Nodes = append(st.Nodes, nodeStatus{Name: name, Addresses: p.Addresses, Models: p.Models, LastHandshake: hs[p.Key.Raw()]})
		st.Models = append(st.Models, p.Models...)
	}
	slices.Sort(st.Models)
	st.Models = slices.Compact(st.Models)
	return st
}

// controlClient talks to a running `moat up`.
func controlClient(dir stateDir) *http.Client {
	path := dir.path(socketFile)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
}

// fetchStatus asks a running `moat up` for its status.
func fetchStatus(ctx context.Context, dir stateDir) (*statusReport, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://moat/status", nil)
	resp, err := controlClient(dir).Do(req)
	if err != nil {
		return nil, errNotUp
	}
	defer resp.Body.Close()
	var st statusReport
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("status from moat up: %w", err)
	}
	return &st, nil
}
