package policy

import (
	"encoding/binary"
	"hash/maphash"
	"slices"
	"strconv"
)

// What the compiler shares between members instead of building it once
// per member: the outputs are the same values Compile always produced,
// but members of one class point at one Uses list and one peer list, and
// nodes serving the same models at one Access list. Shared slices are
// clipped, so an append by a reader copies; readers never change them.

// nodeAccess is a node's compiled Access list and the grants it points
// into.
type nodeAccess struct {
	access []CallerAccess
	grants []GrantRule
}

// accessTable returns what each class may use on node n: the table of an
// earlier node serving the same models when n does not call itself (its
// Access list, without n, is then the same), else a table of its own.
func (c *compiler) accessTable(n int) []classAccess {
	key := servedKey(c.served[n])
	if acc, ok := c.tables[key]; ok && len(acc[c.class[n]].names) == 0 {
		return acc
	}
	acc := make([]classAccess, len(c.classSize))
	for k, rep := range c.rep {
		acc[k].access, acc[k].names = c.callerAccess(rep, c.served[n])
	}
	if len(acc[c.class[n]].names) == 0 {
		if c.tables == nil {
			c.tables, c.lists = map[string][]classAccess{}, map[*classAccess]nodeAccess{}
		}
		c.tables[key] = acc
	}
	return acc
}

// servedKey names a list of model indices.
func servedKey(served []int) string {
	b := make([]byte, 0, 4*len(served))
	for _, mi := range served {
		b = append(strconv.AppendInt(b, int64(mi), 10), ',')
	}
	return string(b)
}

// nodeAccess returns node n's Access list and grants, compiled once per
// shared access table: renumber rewrites the table's grant indices in
// place, so a shared table is renumbered only once.
func (c *compiler) nodeAccess(n int) nodeAccess {
	acc := c.access[n]
	shared := len(acc[c.class[n]].names) == 0 // see accessTable
	if na, ok := c.lists[&acc[0]]; ok && shared {
		return na
	}
	access := make([]CallerAccess, 0, cap(c.peers[n]))
	for _, caller := range c.callers(n) {
		if caller != n {
			access = append(access, CallerAccess{Caller: c.ms[caller].ID, Access: acc[c.class[caller]].access})
		}
	}
	na := nodeAccess{access: slices.Clip(access), grants: c.renumber(access)}
	if shared {
		c.lists[&acc[0]] = na
	}
	return na
}

// usesOf returns member i's Uses: its class's, without i itself.
func (c *compiler) usesOf(i int) []NodeModels {
	k := c.class[i]
	j, self := slices.BinarySearch(c.classNodes[k], i)
	if !self {
		return c.classUses[k]
	}
	return slices.Delete(slices.Clone(c.classUses[k]), j, j+1)
}

// peersOf returns member i's peers, sorted: the nodes its class may use
// (without i), and the members linked to it by node, network or MCP
// access. A member with no links but its class's shares the class's list.
func (c *compiler) peersOf(i int) []int {
	base, extra := c.classNodes[c.class[i]], c.peers[i]
	j, self := slices.BinarySearch(base, i)
	if len(extra) == 0 && !self {
		return base
	}
	if len(base) == 0 {
		if !slices.IsSorted(extra) {
			slices.Sort(extra)
		}
		return slices.Compact(extra)
	}
	ps := make([]int, 0, len(base)+len(extra))
	ps = append(ps, base[:j]...)
	if self {
		j++
	}
	ps = append(append(ps, base[j:]...), extra...)
	slices.Sort(ps)
	return slices.Compact(ps)
}

// peerIDs turns peer lists into member IDs, one ID list for equal peer
// lists.
type peerIDs struct {
	c       *compiler
	seed    maphash.Seed
	scratch []byte
	lists   map[uint64][]peerList
}

type peerList struct {
	index []int
	ids   []string
}

// of returns the IDs of the members at positions ps, and the positions
// to keep (an equal list built before, or ps).
func (p *peerIDs) of(ps []int) ([]string, []int) {
	p.scratch = p.scratch[:0]
	for _, j := range ps {
		p.scratch = binary.LittleEndian.AppendUint64(p.scratch, uint64(j))
	}
	h := maphash.Bytes(p.seed, p.scratch)
	for _, l := range p.lists[h] {
		if slices.Equal(l.index, ps) {
			return l.ids, l.index
		}
	}
	ps = slices.Clip(ps)
	ids := make([]string, len(ps))
	for k, j := range ps {
		ids[k] = p.c.ms[j].ID
	}
	p.lists[h] = append(p.lists[h], peerList{index: ps, ids: ids})
	return ids, ps
}
