package netmap

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// TailnetOptions say what nodes on a tailnet may map their tailnet
// callers to (wire.TailnetMap): the organisation's opt-in.
type TailnetOptions struct {
	// Logins maps a tailnet login name to the person with that email.
	Logins bool
	// Tags are the tailnet tags a tagged tailnet device may count as.
	Tags []string
}

// Member IDs of the stand-ins the policy is compiled for, apart from
// devices' IDs.
const (
	personPrefix = "person:"
	tagPrefix    = "tailnet-tag:"
)

// Tailnet computes the tailnet map of node, a node of the snapshot that
// serves models on a tailnet: its rules, and every person (with
// opt.Logins) and tag of opt.Tags that may use one of the models on it.
// Disabled people and people without an email are never in it. The
// policy is compiled for the node and a stand-in member per person and
// tag, apart from the mesh: nothing here reaches other devices' netmaps.
func (s *Snapshot) Tailnet(node *store.Device, models []wire.ModelAd, opt TailnetOptions) (*wire.TailnetMap, error) {
	served := *node
	served.Models = models
	members := []policy.Member{s.Member(&served)}
	people := s.tailnetPeople(opt.Logins)
	for _, u := range people {
		members = append(members, policy.Member{ID: personPrefix + u.ID,
			Identity: policy.Identity{Login: strings.ToLower(u.Email), Groups: u.Groups, Admin: u.Admin}})
	}
	tags := slices.Sorted(slices.Values(opt.Tags))
	tags = slices.Compact(tags)
	for _, t := range tags {
		members = append(members, policy.Member{ID: tagPrefix + t, Identity: policy.Identity{Tags: []string{t}}})
	}
	compiled, err := s.Policy.Compile(members)
	if err != nil {
		return nil, fmt.Errorf("compile policy: %w", err)
	}
	mr := compiled.Member(node.ID)
	m := &wire.TailnetMap{Version: wire.Version, Self: s.identity(node), Rules: wireRules(mr.Rules)}
	for _, u := range people {
		if access := wireAccess(mr.AccessOf(personPrefix + u.ID)); len(access) > 0 {
			m.People = append(m.People, wire.TailnetPerson{Access: access, Identity: wire.Identity{UserID: u.ID,
				Login: strings.ToLower(u.Email), Name: u.Name, Groups: u.Groups, Admin: u.Admin, PromptKey: s.PromptKeys[u.ID]}})
		}
	}
	for _, t := range tags {
		if access := wireAccess(mr.AccessOf(tagPrefix + t)); len(access) > 0 {
			m.Tags = append(m.Tags, wire.TailnetTag{Tag: t, Access: access})
		}
	}
	return m, nil
}

// tailnetPeople are the people a tailnet login may name (none without
// logins): enabled, with an email, sorted by it. An email that two people
// share (signed in through two issuers) names neither: a login must name
// one person or none.
func (s *Snapshot) tailnetPeople(logins bool) []*store.User {
	if !logins {
		return nil
	}
	byEmail := map[string][]*store.User{}
	for _, u := range s.Users {
		if !u.Disabled && u.Email != "" {
			e := strings.ToLower(u.Email)
			byEmail[e] = append(byEmail[e], u)
		}
	}
	var out []*store.User
	for _, e := range slices.Sorted(maps.Keys(byEmail)) {
		if us := byEmail[e]; len(us) == 1 {
			out = append(out, us[0])
		}
	}
	return out
}
