package netmap

import (
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/mesh/wirepolicy"
	"github.com/moatmesh/moat/policy"
)

// The conversions of a node's compiled rules into the wire's types live
// in mesh/wirepolicy, shared with nodes that compile a local policy.

func wireRules(r *policy.NodeRules) *wire.NodeRules         { return wirepolicy.Rules(r) }
func wireAccess(as []policy.ModelAccess) []wire.ModelAccess { return wirepolicy.Access(as) }
func wireGrant(g policy.GrantRule) wire.GrantRule           { return wirepolicy.Grant(g) }
