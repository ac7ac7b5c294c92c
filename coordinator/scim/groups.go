package scim

import (
	"context"
	stderrors "errors"
	"net/http"

	scimlib "github.com/elimity-com/scim"
	"github.com/elimity-com/scim/errors"

	"github.com/moatmesh/moat/coordinator/store"
)

// groupHandler serves /Groups. Members are SCIM user ids; a group's
// displayName is the IdP group name the policy names as idp:<name>.
type groupHandler struct{ cfg Config }

func (h *groupHandler) Create(r *http.Request, a scimlib.ResourceAttributes) (scimlib.Resource, error) {
	g, err := groupFrom(a, nil)
	if err != nil {
		return scimlib.Resource{}, err
	}
	g.Created = h.cfg.Now()
	return h.put(r.Context(), g, nil)
}

func (h *groupHandler) Get(r *http.Request, id string) (scimlib.Resource, error) {
	g, err := h.load(r.Context(), id)
	if err != nil {
		return scimlib.Resource{}, err
	}
	return groupResource(g), nil
}

func (h *groupHandler) GetAll(r *http.Request, params scimlib.ListRequestParams) (scimlib.Page, error) {
	gs, err := h.cfg.Store.SCIMGroups(r.Context())
	if err != nil {
		return scimlib.Page{}, internal(h.cfg, "list groups", err)
	}
	rs := make([]scimlib.Resource, 0, len(gs))
	for _, g := range gs {
		rs = append(rs, groupResource(g))
	}
	return page(rs, params), nil
}

func (h *groupHandler) Replace(r *http.Request, id string, a scimlib.ResourceAttributes) (scimlib.Resource, error) {
	old, err := h.load(r.Context(), id)
	if err != nil {
		return scimlib.Resource{}, err
	}
	g, err := groupFrom(a, old)
	if err != nil {
		return scimlib.Resource{}, err
	}
	return h.put(r.Context(), g, old.Members)
}

func (h *groupHandler) Patch(r *http.Request, id string, ops []scimlib.PatchOperation) (scimlib.Resource, error) {
	old, err := h.load(r.Context(), id)
	if err != nil {
		return scimlib.Resource{}, err
	}
	a := groupAttrs(old)
	if err := applyPatch(a, ops); err != nil {
		return scimlib.Resource{}, err
	}
	g, err := groupFrom(a, old)
	if err != nil {
		return scimlib.Resource{}, err
	}
	return h.put(r.Context(), g, old.Members)
}

func (h *groupHandler) Delete(r *http.Request, id string) error {
	old, err := h.load(r.Context(), id)
	if err != nil {
		return err
	}
	if err := h.cfg.Store.DeleteSCIMGroup(r.Context(), id); err != nil {
		return internal(h.cfg, "delete group", err)
	}
	return h.changed(r.Context(), old.Members, nil)
}

// put stores g and tells the coordinator about everyone who was or is a
// member (before).
func (h *groupHandler) put(ctx context.Context, g *store.SCIMGroup, before []string) (scimlib.Resource, error) {
	g.Modified = h.cfg.Now()
	if err := h.cfg.Store.PutSCIMGroup(ctx, g); err != nil {
		return scimlib.Resource{}, internal(h.cfg, "store group", err)
	}
	stored, err := h.cfg.Store.SCIMGroup(ctx, g.ID) // members that are live users
	if err != nil {
		return scimlib.Resource{}, internal(h.cfg, "reload group", err)
	}
	return groupResource(stored), h.changed(ctx, before, stored.Members)
}

func (h *groupHandler) changed(ctx context.Context, before, after []string) error {
	ids := append(append([]string{}, before...), after...)
	if len(ids) == 0 {
		return nil
	}
	if err := h.cfg.Changed(ctx, Change{Users: ids}); err != nil {
		return internal(h.cfg, "apply change", err)
	}
	return nil
}

func (h *groupHandler) load(ctx context.Context, id string) (*store.SCIMGroup, error) {
	g, err := h.cfg.Store.SCIMGroup(ctx, id)
	switch {
	case stderrors.Is(err, store.ErrNotFound):
		return nil, errors.ScimErrorResourceNotFound(id)
	case err != nil:
		return nil, internal(h.cfg, "load group", err)
	}
	return g, nil
}

// groupFrom is the stored group for attributes a, keeping the id and
// creation time of old (nil for a new group).
func groupFrom(a attrs, old *store.SCIMGroup) (*store.SCIMGroup, error) {
	b, err := stored(a, "members")
	if err != nil {
		return nil, err
	}
	g := &store.SCIMGroup{DisplayName: str(a, "displayName"), ExternalID: str(a, "externalId"), Attrs: b, Members: memberIDs(a)}
	if g.DisplayName == "" {
		return nil, badRequest("displayName is required")
	}
	if old != nil {
		g.ID, g.Created = old.ID, old.Created
	}
	return g, nil
}

// groupAttrs is g's stored attributes with its members.
func groupAttrs(g *store.SCIMGroup) attrs {
	a := decode(g.Attrs)
	members := make([]any, 0, len(g.Members))
	for _, m := range g.Members {
		members = append(members, map[string]any{"value": m})
	}
	a["members"] = members
	return a
}

func groupResource(g *store.SCIMGroup) scimlib.Resource {
	return resource(g.ID, g.ExternalID, groupAttrs(g), g.Created, g.Modified)
}
