package tailnet

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"tailscale.com/client/tailscale/apitype"
	"tailscale.com/tailcfg"

	"github.com/moatmesh/moat/mesh/wire"
)

// DefaultCapName is the app capability under which a tailnet's policy
// may tell moat nodes more about a caller: in a Tailscale policy,
//
//	"grants": [{"src": ["group:ml"], "dst": ["tag:gpu"],
//	            "app": {"moatmesh.com/cap/moat": [{"groups": ["ml"]}]}}]
//
// makes every member of the tailnet's group:ml a member of the IdP group
// "ml" for moat's policy (matched by "idp:ml").
const DefaultCapName = "moatmesh.com/cap/moat"

// capValue is one value of the moat app capability.
type capValue struct {
	// Groups are group names the caller belongs to, matched in moat's
	// policy as "idp:NAME".
	Groups []string `json:"groups"`
}

// errUnknown is a WhoIs answer moat cannot name: fail closed.
var errUnknown = errors.New("tailnet caller has neither tags nor a login name")

// identify maps the tailnet's WhoIs answer for a caller to the identity
// moat's policy and audit see: a tagged node is its tags and nothing else
// (as in Tailscale's own policy), anyone else is the person of the login
// name, with the groups the moat app capability grants them. An expired
// node (flagged by the control server, or past its key expiry on this
// node's clock) is refused.
func identify(w *apitype.WhoIsResponse, capName string) (wire.Identity, error) {
	if w == nil || w.Node == nil {
		return wire.Identity{}, errUnknown
	}
	n := w.Node
	if n.Expired || (!n.KeyExpiry.IsZero() && !time.Now().Before(n.KeyExpiry)) {
		return wire.Identity{}, fmt.Errorf("tailnet node %s has expired", n.Name)
	}
	id := wire.Identity{
		DeviceID:   wire.DeviceID("tailnet:" + string(n.StableID)),
		DeviceName: deviceName(n),
		Expiry:     n.KeyExpiry,
	}
	if n.IsTagged() {
		id.Tags = slices.Sorted(slices.Values(n.Tags))
		return id, nil
	}
	if w.UserProfile == nil || w.UserProfile.LoginName == "" {
		return wire.Identity{}, errUnknown
	}
	login := strings.ToLower(w.UserProfile.LoginName)
	id.UserID, id.Login, id.Name = "tailnet:"+login, login, w.UserProfile.DisplayName
	groups, err := capGroups(w.CapMap, capName)
	if err != nil {
		return wire.Identity{}, err
	}
	id.Groups = groups
	return id, nil
}

// callerOf is the caller a WhoIs answer names.
func callerOf(w *apitype.WhoIsResponse, capName string) (*caller, error) {
	id, err := identify(w, capName)
	if err != nil {
		return nil, err
	}
	c := &caller{key: w.Node.Key, id: id}
	for _, p := range w.Node.Addresses {
		c.addrs = append(c.addrs, p.Addr())
	}
	return c, nil
}

// capGroups are the groups the moat app capability names, sorted, each
// once.
func capGroups(caps tailcfg.PeerCapMap, capName string) ([]string, error) {
	vals, err := tailcfg.UnmarshalCapJSON[capValue](caps, tailcfg.PeerCapability(capName))
	if err != nil {
		return nil, fmt.Errorf("tailnet app capability %s: %w", capName, err)
	}
	var groups []string
	for _, v := range vals {
		groups = append(groups, v.Groups...)
	}
	slices.Sort(groups)
	return slices.Compact(groups), nil
}

// deviceName is the node's short MagicDNS name, else its host name.
func deviceName(n *tailcfg.Node) string {
	if name, _, _ := strings.Cut(n.Name, "."); name != "" {
		return name
	}
	if n.Hostinfo.Valid() {
		return n.Hostinfo.Hostname()
	}
	return ""
}
