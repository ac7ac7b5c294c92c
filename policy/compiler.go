package policy

import (
	"cmp"
	"hash/maphash"
	"net/netip"
	"slices"
)

// compiler holds the state of one Compile call.
type compiler struct {
	p   *Policy
	ms  []Member // sorted by ID
	out []MemberRules
	// chains[i][m] are the grants member i tries for model m, in order.
	// Members holding the same grants share one table.
	chains [][][]int
	// nodes counts the tagged members.
	nodes int
	// class[i] numbers member i's chain table: members of one class get
	// the same access everywhere, so it is computed once per class.
	class []int
	// netMembers[g] are the members matching network grant g.
	netMembers [][]int
	// peers[i] are the members i may exchange packets with (unsorted,
	// possibly repeated).
	peers [][]int
	// classSize[k] counts the members of class k; rep[k] is one of them;
	// classMembers[k] are all of them, in order.
	classSize, rep []int
	classMembers   [][]int
	// served[n] are the models node n may serve (see served); access[n][k]
	// is what members of class k may use there. Nodes serving the same
	// models share one access table, and its compiled access list (see
	// compiler_share.go).
	served [][]int
	access [][]classAccess
	tables map[string][]classAccess // by served models, for nodes not calling themselves
	lists  map[*classAccess]nodeAccess
	// classNodes[k] are the nodes whose models class k may use, in order:
	// a caller's model peers; classUses[k] are its Uses.
	classNodes [][]int
	classUses  [][]NodeModels
}

// classAccess is what the members of one class may use on one node.
type classAccess struct {
	access []ModelAccess
	names  []string
}

func newCompiler(p *Policy, ms []Member) *compiler {
	c := &compiler{
		p:          p,
		ms:         ms,
		out:        make([]MemberRules, len(ms)),
		chains:     make([][][]int, len(ms)),
		class:      make([]int, len(ms)),
		netMembers: make([][]int, len(p.Grants)),
		peers:      make([][]int, len(ms)),
	}
	cache := map[string][][]int{}
	classes := map[string]int{}
	for i := range ms {
		c.out[i].ID = ms[i].ID
		set := p.grantsFor(&ms[i].Identity)
		key := set.key()
		ch, ok := cache[key]
		if !ok {
			ch = p.chains(set)
			cache[key] = ch
			classes[key] = len(classes)
		}
		c.chains[i], c.class[i] = ch, classes[key]
		if c.class[i] == len(c.classSize) {
			c.classSize, c.rep, c.classMembers = append(c.classSize, 0), append(c.rep, i), append(c.classMembers, nil)
		}
		c.classSize[c.class[i]]++
		c.classMembers[c.class[i]] = append(c.classMembers[c.class[i]], i)
		if len(ms[i].Tags) > 0 {
			c.nodes++
		}
		set.each(func(g int) {
			if len(p.Grants[g].dst) > 0 {
				c.netMembers[g] = append(c.netMembers[g], i)
			}
		})
	}
	return c
}

// models computes, for every node, what it may serve and what each class
// of members may use there, and what each class uses: a caller's Uses and
// model peers are those of its class, computed once per class.
func (c *compiler) models() {
	c.served = make([][]int, len(c.ms))
	c.access = make([][]classAccess, len(c.ms))
	c.classNodes = make([][]int, len(c.classSize))
	c.classUses = make([][]NodeModels, len(c.classSize))
	for n := range c.ms {
		if len(c.ms[n].Tags) == 0 {
			continue
		}
		c.served[n] = c.served1(n)
		acc := c.accessTable(n)
		callers := 0
		for k := range acc {
			if len(acc[k].names) > 0 {
				callers += c.classSize[k]
				c.classNodes[k] = append(c.classNodes[k], n)
				c.classUses[k] = append(c.classUses[k], NodeModels{Node: c.ms[n].ID, Models: acc[k].names})
			}
		}
		c.access[n] = acc
		c.peers[n] = make([]int, 0, callers)
	}
	for k := range c.classUses {
		c.classNodes[k], c.classUses[k] = slices.Clip(c.classNodes[k]), slices.Clip(c.classUses[k])
	}
	for i := range c.ms {
		c.out[i].Uses = c.usesOf(i)
	}
}

// callers returns, in order, the members of the classes that may use
// models on node n (n itself among them, if so).
func (c *compiler) callers(n int) []int {
	var usable [][]int
	for k := range c.access[n] {
		if len(c.access[n][k].names) > 0 {
			usable = append(usable, c.classMembers[k])
		}
	}
	if len(usable) == 1 {
		return usable[0]
	}
	out := slices.Concat(usable...)
	slices.Sort(out)
	return out
}

// node compiles what tagged member n serves and enforces.
func (c *compiler) node(n int) {
	out := &c.out[n]
	na := c.nodeAccess(n)
	for _, caller := range c.callers(n) {
		if caller != n {
			c.peers[n] = append(c.peers[n], caller)
		}
	}
	out.Rules = &NodeRules{Grants: na.grants, Filter: c.filter(n), Models: c.modelRules(c.served[n])}
	out.Access = na.access
}

// modelRules returns the rules of the served models (sorted by name) that
// set an output bound, a price or encryptedAtRest.
func (c *compiler) modelRules(served []int) []ModelRule {
	var out []ModelRule
	for _, mi := range served {
		m := &c.p.Models[mi]
		price, priced := c.p.Budgets.Prices[m.Name]
		if m.MaxOutputTokens != 0 || m.MaxChoices != 0 || priced || m.EncryptedAtRest {
			r := m.Rule()
			r.InputPrice, r.OutputPrice = price.Input, price.Output
			out = append(out, r)
		}
	}
	return out
}

// pinned reports whether a node verifying its weights against have may
// serve a model the policy pins to want ("": not pinned).
func pinned(want, have string) bool { return want == "" || want == have }

// served1 returns the model indices node n may serve, sorted by name, and
// records what it serves and what it is refused.
func (c *compiler) served1(n int) []int {
	m, out := &c.ms[n], &c.out[n]
	var idx []int
	for _, name := range m.Models {
		mi, known := c.p.modelIndex[name]
		if known && hasAny(m.Tags, c.p.Models[mi].ServedBy) && pinned(c.p.Models[mi].SHA256, m.Pins[name]) {
			idx = append(idx, mi)
		} else {
			out.Refused = append(out.Refused, name)
		}
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(c.p.Models[a].Name, c.p.Models[b].Name) })
	idx = slices.Compact(idx)
	for _, mi := range idx {
		out.Serves = append(out.Serves, c.p.Models[mi].Name)
	}
	slices.Sort(out.Refused)
	out.Refused = slices.Compact(out.Refused)
	return idx
}

func hasAny(have, want []string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

// callerAccess returns caller's access to the served models, with grant
// indices into Policy.Grants, and the names of the models it may use.
// Callers of one class share the returned slices.
func (c *compiler) callerAccess(caller int, served []int) ([]ModelAccess, []string) {
	var access []ModelAccess
	var names []string
	for _, mi := range served {
		chain := c.chains[caller][mi]
		if len(chain) == 0 {
			continue
		}
		name := c.p.Models[mi].Name
		names = append(names, name)
		for _, g := range chain {
			access = append(access, ModelAccess{Model: name, Grant: g})
		}
	}
	return access, names
}

// renumber rewrites the grant indices in access to point into the returned
// list of the grants they use, in file order. Access slices shared by
// several callers are rewritten once.
func (c *compiler) renumber(access []CallerAccess) []GrantRule {
	pos := make([]int, len(c.p.Grants))
	var distinct [][]ModelAccess
	seen := map[*ModelAccess]bool{}
	for _, ca := range access {
		if len(ca.Access) == 0 || seen[&ca.Access[0]] {
			continue
		}
		seen[&ca.Access[0]] = true
		distinct = append(distinct, ca.Access)
		for _, a := range ca.Access {
			pos[a.Grant] = 1
		}
	}
	var rules []GrantRule
	for g, used := range pos {
		if used != 0 {
			pos[g] = len(rules)
			r := c.p.Grants[g].Rule()
			r.Budgets = c.p.Budgets.units(g)
			rules = append(rules, r)
		}
	}
	for _, acc := range distinct {
		for i := range acc {
			acc[i].Grant = pos[acc[i].Grant]
		}
	}
	return rules
}

// filter builds node n's packet filter: one rule per network grant that
// reaches it from at least one other member, in file order.
func (c *compiler) filter(n int) []FilterRule {
	tags := c.ms[n].Tags
	var rules []FilterRule
	for g := range c.p.Grants {
		var ports []PortRange
		for _, d := range c.p.Grants[g].dst {
			if d.matchesNode(tags) {
				ports = append(ports, d.ports)
			}
		}
		if len(ports) == 0 {
			continue
		}
		var src []netip.Prefix
		for _, caller := range c.netMembers[g] {
			if caller == n {
				continue
			}
			c.link(caller, n)
			for _, a := range c.ms[caller].Addresses {
				src = append(src, netip.PrefixFrom(a, a.BitLen()))
			}
		}
		if len(src) > 0 {
			slices.SortFunc(src, comparePrefix)
			rules = append(rules, FilterRule{Src: slices.Compact(src), Ports: mergePorts(ports)})
		}
	}
	return rules
}

func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

// mergePorts sorts ranges and joins those that overlap or touch.
func mergePorts(rs []PortRange) []PortRange {
	slices.SortFunc(rs, func(a, b PortRange) int { return cmp.Or(cmp.Compare(a.First, b.First), cmp.Compare(a.Last, b.Last)) })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if int(r.First) <= int(last.Last)+1 {
			last.Last = max(last.Last, r.Last)
		} else {
			out = append(out, r)
		}
	}
	return out
}

func (c *compiler) link(a, b int) {
	c.peers[a] = append(c.peers[a], b)
	c.peers[b] = append(c.peers[b], a)
}

// result finishes the peer lists: a member's model peers (its class's
// nodes, see models) joined with the links of network grants and MCP.
func (c *compiler) result() *Compiled {
	ids := peerIDs{c: c, seed: maphash.MakeSeed(), lists: map[uint64][]peerList{}}
	for i := range c.ms {
		ps := c.peersOf(i)
		if len(ps) == 0 {
			continue
		}
		c.out[i].Peers, c.out[i].peerIndex = ids.of(ps)
	}
	return &Compiled{Members: c.out}
}
