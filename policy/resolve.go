package policy

import (
	"slices"
	"strings"
)

// resolve checks every reference recorded while decoding, the group nesting
// and the model patterns, and fills in each grant's model indices.
func (d *decoder) resolve(p *Policy, defs definitions) {
	p.modelIndex = make(map[string]int, len(p.Models))
	for i, m := range p.Models {
		p.modelIndex[m.Name] = i
	}
	p.indexMCP()
	for _, r := range d.refs {
		d.checkRef(p, defs, r)
	}
	if d.checkCycles(p, defs) {
		d.checkDepth(p, defs)
	}
	for i := range p.Grants {
		g := &p.Grants[i]
		for _, pat := range g.Models {
			g.models = append(g.models, p.matchModels(pat)...)
		}
		slices.Sort(g.models)
		g.models = slices.Compact(g.models)
	}
}

func (d *decoder) checkRef(p *Policy, defs definitions, r ref) {
	switch r.kind {
	case refGroup:
		if _, ok := defs.groups[r.name]; !ok {
			d.errorf(r.off, "%s: unknown group %q; define it under \"groups\" or fix the name", r.what, r.name)
		}
	case refTag:
		if _, ok := defs.tags[r.name]; !ok {
			d.errorf(r.off, "%s: unknown tag %q; define it under \"tagOwners\" or fix the name", r.what, r.name)
		}
	case refModel:
		if _, ok := p.modelIndex[r.name]; !ok {
			d.errorf(r.off, "%s: unknown model %q; declare it under \"models\" or fix the name", r.what, r.name)
		}
	case refMCPServer:
		d.checkMCPRef(p, r)
	case refPattern:
		if len(p.matchModels(r.name)) == 0 {
			d.errorf(r.off, "%s: %q matches no model; declare the model under \"models\" or fix the name", r.what, r.name)
		}
	}
}

// matchModels returns the indices of the models pattern names.
func (p *Policy) matchModels(pattern string) []int {
	if !strings.Contains(pattern, "*") {
		if i, ok := p.modelIndex[pattern]; ok {
			return []int{i}
		}
		return nil
	}
	var out []int
	for i, m := range p.Models {
		if globMatch(pattern, m.Name) {
			out = append(out, i)
		}
	}
	return out
}

// globMatch reports whether name matches pattern, where each '*' stands for
// any run of characters, '/' included.
func globMatch(pattern, name string) bool {
	first, rest, star := strings.Cut(pattern, "*")
	if !star {
		return pattern == name
	}
	if !strings.HasPrefix(name, first) {
		return false
	}
	name = name[len(first):]
	parts := strings.Split(rest, "*")
	last := parts[len(parts)-1]
	for _, part := range parts[:len(parts)-1] {
		i := strings.Index(name, part)
		if i < 0 {
			return false
		}
		name = name[i+len(part):]
	}
	return len(name) >= len(last) && strings.HasSuffix(name, last)
}

// checkCycles refuses groups that contain themselves, however deeply,
// and reports whether there are none.
func (d *decoder) checkCycles(p *Policy, defs definitions) bool {
	const (
		unvisited = iota
		visiting
		done
	)
	state := make(map[string]int, len(p.Groups))
	var path []string
	var visit func(g string) bool
	visit = func(g string) bool {
		switch state[g] {
		case visiting:
			cycle := append(path[slices.Index(path, g):], g)
			d.errorf(defs.groups[cycle[0]], "groups form a cycle: %s; remove one of these memberships", strings.Join(cycle, " → "))
			return false
		case done:
			return true
		}
		state[g] = visiting
		path = append(path, g)
		for _, m := range p.Groups[g] {
			if _, isGroup := p.Groups[m]; isGroup && !visit(m) {
				return false
			}
		}
		path = path[:len(path)-1]
		state[g] = done
		return true
	}
	for _, g := range sortedKeys(p.Groups) {
		if state[g] == unvisited && !visit(g) {
			return false // one cycle at a time keeps the message readable
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
