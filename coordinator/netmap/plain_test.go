package netmap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// plainNetmaps computes the netmaps of the live devices of s the plain
// way, sharing and keeping nothing: a fresh compile, then each netmap a
// wire.NetMap marshalled whole. It is the reference the kept and shared
// encoding must match, byte for byte (written with sequence number seq
// at time created).
func plainNetmaps(s *Snapshot, seq uint64, created time.Time) (map[string][]byte, error) {
	byID := map[string]*store.Device{}
	var members []policy.Member
	for _, d := range s.Devices {
		if s.Live(d) {
			byID[d.ID] = d
			members = append(members, s.Member(d))
		}
	}
	c, err := s.Policy.Compile(members)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for i := range c.Members {
		mr := &c.Members[i]
		nm, err := plainNetmap(s, byID, mr)
		if err != nil {
			return nil, err
		}
		nm.Version, nm.Seq, nm.Created = wire.Version, seq, created
		b, err := json.Marshal(nm)
		if err != nil {
			return nil, err
		}
		out[mr.ID] = append(b, '\n')
	}
	return out, nil
}

func plainNetmap(s *Snapshot, byID map[string]*store.Device, mr *policy.MemberRules) (*wire.NetMap, error) {
	d := byID[mr.ID]
	k, err := key.ParsePublic(d.PublicKey)
	if err != nil {
		return nil, err
	}
	node := d.Kind == store.KindNode
	nm := &wire.NetMap{Self: wire.Self{Key: k, Addresses: Addresses(d), Identity: s.identity(d)}, Peers: []wire.Peer{}}
	if node {
		nm.Rules = withMCPGrants(wireRules(mr.Rules), mr.MCP)
	}
	for _, pid := range mr.Peers {
		p := byID[pid]
		pk, err := key.ParsePublic(p.PublicKey)
		if err != nil {
			return nil, err
		}
		var models []string
		for _, u := range mr.Uses {
			if u.Node == pid {
				models = u.Models
			}
		}
		var access []policy.ModelAccess
		if node {
			access = mr.AccessOf(pid)
		}
		wp := wire.Peer{Key: pk, Addresses: Addresses(p), Endpoints: p.Endpoints, Identity: s.identity(p),
			Models: slices.Sorted(slices.Values(models)), APIs: modelAPIs(p, models), Access: wireAccess(access)}
		mcpViewOf(mr, pid).apply(&wp)
		if p.Kind == store.KindNode && !node {
			wp.KeepAlive = nodeKeepAlive
		}
		nm.Peers = append(nm.Peers, wp)
	}
	return nm, nil
}

// comparePlain describes the first difference between frames and the
// plain netmaps of the same devices.
func comparePlain(frames map[string]*frame, s *Snapshot) string {
	created := time.Unix(1700000000, 0).UTC()
	plain, err := plainNetmaps(s, 7, created)
	if err != nil {
		return err.Error()
	}
	for id, f := range frames {
		var b bytes.Buffer
		if err := f.writeTo(&b, 7, created, nil); err != nil {
			return err.Error()
		}
		if !bytes.Equal(b.Bytes(), plain[id]) {
			return fmt.Sprintf("netmap of %s differs from the plain one:\n got %s\nwant %s", id, b.Bytes(), plain[id])
		}
	}
	return ""
}
