package policy

import (
	"cmp"
	"math"
)

// How several grants combine (docs/policy.md, "When several grants match"):
//
//  1. The candidates for a (caller, model) pair are the grants whose src
//     matches the caller and whose models match the model. Any candidate
//     allows the model: access is the union of the grants.
//  2. Candidates are ordered by the generosity of their limits, compared
//     field by field in the order rpm, tpm, concurrency, tokensPerDay,
//     maxTokens, an absent limit beating any number; equal limits keep
//     file order.
//  3. A request uses the first candidate in that order whose mfa the caller
//     meets (no mfa is always met). That one grant's limits, guard and audit
//     settings apply; settings are never mixed across grants.
//
// Candidates that could never be chosen (their mfa is no looser than that of
// the candidate before them: no longer a window, no weaker a factor) are
// dropped, so a chain ends at the first grant without mfa.

// compareGenerosity orders limits most generous first.
func compareGenerosity(a, b Limits) int {
	unlimited := func(n int64) int64 {
		if n == 0 {
			return math.MaxInt64
		}
		return n
	}
	return cmp.Or(
		-cmp.Compare(unlimited(int64(a.RPM)), unlimited(int64(b.RPM))),
		-cmp.Compare(unlimited(int64(a.TPM)), unlimited(int64(b.TPM))),
		-cmp.Compare(unlimited(int64(a.Concurrency)), unlimited(int64(b.Concurrency))),
		-cmp.Compare(unlimited(a.TokensPerDay), unlimited(b.TokensPerDay)),
		-cmp.Compare(unlimited(int64(a.MaxTokens)), unlimited(int64(b.MaxTokens))),
	)
}

// extendChain appends grant g to chain if a request could ever reach it.
func (p *Policy) extendChain(chain []int, g int) []int {
	if n := len(chain); n > 0 && implies(&p.Grants[g], &p.Grants[chain[n-1]]) {
		return chain
	}
	return append(chain, g)
}

// chains returns, for every model index, the grants in set that allow it in
// the order a request tries them.
func (p *Policy) chains(set grantSet) [][]int {
	out := make([][]int, len(p.Models))
	for _, g := range p.rank {
		if !set.has(g) {
			continue
		}
		for _, m := range p.Grants[g].models {
			out[m] = p.extendChain(out[m], g)
		}
	}
	return out
}

// chain is chains for a single model.
func (p *Policy) chain(set grantSet, model int) []int {
	var out []int
	for _, g := range p.rank {
		if set.has(g) && containsSorted(p.Grants[g].models, model) {
			out = p.extendChain(out, g)
		}
	}
	return out
}

func containsSorted(s []int, v int) bool {
	lo, hi := 0, len(s)
	for lo < hi {
		mid := (lo + hi) / 2
		switch {
		case s[mid] == v:
			return true
		case s[mid] < v:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return false
}

// reaches returns the first grant in set (in file order) that lets its
// holders reach port on a node carrying tags, or -1.
func (p *Policy) reaches(set grantSet, tags []string, port uint16) int {
	for i := range p.Grants {
		if set.has(i) && p.Grants[i].dstCovers(tags, port) {
			return i
		}
	}
	return -1
}

// dstCovers reports whether one of g's destinations is port on a node with
// one of tags.
func (g *Grant) dstCovers(tags []string, port uint16) bool {
	for _, d := range g.dst {
		if d.ports.Contains(port) && d.matchesNode(tags) {
			return true
		}
	}
	return false
}

// matchesNode reports whether d applies to a node carrying tags.
func (d netDst) matchesNode(tags []string) bool {
	if d.tag == "" {
		return len(tags) > 0
	}
	for _, t := range tags {
		if t == d.tag {
			return true
		}
	}
	return false
}
