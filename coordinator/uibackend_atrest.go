package coordinator

import (
	"maps"
	"slices"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/ui"
)

// uiAtRest converts a node's report of where its data sits; nil from
// nodes that do not report it.
func uiAtRest(a *wire.AtRestStatus) *ui.AtRest {
	if a == nil {
		return nil
	}
	out := &ui.AtRest{State: uiStorage("state directory", a.State), Spool: uiStorage("audit spool", a.Spool), Checked: a.Checked}
	for _, name := range slices.Sorted(maps.Keys(a.Models)) {
		out.Weights = append(out.Weights, uiStorage("weights of "+name, a.Models[name]))
	}
	return out
}

func uiStorage(what string, s wire.Storage) ui.Storage {
	return ui.Storage{What: what, Path: s.Path, Encrypted: s.Encrypted, How: s.How, Reason: s.Reason}
}

// modelAtRest says, for the models page, whether node status keeps
// model's weights, spool and state encrypted: "encrypted", "not
// encrypted: REASON", or "" when the node does not report it.
func modelAtRest(st wire.NodeStatus, model string) string {
	a := st.AtRest
	if a == nil {
		return ""
	}
	w, ok := a.Models[model]
	if !ok {
		w = wire.Storage{Reason: "the node reports no weights path for it"}
	}
	for _, s := range []wire.Storage{w, a.Spool, a.State} {
		if !s.Encrypted {
			return "not encrypted: " + s.Reason
		}
	}
	return "encrypted"
}
