package policy

import (
	"math/bits"
	"slices"
	"strings"
)

const (
	autogroupMember = "autogroup:member" // every person signed in
	autogroupAdmin  = "autogroup:admin"  // people the coordinator marks as admins
)

// Identity is who is asking, as the policy sees them.
//
// A device with tags is its tags and nothing else: its login, IdP groups
// and admin flag are ignored, as a shared machine is not a person.
type Identity struct {
	Login  string   `json:"login,omitempty"`  // the person's login (email), matched without regard to case
	Groups []string `json:"groups,omitempty"` // IdP group names, without "idp:"; matched by "idp:NAME"
	Tags   []string `json:"tags,omitempty"`   // "tag:NAME"
	Admin  bool     `json:"admin,omitempty"`  // matched by autogroup:admin
	// MFAMethod is how the caller's last MFA was proved (RFC 8176:
	// "hwk", "swk", "otp", "mfa"), for Explain; "" means any factor.
	MFAMethod string `json:"mfaMethod,omitempty"`
}

// String names the identity the way explanations and tests do.
func (id *Identity) String() string {
	switch {
	case len(id.Tags) > 0:
		return strings.Join(id.Tags, ",")
	case id.Login != "":
		return id.Login
	}
	return "(nobody)"
}

// principals returns every name a grant's src may use to match id: its
// login, IdP groups, autogroups and the policy groups holding any of them.
func (p *Policy) principals(id *Identity) []string {
	if len(id.Tags) > 0 {
		return id.Tags
	}
	if id.Login == "" {
		return nil // unknown people match nothing: fail closed
	}
	base := []string{strings.ToLower(id.Login), autogroupMember}
	if id.Admin {
		base = append(base, autogroupAdmin)
	}
	for _, g := range id.Groups {
		base = append(base, "idp:"+g)
	}
	out := base
	var groups []int
	for _, b := range base {
		groups = append(groups, p.groupsOf[b]...)
	}
	slices.Sort(groups)
	for _, g := range slices.Compact(groups) {
		out = append(out, p.groupNames[g])
	}
	return out
}

// grantSet is a set of grant indices.
type grantSet []uint64

func newGrantSet(n int) grantSet       { return make(grantSet, (n+63)/64) }
func (s grantSet) add(i int)           { s[i/64] |= 1 << (i % 64) }
func (s grantSet) has(i int) bool      { return s[i/64]&(1<<(i%64)) != 0 }
func (s grantSet) key() string         { return string(bitsBytes(s)) }
func (s grantSet) each(fn func(i int)) { eachBit(s, fn) }

func eachBit(s []uint64, fn func(i int)) {
	for w, word := range s {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			fn(w*64 + b)
			word &= word - 1
		}
	}
}

func bitsBytes(s []uint64) []byte {
	b := make([]byte, 0, len(s)*8)
	for _, w := range s {
		for i := range 8 {
			b = append(b, byte(w>>(8*i)))
		}
	}
	return b
}

// grantsFor returns the grants whose src matches id.
func (p *Policy) grantsFor(id *Identity) grantSet {
	set := newGrantSet(len(p.Grants))
	for _, pr := range p.principals(id) {
		for _, g := range p.bySrc[pr] {
			set.add(g)
		}
	}
	return set
}

// index builds the lookup structures evaluation uses. It runs once the
// policy is known to be valid (in particular, free of group cycles).
func (p *Policy) index() {
	p.groupNames = sortedKeys(p.Groups)
	p.groupsOf = map[string][]int{}
	for gi, g := range p.groupNames {
		for _, leaf := range p.leaves(g, map[string]bool{}, nil) {
			if l := p.groupsOf[leaf]; len(l) == 0 || l[len(l)-1] != gi {
				p.groupsOf[leaf] = append(l, gi)
			}
		}
	}
	p.bySrc = map[string][]int{}
	for i, g := range p.Grants {
		for _, s := range g.Src {
			key := principalKey(s)
			if l := p.bySrc[key]; len(l) == 0 || l[len(l)-1] != i {
				p.bySrc[key] = append(l, i)
			}
		}
	}
	p.rank = make([]int, len(p.Grants))
	for i := range p.rank {
		p.rank[i] = i
	}
	slices.SortStableFunc(p.rank, func(a, b int) int { return compareGenerosity(p.Grants[a].Limits, p.Grants[b].Limits) })
}

// leaves returns the non-group members of group g, directly or through
// nested groups, as principal keys. Each nested group is visited once
// (seen), however many paths lead to it.
func (p *Policy) leaves(g string, seen map[string]bool, out []string) []string {
	for _, m := range p.Groups[g] {
		if strings.HasPrefix(m, "group:") {
			if !seen[m] {
				seen[m] = true
				out = p.leaves(m, seen, out)
			}
		} else {
			out = append(out, principalKey(m))
		}
	}
	return out
}

// principalKey is how a src or group entry is looked up: logins ignore case.
func principalKey(s string) string {
	if strings.Contains(s, "@") && !strings.Contains(s, ":") {
		return strings.ToLower(s)
	}
	return s
}
