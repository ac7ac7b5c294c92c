package router

import (
	"cmp"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/moatmesh/moat/internal/upclient"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/llmapi"
	"github.com/moatmesh/moat/mesh/wire"
)

// node is one peer that serves models, as of one netmap.
type node struct {
	name string         // for people: device name, or the key's start
	addr netip.AddrPort // guard address on the mesh
	st   *nodeState
}

// nodeState is what the router learns about a node across netmaps.
type nodeState struct {
	inflight  atomic.Int64
	downUntil atomic.Int64     // unix nanos; after a failure the node goes last until then
	client    *upclient.Client // its kept-alive connections (conns.go)
}

// route is where requests go: a model through an API family.
type route struct {
	family llmapi.Family
	model  string
}

// snapshot is one netmap, indexed for routing. It is never modified.
type snapshot struct {
	nm      *wire.NetMap
	byModel map[route][]*node
	models  map[llmapi.Family][]string // sorted
	states  map[key.Public]*nodeState
}

// buildSnapshot indexes nm, carrying over the states of nodes in old
// and making new ones with newState.
func buildSnapshot(nm *wire.NetMap, port uint16, old map[key.Public]*nodeState, newState func() *nodeState) *snapshot {
	s := &snapshot{nm: nm, byModel: map[route][]*node{}, models: map[llmapi.Family][]string{}, states: map[key.Public]*nodeState{}}
	if nm == nil {
		return s
	}
	for i := range nm.Peers {
		p := &nm.Peers[i]
		if len(p.Models) == 0 || len(p.Addresses) == 0 {
			continue
		}
		st := old[p.Key]
		if st == nil {
			st = newState()
		}
		s.states[p.Key] = st
		n := &node{name: nodeName(p), addr: netip.AddrPortFrom(guardAddr(p.Addresses), port), st: st}
		for _, m := range p.Models {
			// A family this build does not know (a newer node's) has no
			// paths here; absent is OpenAI (nodes from before families).
			if f, ok := llmapi.ParseFamily(p.APIs[m]); ok {
				rt := route{f, m}
				s.byModel[rt] = append(s.byModel[rt], n)
			}
		}
	}
	for rt := range s.byModel {
		s.models[rt.family] = append(s.models[rt.family], rt.model)
	}
	for _, ms := range s.models {
		slices.Sort(ms)
	}
	return s
}

// guardAddr prefers the peer's IPv4 mesh address.
func guardAddr(addrs []netip.Addr) netip.Addr {
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a.Unmap()
		}
	}
	return addrs[0]
}

func nodeName(p *wire.Peer) string {
	if p.Identity.DeviceName != "" {
		return p.Identity.DeviceName
	}
	return p.Key.Short()
}

// candidates orders the nodes serving rt for one request: healthy
// before recently failed, fewer requests in flight first, and ties taken
// in turn so that sequential requests alternate.
func (r *Router) candidates(s *snapshot, rt route) []*node {
	ns := s.byModel[rt]
	if len(ns) == 0 {
		return nil
	}
	start := int(r.turn.Add(1) % uint64(len(ns)))
	out := append(slices.Clone(ns[start:]), ns[:start]...)
	now := r.cfg.Now().UnixNano()
	slices.SortStableFunc(out, func(a, b *node) int {
		da, db := a.st.downUntil.Load() > now, b.st.downUntil.Load() > now
		if da != db {
			if da {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.st.inflight.Load(), b.st.inflight.Load())
	})
	return out[:min(len(out), r.cfg.MaxAttempts)]
}

// markDown puts n last for the cooldown.
func (r *Router) markDown(n *node) {
	n.st.downUntil.Store(r.cfg.Now().Add(r.cfg.Cooldown).UnixNano())
}

func (r *Router) markUp(n *node) { n.st.downUntil.Store(0) }

// loginProblem returns why requests need a new sign-in, or "".
func (r *Router) loginProblem(s *snapshot) string {
	if why := r.login.Load(); why != nil {
		return *why
	}
	if s.nm != nil && s.nm.Self.Identity.Expired(r.cfg.Now()) {
		return "this device's sign-in expired at " + s.nm.Self.Identity.Expiry.Local().Format(time.DateTime)
	}
	return ""
}
