package lockdown

import (
	"fmt"
	"slices"

	"github.com/moatmesh/moat/policy"
)

// SetNetworkGrants replaces Config.NetworkGrants with grants (the
// node's compiled policy filter, which arrives with each netmap) and
// re-applies the tables in one atomic batch when they differ from what
// is applied. Nothing changes, and the error says why, if grants are
// invalid or the batch fails.
func (l *Lockdown) SetNetworkGrants(grants []policy.FilterRule) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if slices.EqualFunc(grants, l.cfg.NetworkGrants, sameFilterRule) {
		return nil
	}
	next := l.cfg
	next.NetworkGrants = grants
	if err := next.validate(); err != nil {
		return fmt.Errorf("lockdown: network grants: %w", err)
	}
	prev := l.cfg
	l.cfg = next
	if err := l.installLocked(); err != nil {
		l.cfg = prev
		return err
	}
	return nil
}

func sameFilterRule(a, b policy.FilterRule) bool {
	return slices.Equal(a.Src, b.Src) && slices.Equal(a.Ports, b.Ports)
}
