package wire

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on the contents of wire messages.
const (
	MaxPeers          = 100_000
	MaxAddresses      = 4  // mesh addresses per device
	MaxEndpoints      = 16 // underlay endpoints per peer
	MaxRelays         = 8  // relays in a netmap
	maxRelayURLLen    = 512
	MaxModels         = 256 // models per node
	MaxNameLen        = 128 // model names, tags, groups
	MaxHostnameLen    = 63
	MaxGroups         = 512
	MaxKeepAliveSecs  = 3600
	maxLoginLen       = 320 // RFC 5321 path length, rounded
	promptKeyLen      = 32  // an X25519 public key (mesh/promptkey)
	maxSHA256HexChars = 64
)

// Validate checks the netmap for what a device must never apply: missing or
// duplicate keys, addresses that are invalid or claimed twice (which would
// make the source address of a packet ambiguous), and references out of
// range. It returns the first problem found.
func (nm *NetMap) Validate() error {
	if nm.Version < MinVersion {
		return fmt.Errorf("version %d: the coordinator speaks moat protocol %d and this build needs %d or later; upgrade the coordinator", nm.Version, nm.Version, MinVersion)
	}
	if nm.Self.Key.IsZero() {
		return errors.New("self.key: missing")
	}
	if len(nm.Self.Addresses) == 0 {
		return errors.New("self.addresses: a device needs at least one mesh address")
	}
	if len(nm.Peers) > MaxPeers {
		return fmt.Errorf("peers: %d peers, over the limit of %d", len(nm.Peers), MaxPeers)
	}
	owner := make(map[netip.Addr]string, 2*len(nm.Peers)+2)
	if err := claimAddrs(owner, nm.Self.Addresses, "self"); err != nil {
		return err
	}
	if err := nm.Self.Identity.validate("self.identity"); err != nil {
		return err
	}
	if err := validateRelays(nm.Relays); err != nil {
		return err
	}
	keys := make(map[[32]byte]int, len(nm.Peers))
	keys[nm.Self.Key.Raw()] = -1
	grants := 0
	if nm.Rules != nil {
		grants = len(nm.Rules.Grants)
	}
	for i := range nm.Peers {
		p := &nm.Peers[i]
		where := fmt.Sprintf("peers[%d]", i)
		if p.Key.IsZero() {
			return fmt.Errorf("%s.key: missing", where)
		}
		if j, dup := keys[p.Key.Raw()]; dup {
			if j < 0 {
				return fmt.Errorf("%s.key: the device's own key listed as a peer", where)
			}
			return fmt.Errorf("%s.key: same key as peers[%d]", where, j)
		}
		keys[p.Key.Raw()] = i
		if err := p.validate(where, owner, grants); err != nil {
			return err
		}
	}
	return nm.validateMCP()
}

func (p *Peer) validate(where string, owner map[netip.Addr]string, grants int) error {
	if len(p.Addresses) == 0 {
		return fmt.Errorf("%s.addresses: a peer needs at least one mesh address", where)
	}
	if err := claimAddrs(owner, p.Addresses, where); err != nil {
		return err
	}
	if len(p.Endpoints) > MaxEndpoints {
		return fmt.Errorf("%s.endpoints: %d, over the limit of %d", where, len(p.Endpoints), MaxEndpoints)
	}
	for j, ep := range p.Endpoints {
		if !ep.IsValid() || ep.Port() == 0 {
			return fmt.Errorf("%s.endpoints[%d]: %q is not an address with a port", where, j, ep)
		}
	}
	if p.KeepAlive < 0 || p.KeepAlive > MaxKeepAliveSecs {
		return fmt.Errorf("%s.keepAlive: %d seconds, want 0 to %d", where, p.KeepAlive, MaxKeepAliveSecs)
	}
	if err := checkNames(where+".models", p.Models, MaxModels); err != nil {
		return err
	}
	if err := checkAPIs(where, p.APIs, p.Models); err != nil {
		return err
	}
	if err := checkAccess(where, p.Access, grants); err != nil {
		return err
	}
	return p.Identity.validate(where + ".identity")
}

// checkAPIs accepts API families (any name: a newer node's family is
// ignored, not refused) for models the peer lists.
func checkAPIs(where string, apis map[string]string, models []string) error {
	if len(apis) == 0 {
		return nil
	}
	listed := make(map[string]bool, len(models))
	for _, m := range models {
		listed[m] = true
	}
	for m, api := range apis {
		if !listed[m] {
			return fmt.Errorf("%s.apis: model %q is not in models", where, m)
		}
		if err := checkName(api); err != nil {
			return fmt.Errorf("%s.apis[%q]: %w", where, m, err)
		}
	}
	return nil
}

func (id *Identity) validate(where string) error {
	if len(id.Login) > maxLoginLen {
		return fmt.Errorf("%s.login: longer than %d characters", where, maxLoginLen)
	}
	if len(id.DeviceName) > MaxHostnameLen*4 {
		return fmt.Errorf("%s.deviceName: longer than %d characters", where, MaxHostnameLen*4)
	}
	if err := checkNames(where+".groups", id.Groups, MaxGroups); err != nil {
		return err
	}
	if n := len(id.PromptKey); n != 0 && n != promptKeyLen {
		return fmt.Errorf("%s.promptKey: %d bytes, want %d", where, n, promptKeyLen)
	}
	return checkNames(where+".tags", id.Tags, MaxGroups)
}

// claimAddrs records addrs as owned by who, refusing invalid addresses and
// any address another member already holds.
func claimAddrs(owner map[netip.Addr]string, addrs []netip.Addr, who string) error {
	if len(addrs) > MaxAddresses {
		return fmt.Errorf("%s.addresses: %d, over the limit of %d", who, len(addrs), MaxAddresses)
	}
	for i, a := range addrs {
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.Zone() != "" {
			return fmt.Errorf("%s.addresses[%d]: %q is not a usable unicast address", who, i, a)
		}
		a = a.Unmap()
		if prev, dup := owner[a]; dup {
			return fmt.Errorf("%s.addresses[%d]: %s is already the address of %s", who, i, a, prev)
		}
		owner[a] = who
	}
	return nil
}

func checkNames(where string, names []string, max int) error {
	if len(names) > max {
		return fmt.Errorf("%s: %d entries, over the limit of %d", where, len(names), max)
	}
	for i, n := range names {
		if err := checkName(n); err != nil {
			return fmt.Errorf("%s[%d]: %w", where, i, err)
		}
	}
	return nil
}

// checkName accepts the names moat uses for models, tags and groups:
// 1–128 printable characters without spaces or quotes.
func checkName(n string) error {
	if n == "" || len(n) > MaxNameLen {
		return fmt.Errorf("name %q: want 1 to %d characters", n, MaxNameLen)
	}
	if strings.ContainsFunc(n, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '"' || r == '\\' }) {
		return fmt.Errorf("name %q: has spaces, quotes or control characters", n)
	}
	return nil
}

// Validate checks an enrollment request.
func (r *EnrollRequest) Validate() error {
	if r.Key.IsZero() {
		return errors.New("key: missing; send the node's WireGuard public key")
	}
	if err := checkHostname(r.Hostname); err != nil {
		return err
	}
	if len(r.Endpoints) > MaxEndpoints {
		return fmt.Errorf("endpoints: %d, over the limit of %d", len(r.Endpoints), MaxEndpoints)
	}
	return checkModelAds(r.Models)
}

// checkModelAds checks the models a node says it serves.
func checkModelAds(models []ModelAd) error {
	if len(models) > MaxModels {
		return fmt.Errorf("models: %d, over the limit of %d", len(models), MaxModels)
	}
	for i, m := range models {
		if err := checkName(m.Name); err != nil {
			return fmt.Errorf("models[%d].name: %w", i, err)
		}
		if m.SHA256 != "" && !isHex(m.SHA256, maxSHA256HexChars) {
			return fmt.Errorf("models[%d].sha256: want 64 lowercase hex characters", i)
		}
		if m.API != "" {
			if err := checkName(m.API); err != nil {
				return fmt.Errorf("models[%d].api: %w", i, err)
			}
		}
	}
	return nil
}

// checkHostname accepts what people name their machines ("Alice's
// MacBook"): 1–63 bytes of printable UTF-8. Whatever shows it must escape it.
func checkHostname(h string) error {
	if h == "" || len(h) > MaxHostnameLen {
		return fmt.Errorf("hostname: want 1 to %d bytes, got %d", MaxHostnameLen, len(h))
	}
	if !utf8.ValidString(h) || strings.ContainsFunc(h, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return fmt.Errorf("hostname %q: has control or non-printable characters", h)
	}
	return nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// validateRelays checks that each relay URL is an https URL (http only
// for a loopback host, as for the coordinator).
func validateRelays(rs []Relay) error {
	if len(rs) > MaxRelays {
		return fmt.Errorf("relays: %d, over the limit of %d", len(rs), MaxRelays)
	}
	for i, r := range rs {
		u, err := url.Parse(r.URL)
		ok := err == nil && len(r.URL) <= maxRelayURLLen && u.Host != "" &&
			(u.Scheme == "https" || u.Scheme == "http" && isLoopbackHost(u.Hostname()))
		if !ok {
			return fmt.Errorf("relays[%d].url: %q is not https://HOST[:PORT]/PATH", i, r.URL)
		}
	}
	return nil
}

func isLoopbackHost(h string) bool {
	a, err := netip.ParseAddr(h)
	return h == "localhost" || err == nil && a.IsLoopback()
}
