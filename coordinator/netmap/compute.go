package netmap

import (
	"crypto/sha256"
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"
	"time"
	"unsafe"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// nodeKeepAlive is the persistent keepalive towards nodes, in seconds, so
// that NAT mappings stay open for callers.
const nodeKeepAlive = 25

// Snapshot is everything netmaps are computed from, read from the store
// at one moment. It is also how the web UI sees the mesh.
type Snapshot struct {
	// Devices; in the snapshots of recomputes (Config.Updated), their
	// LastSeen may be older than the store's (see devices.go).
	Devices []*store.Device
	Users   map[string]*store.User // by ID
	// PromptKeys are people's public prompt keys by user ID; a person
	// without one (not made yet, or erased) has no prompt kept by nodes.
	PromptKeys map[string][]byte
	Policy     *policy.Policy
	Now        time.Time
}

// Live reports whether d takes part in the mesh at the snapshot's time
// (see store.Device.Liveness).
func (s *Snapshot) Live(d *store.Device) bool {
	return d.Liveness(s.Users[d.UserID], s.Now) == store.DeviceLive
}

// identity is what the mesh is told about the person or node behind d.
func (s *Snapshot) identity(d *store.Device) wire.Identity {
	id := wire.Identity{
		Tags: d.Tags, DeviceID: wire.DeviceID(d.ID), DeviceName: d.Hostname,
		LastMFA: d.LastMFA, MFAMethod: d.MFAMethod, Expiry: d.Expiry,
	}
	if u := s.Users[d.UserID]; u != nil && d.Kind != store.KindNode {
		id.UserID, id.Login, id.Name, id.Groups, id.Admin = u.ID, u.Email, u.Name, u.Groups, u.Admin
		id.PromptKey = s.PromptKeys[u.ID]
	}
	return id
}

// Member is d as the policy compiler sees it.
func (s *Snapshot) Member(d *store.Device) policy.Member {
	m := policy.Member{ID: d.ID, Addresses: Addresses(d)}
	if d.Kind == store.KindNode {
		m.Tags = d.Tags
		for _, ad := range d.Models {
			if ad.API == wire.APIMCP {
				m.MCP = append(m.MCP, ad.Name)
				continue
			}
			m.Models = append(m.Models, ad.Name)
			if ad.SHA256 != "" {
				if m.Pins == nil {
					m.Pins = map[string]string{}
				}
				m.Pins[ad.Name] = ad.SHA256
			}
		}
	} else if u := s.Users[d.UserID]; u != nil {
		m.Login, m.Groups, m.Admin = u.Email, u.Groups, u.Admin
	}
	return m
}

// Addresses returns d's mesh addresses, IPv4 first.
func Addresses(d *store.Device) []netip.Addr {
	var out []netip.Addr
	for _, a := range []netip.Addr{d.IPv4, d.IPv6} {
		if a.IsValid() {
			out = append(out, a)
		}
	}
	return out
}

// fragment is one encoded JSON value and its digest; for a peer entry,
// also the device it describes. Fragments are shared between frames and
// recomputes: never change one.
type fragment struct {
	json   []byte
	digest [sha256.Size]byte
	device string
}

func newFragment(v any) (*fragment, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &fragment{json: b, digest: sha256.Sum256(b)}, nil
}

// viewID identifies a view of a peer within one recompute by the slices
// the compiled policy shares between viewers: equal IDs, equal views.
type viewID struct {
	models    *string
	access    *policy.ModelAccess
	servers   *string
	mcpAccess *policy.MCPAccess
	n         [4]int
	keepAlive bool
}

func newViewID(models []string, access []policy.ModelAccess, mcp mcpView, keepAlive bool) viewID {
	return viewID{unsafe.SliceData(models), unsafe.SliceData(access), unsafe.SliceData(mcp.servers), unsafe.SliceData(mcp.access),
		[4]int{len(models), len(access), len(mcp.servers), len(mcp.access)}, keepAlive}
}

// viewKey appends the key of a view of a peer: everything a viewer is
// told about it beyond the peer's own data. Every part is length-prefixed:
// names may contain any separator.
func viewKey(ck []byte, models []string, access []policy.ModelAccess, mcp mcpView, keepAlive bool) []byte {
	for _, m := range models {
		ck = appendKeyPart(ck, m)
	}
	ck = append(ck, '|')
	for _, a := range access {
		ck = strconv.AppendInt(appendKeyPart(ck, a.Model), int64(a.Grant), 10)
	}
	ck = mcp.appendKey(ck)
	if keepAlive {
		ck = append(ck, '|', 'k')
	}
	return ck
}

// modelAPIs is the API family of each of models as node p advertised it.
func modelAPIs(p *store.Device, models []string) map[string]string {
	var out map[string]string
	for _, ad := range p.Models {
		if ad.API != "" && ad.API != wire.APIMCP && slices.Contains(models, ad.Name) {
			if out == nil {
				out = map[string]string{}
			}
			out[ad.Name] = ad.API
		}
	}
	return out
}

// appendKeyPart appends v to a cache key as LEN:v, so that no choice of
// names can make two different views share a key.
func appendKeyPart(b []byte, v string) []byte {
	b = strconv.AppendInt(b, int64(len(v)), 10)
	return append(append(b, ':'), v...)
}
