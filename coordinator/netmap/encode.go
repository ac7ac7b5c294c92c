package netmap

import (
	"crypto/sha256"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// encoding keeps what one recompute computed for the next, so that a
// recompute does only the work its change calls for:
//   - the policy is compiled again only when the policy or a member (as
//     the compiler sees it) changed;
//   - a peer entry is encoded again only when the device behind it, or
//     how the viewer sees it (models, access, MCP), changed; every netmap
//     that shows the same view of a device shares one encoding;
//   - a device's frame is kept, digest and all, when none of its pieces
//     changed.
//
// What it computes is always what a fresh encoding computes from the
// same snapshot (the property test in encode_test.go checks it). It is
// safe for one recompute at a time.
type encoding struct {
	mu  sync.Mutex
	gen uint64 // of the recompute in progress
	// devices holds the encodings of each device, by fingerprint (all of
	// the device's and its owner's data a netmap shows).
	devices map[string]*devEncoding
	last    map[string]*frame // last recompute's, by device ID
	fp      []byte            // scratch for fingerprints
	// The last compile, reused while its inputs stay the same.
	policy   *policy.Policy
	members  []policy.Member
	compiled *policy.Compiled
}

// devEncoding is one device's encoded pieces: its own part of its
// netmap, and each distinct view of it as a peer.
type devEncoding struct {
	gen   uint64 // of the last recompute that used it
	node  bool
	d     *store.Device
	key   key.Public
	self  *fragment
	head  []byte                   // of its peer entries (see peerjson.go); nil until one is encoded
	views map[string]*viewFragment // by view key (viewKey)
	// The view last asked for, at hand: most viewers share one. lastGen
	// is the recompute that last used it.
	lastKey  string
	lastFrag *fragment
	lastGen  uint64
}

// peerFragment encodes wp, an entry for de's device, reusing the head
// of its entries.
func (de *devEncoding) peerFragment(wp *wire.Peer) (*fragment, error) {
	if de.head == nil {
		h, err := peerHead(wp)
		if err != nil {
			return nil, err
		}
		de.head = h
	}
	b, err := appendPeerTail(append(make([]byte, 0, len(de.head)+128), de.head...), wp)
	if err != nil {
		return nil, err
	}
	return &fragment{json: b, digest: sha256.Sum256(b), device: de.d.ID}, nil
}

// remember makes v the view at hand, first marking the one it replaces
// as used if it was.
func (de *devEncoding) remember(v *viewFragment, gen uint64) {
	de.keepLast(gen)
	v.gen, de.lastKey, de.lastFrag, de.lastGen = gen, v.key, v.f, gen
}

// keepLast marks the view at hand as used when recompute gen used it.
func (de *devEncoding) keepLast(gen uint64) {
	if de.lastFrag != nil && de.lastGen == gen {
		de.views[de.lastKey].gen = gen
	}
}

type viewFragment struct {
	key string
	gen uint64
	f   *fragment
}

func newEncoding() *encoding {
	return &encoding{devices: map[string]*devEncoding{}, last: map[string]*frame{}}
}

// frames computes the netmap of every live device of s that want names
// (all of them when want is nil), and returns the set of live devices
// and the earliest future expiry, when a recompute will be due.
func (e *encoding) frames(s *Snapshot, want map[string]bool) (map[string]*frame, map[string]bool, time.Time, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gen++
	devs := make(map[string]*devEncoding, len(s.Devices))
	members := make([]policy.Member, 0, len(s.Devices))
	var nextExpiry time.Time
	for _, d := range s.Devices {
		if !s.Live(d) {
			continue
		}
		de, err := e.device(s, d)
		if err != nil {
			return nil, nil, time.Time{}, err
		}
		devs[d.ID] = de
		members = append(members, s.Member(d))
		if !d.Expiry.IsZero() && (nextExpiry.IsZero() || d.Expiry.Before(nextExpiry)) {
			nextExpiry = d.Expiry
		}
	}
	compiled, err := e.compile(s.Policy, members)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	out := make(map[string]*frame, min(len(devs), len(want)))
	if want == nil {
		out = make(map[string]*frame, len(devs))
	}
	live := make(map[string]bool, len(devs))
	byPos := make([]*devEncoding, len(compiled.Members))
	todo := make([]int, 0, len(compiled.Members))
	for i := range compiled.Members {
		de := devs[compiled.Members[i].ID]
		byPos[i], live[de.d.ID] = de, true
		if want == nil || want[de.d.ID] {
			todo = append(todo, i)
		}
	}
	if err := e.build(s, compiled, byPos, todo, out); err != nil {
		return nil, nil, time.Time{}, err
	}
	e.last = out
	e.sweep()
	return out, live, nextExpiry, nil
}

// device returns d's encodings, kept from an earlier recompute when
// nothing a netmap shows of d changed.
func (e *encoding) device(s *Snapshot, d *store.Device) (*devEncoding, error) {
	e.fp = fingerprint(e.fp[:0], d, s.identity(d))
	fp := e.fp
	if de, ok := e.devices[string(fp)]; ok {
		de.gen, de.d = e.gen, d
		return de, nil
	}
	k, err := key.ParsePublic(d.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("device %s: stored key: %w", d.ID, err)
	}
	self, err := newFragment(wire.Self{Key: k, Addresses: Addresses(d), Identity: s.identity(d)})
	if err != nil {
		return nil, err
	}
	de := &devEncoding{gen: e.gen, node: d.Kind == store.KindNode, d: d, key: k, self: self, views: map[string]*viewFragment{}}
	e.devices[string(fp)] = de
	return de, nil
}

// compile compiles the policy for members, or returns the last result
// when neither changed.
func (e *encoding) compile(p *policy.Policy, members []policy.Member) (*policy.Compiled, error) {
	if e.compiled != nil && p == e.policy && reflect.DeepEqual(members, e.members) {
		return e.compiled, nil
	}
	e.policy, e.members, e.compiled = nil, nil, nil // garbage while the new one is built
	c, err := p.Compile(members)
	if err != nil {
		return nil, fmt.Errorf("compile policy: %w", err)
	}
	e.policy, e.members, e.compiled = p, members, c
	return c, nil
}

// sweep forgets the encodings the last recompute did not use.
func (e *encoding) sweep() {
	for fp, de := range e.devices {
		if de.gen != e.gen {
			delete(e.devices, fp)
			continue
		}
		de.keepLast(e.gen)
		for k, v := range de.views {
			if v.gen != e.gen {
				delete(de.views, k)
			}
		}
		if de.lastGen != e.gen {
			de.lastKey, de.lastFrag = "", nil
		}
	}
}

// fingerprint appends everything about d that a netmap shows (id is what
// it says about the person or node behind d): two devices with the same
// fingerprint are encoded the same. Every part is length-prefixed.
func fingerprint(b []byte, d *store.Device, id wire.Identity) []byte {
	b = appendKeyPart(b, d.PublicKey)
	if d.Kind == store.KindNode {
		b = append(b, 'n')
	}
	for _, a := range Addresses(d) {
		b = append(a.AppendTo(append(b, 'a')), ' ')
	}
	for _, ep := range d.Endpoints {
		b = append(ep.AppendTo(append(b, 'e')), ' ')
	}
	for _, ad := range d.Models {
		b = appendKeyPart(appendKeyPart(appendKeyPart(append(b, 'm'), ad.Name), ad.SHA256), ad.API)
	}
	b = appendKeyPart(appendKeyPart(appendKeyPart(append(b, 'i'), id.UserID), id.Login), id.Name)
	for _, g := range id.Groups {
		b = appendKeyPart(append(b, 'g'), g)
	}
	for _, t := range id.Tags {
		b = appendKeyPart(append(b, 't'), t)
	}
	if id.Admin {
		b = append(b, 'A')
	}
	b = appendKeyPart(appendKeyPart(b, string(id.DeviceID)), id.DeviceName)
	b = append(id.LastMFA.AppendFormat(b, time.RFC3339Nano), ' ')
	b = appendKeyPart(b, id.MFAMethod)
	b = append(id.Expiry.AppendFormat(b, time.RFC3339Nano), ' ')
	return appendKeyPart(b, string(id.PromptKey))
}
