package netmap

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"runtime"
	"slices"
	"sync"
	"unsafe"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// build builds the frames of the members at positions todo into out.
// With more than one CPU, people's devices and nodes are built at the same
// time: a person's device has only nodes as peers and a node mostly
// people's devices, so each side touches only the other side's encodings.
// A frame with a peer of its own side (a node calling a node) is left to
// the end, when the two sides are done.
func (e *encoding) build(s *Snapshot, c *policy.Compiled, byPos []*devEncoding, todo []int, out map[string]*frame) error {
	newBuilder := func() *frameBuilder {
		return &frameBuilder{e: e, s: s, c: c, devs: byPos, keys: map[string]string{}, lists: map[listKey]*peerList{}}
	}
	if runtime.GOMAXPROCS(0) < 2 {
		fb := newBuilder()
		return fb.all(todo, false, out)
	}
	var people, nodes []int
	for _, i := range todo {
		if byPos[i].node {
			nodes = append(nodes, i)
		} else {
			people = append(people, i)
		}
	}
	fbp, fbn := newBuilder(), newBuilder()
	outp := make(map[string]*frame, len(people))
	var errp error
	var wg sync.WaitGroup
	wg.Go(func() { errp = fbp.all(people, true, outp) })
	errn := fbn.all(nodes, true, out)
	wg.Wait()
	if err := errors.Join(errp, errn); err != nil {
		return err
	}
	for id, f := range outp {
		out[id] = f
	}
	// The frames left to the end, one side at a time.
	return fbn.all(slices.Concat(fbp.deferred, fbn.deferred), false, out)
}

// frameBuilder builds frames during one recompute; one builder per
// goroutine.
type frameBuilder struct {
	e     *encoding
	s     *Snapshot
	c     *policy.Compiled
	devs  []*devEncoding // the live devices, as the compiled policy orders them
	ck    []byte
	key   string // ck interned
	keyed bool   // ck and key are set
	last  viewID // of the view whose key is in ck
	keys  map[string]string
	lists map[listKey]*peerList // see listKeyOf
	// deferred are the frames that have a peer of their own side (see
	// build), when building one side.
	deferred []int
}

// all builds the frames of the members at positions todo into out. With
// oneSide, a frame with a peer of its own side is left in fb.deferred.
func (fb *frameBuilder) all(todo []int, oneSide bool, out map[string]*frame) error {
	for _, i := range todo {
		de := fb.devs[i]
		f, err := fb.frame(de, &fb.c.Members[i], oneSide)
		switch {
		case err != nil:
			return err
		case f == nil:
			fb.deferred = append(fb.deferred, i)
		default:
			out[de.d.ID] = f
		}
	}
	return nil
}

// intern returns ck as a string, the same string for the same key
// throughout the recompute.
func (fb *frameBuilder) intern(ck []byte) string {
	if k, ok := fb.keys[string(ck)]; ok {
		return k
	}
	k := string(ck)
	fb.keys[k] = k
	return k
}

// frame builds the frame of de; with oneSide, it returns nil for a frame
// with a peer of de's own side (see build).
func (fb *frameBuilder) frame(de *devEncoding, mr *policy.MemberRules, oneSide bool) (*frame, error) {
	d := de.d
	var rules []byte
	if d.Kind == store.KindNode {
		var err error
		if rules, err = json.Marshal(withMCPGrants(wireRules(mr.Rules), mr.MCP)); err != nil {
			return nil, err
		}
	}
	lk, shareable := listKeyOf(mr, de.node)
	l, ok := fb.lists[lk]
	switch {
	case ok && shareable:
		l.shared = true
	default:
		peers, err := fb.peers(de, mr, oneSide)
		if peers == nil || err != nil {
			return nil, err
		}
		l = &peerList{frags: peers, sum: peersSum(peers)}
		if shareable {
			fb.lists[lk] = l
		}
	}
	if old := fb.e.last[d.ID]; old != nil && old.self == de.self && bytes.Equal(old.rules, rules) && old.peersSum == l.sum {
		return old, nil
	}
	f := &frame{self: de.self, peers: l.frags, peersSum: l.sum, list: l, rules: rules}
	f.sealPeers()
	return f, nil
}

// peers returns de's peer entries; with oneSide, nil for a frame with a
// peer of de's own side (see build).
func (fb *frameBuilder) peers(de *devEncoding, mr *policy.MemberRules, oneSide bool) ([]*fragment, error) {
	peers := make([]*fragment, 0, len(mr.Peers))
	// Peers, Uses and Access are all sorted by member ID: walk them
	// together. The IDs in them are the same strings, so testing for
	// equality first mostly compares two addresses.
	ui, ai := 0, 0
	for pi, pid := range mr.Peers {
		var models []string
		for ui < len(mr.Uses) && mr.Uses[ui].Node != pid && mr.Uses[ui].Node < pid {
			ui++
		}
		if ui < len(mr.Uses) && mr.Uses[ui].Node == pid {
			models = mr.Uses[ui].Models
		}
		var access []policy.ModelAccess
		for de.node && ai < len(mr.Access) && mr.Access[ai].Caller != pid && mr.Access[ai].Caller < pid {
			ai++
		}
		if de.node && ai < len(mr.Access) && mr.Access[ai].Caller == pid {
			access = mr.Access[ai].Access
		}
		p := fb.devs[mr.PeerIndex()[pi]]
		if oneSide && p.node == de.node {
			return nil, nil
		}
		frag, err := fb.peer(p, models, access, mcpViewOf(mr, pid), p.node && !de.node)
		if err != nil {
			return nil, err
		}
		peers = append(peers, frag)
	}
	return peers, nil
}

// listKey identifies a viewer's peer entries within one recompute by the
// slices of the compiled policy they come from: the compiler shares one
// slice among members that see the same (a class of callers, nodes
// serving the same models).
type listKey struct {
	peers  *string
	uses   *policy.NodeModels
	access *policy.CallerAccess
	n      [3]int
	node   bool
}

// listKeyOf returns the key of mr's peer entries, and whether it may
// share them: not when it has an MCP part (per member, not shared).
func listKeyOf(mr *policy.MemberRules, node bool) (listKey, bool) {
	k := listKey{peers: unsafe.SliceData(mr.Peers), uses: unsafe.SliceData(mr.Uses), n: [3]int{len(mr.Peers), len(mr.Uses)}, node: node}
	if node { // a person's device is told nothing of access
		k.access, k.n[2] = unsafe.SliceData(mr.Access), len(mr.Access)
	}
	return k, mr.MCP == nil && len(mr.Peers) > 0
}

// peerList is a list of peer entries and their digest, shared by the
// frames that list the same. The peers of a list that several frames
// share are joined into one piece of JSON when first written.
type peerList struct {
	frags  []*fragment
	sum    [sha256.Size]byte
	shared bool // set while building, read only after
	once   sync.Once
	joined []byte
}

// join returns the entries joined by commas, computed once.
func (l *peerList) join() []byte {
	l.once.Do(func() {
		n := len(l.frags)
		for _, p := range l.frags {
			n += len(p.json)
		}
		b := make([]byte, 0, n)
		for i, p := range l.frags {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, p.json...)
		}
		l.joined = b
	})
	return l.joined
}

// peer returns the encoding of device p as one viewer sees it, reusing
// an earlier encoding of the same view.
func (fb *frameBuilder) peer(p *devEncoding, models []string, access []policy.ModelAccess, mcp mcpView, keepAlive bool) (*fragment, error) {
	if id := newViewID(models, access, mcp, keepAlive); id != fb.last || !fb.keyed {
		fb.ck, fb.last, fb.keyed = viewKey(fb.ck[:0], models, access, mcp, keepAlive), id, true
		fb.key = fb.intern(fb.ck)
	}
	if p.lastFrag != nil && p.lastKey == fb.key {
		p.lastKey, p.lastGen = fb.key, fb.e.gen // the same string from now on: compared by address
		return p.lastFrag, nil
	}
	if v, ok := p.views[fb.key]; ok {
		p.remember(v, fb.e.gen)
		return v.f, nil
	}
	d := p.d
	wp := wire.Peer{Key: p.key, Addresses: Addresses(d), Endpoints: d.Endpoints, Identity: fb.s.identity(d),
		Models: slices.Sorted(slices.Values(models)), APIs: modelAPIs(d, models), Access: wireAccess(access)}
	mcp.apply(&wp)
	if keepAlive {
		wp.KeepAlive = nodeKeepAlive
	}
	f, err := p.peerFragment(&wp)
	if err != nil {
		return nil, err
	}
	v := &viewFragment{key: fb.key, f: f}
	p.views[v.key] = v
	p.remember(v, fb.e.gen)
	return f, nil
}
