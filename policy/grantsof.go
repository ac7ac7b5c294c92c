package policy

// GrantsOf returns the grants that cover the model named name, for
// anyone, in file order: who may use it is the union of their Src. It
// returns nil for a model the policy does not declare.
func (p *Policy) GrantsOf(name string) []*Grant {
	mi, ok := p.modelIndex[name]
	if !ok {
		return nil
	}
	var out []*Grant
	for i := range p.Grants {
		if containsSorted(p.Grants[i].models, mi) {
			out = append(out, &p.Grants[i])
		}
	}
	return out
}
