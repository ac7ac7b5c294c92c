package wire

import (
	"fmt"
	"strings"
	"time"
)

// A node on a Tailscale or Headscale tailnet (node/tailnet) may be
// enrolled at a coordinator for its policy, people and audit while its
// traffic stays on the tailnet. It opens POST /api/v1/tailnet with a
// TailnetRequest and reads TailnetMaps from the answer, NDJSON like the
// netmap stream (empty lines are heartbeats): one at once, then one
// whenever what it says changes. The coordinator answers 403 with
// CodeTailnetOff unless the organisation opted in (see TailnetMap).

// CodeTailnetOff is the Error.Code of a tailnet stream the coordinator
// refuses because it does not map tailnet callers to people.
const CodeTailnetOff = "tailnet_off"

// TailnetRequest opens a tailnet node's stream.
type TailnetRequest struct {
	Version int `json:"version"`
	// Models are the models the node serves on its tailnet. They are not
	// advertised to the mesh (moat's clients cannot reach the node); the
	// policy decides, as for any node, which of them its tags may serve.
	Models []ModelAd `json:"models"`
}

// Validate checks a tailnet request.
func (r *TailnetRequest) Validate() error { return checkModelAds(r.Models) }

// TailnetMap is what a tailnet node enforces: its rules, and the people
// and tailnet tags the coordinator lets it map its tailnet callers to.
// Each one replaces the previous in full.
//
// A caller whose tailnet login name (lowercased) is a person's Login is
// that person, with the person's groups and access; a tagged tailnet
// device is the tags of it that Tags lists, with their access; any other
// caller is refused. The tailnet's control server vouches for login names
// and tags: the coordinator sends People only when the organisation opted
// in to that trust, and Tags only for the tags it named.
type TailnetMap struct {
	Version int       `json:"version"`
	Seq     uint64    `json:"seq"` // increases with every map sent on the stream
	Created time.Time `json:"created,omitzero"`
	// Self is the node as the coordinator knows it (its device ID, its
	// tags from the enrollment key).
	Self Identity `json:"self"`
	// Rules are the node's rules, as in a netmap: what Access entries
	// point into.
	Rules *NodeRules `json:"rules,omitempty"`
	// People are the people a tailnet login may name, sorted by Login.
	People []TailnetPerson `json:"people,omitempty"`
	// Tags are the tailnet tags the coordinator maps, sorted.
	Tags []TailnetTag `json:"tags,omitempty"`
}

// TailnetPerson is one person a tailnet caller may be: who they are at
// the coordinator (no device: the tailnet device is not one of moat's,
// and no LastMFA, which it cannot prove) and what they may use here.
type TailnetPerson struct {
	Identity Identity      `json:"identity"`
	Access   []ModelAccess `json:"access,omitempty"`
}

// TailnetTag is a tailnet tag ("tag:ci") that a tagged tailnet device
// counts as, and what a device with it may use here.
type TailnetTag struct {
	Tag    string        `json:"tag"`
	Access []ModelAccess `json:"access,omitempty"`
}

// Validate checks a tailnet map.
func (m *TailnetMap) Validate() error {
	if m.Version < MinVersion {
		return fmt.Errorf("version %d: this build needs moat protocol %d or later; upgrade the coordinator", m.Version, MinVersion)
	}
	if err := m.Self.validate("self"); err != nil {
		return err
	}
	grants := 0
	if m.Rules != nil {
		grants = len(m.Rules.Grants)
	}
	for i, p := range m.People {
		where := fmt.Sprintf("people[%d]", i)
		if p.Identity.Login == "" || p.Identity.Login != strings.ToLower(p.Identity.Login) {
			return fmt.Errorf("%s.identity.login: want a lowercase login, got %q", where, p.Identity.Login)
		}
		if err := p.Identity.validate(where + ".identity"); err != nil {
			return err
		}
		if err := checkAccess(where, p.Access, grants); err != nil {
			return err
		}
	}
	for i, t := range m.Tags {
		where := fmt.Sprintf("tags[%d]", i)
		if !strings.HasPrefix(t.Tag, "tag:") || checkName(t.Tag) != nil {
			return fmt.Errorf("%s.tag: %q is not a tag", where, t.Tag)
		}
		if err := checkAccess(where, t.Access, grants); err != nil {
			return err
		}
	}
	return nil
}

// checkAccess checks access entries against a map's grants.
func checkAccess(where string, access []ModelAccess, grants int) error {
	for j, a := range access {
		if a.Grant < 0 || a.Grant >= grants {
			return fmt.Errorf("%s.access[%d]: grant %d does not exist (there are %d)", where, j, a.Grant, grants)
		}
		if err := checkName(a.Model); err != nil {
			return fmt.Errorf("%s.access[%d].model: %w", where, j, err)
		}
	}
	return nil
}

// NextTailnet returns the next tailnet map of a tailnet stream, validated,
// with Next's rules.
func (s *StreamReader) NextTailnet() (*TailnetMap, error) {
	var m TailnetMap
	if err := s.next("tailnet stream", &m); err != nil {
		return nil, err
	}
	return &m, nil
}
