package scim

import (
	"context"
	stderrors "errors"
	"net/http"

	scimlib "github.com/elimity-com/scim"
	"github.com/elimity-com/scim/errors"

	"github.com/moatmesh/moat/coordinator/store"
)

// userHandler serves /Users. A person is matched to moat's users by
// userName and primary email (see the coordinator's scimlink.go).
type userHandler struct{ cfg Config }

func (h *userHandler) Create(r *http.Request, a scimlib.ResourceAttributes) (scimlib.Resource, error) {
	u, err := userFrom(a, nil)
	if err != nil {
		return scimlib.Resource{}, err
	}
	u.Created = h.cfg.Now()
	return h.put(r.Context(), u, nil)
}

func (h *userHandler) Get(r *http.Request, id string) (scimlib.Resource, error) {
	u, err := h.load(r.Context(), id)
	if err != nil {
		return scimlib.Resource{}, err
	}
	return userResource(u), nil
}

func (h *userHandler) GetAll(r *http.Request, params scimlib.ListRequestParams) (scimlib.Page, error) {
	us, err := h.cfg.Store.SCIMUsers(r.Context())
	if err != nil {
		return scimlib.Page{}, h.internal("list users", err)
	}
	rs := make([]scimlib.Resource, 0, len(us))
	for _, u := range us {
		rs = append(rs, userResource(u))
	}
	return page(rs, params), nil
}

func (h *userHandler) Replace(r *http.Request, id string, a scimlib.ResourceAttributes) (scimlib.Resource, error) {
	old, err := h.load(r.Context(), id)
	if err != nil {
		return scimlib.Resource{}, err
	}
	u, err := userFrom(a, old)
	if err != nil {
		return scimlib.Resource{}, err
	}
	return h.put(r.Context(), u, old)
}

func (h *userHandler) Patch(r *http.Request, id string, ops []scimlib.PatchOperation) (scimlib.Resource, error) {
	old, err := h.load(r.Context(), id)
	if err != nil {
		return scimlib.Resource{}, err
	}
	a := decode(old.Attrs)
	if err := applyPatch(a, ops); err != nil {
		return scimlib.Resource{}, err
	}
	u, err := userFrom(a, old)
	if err != nil {
		return scimlib.Resource{}, err
	}
	return h.put(r.Context(), u, old)
}

// Delete keeps a tombstone, so that the person is refused at sign-in.
func (h *userHandler) Delete(r *http.Request, id string) error {
	err := h.cfg.Store.DeleteSCIMUser(r.Context(), id, h.cfg.Now())
	if stderrors.Is(err, store.ErrNotFound) {
		return errors.ScimErrorResourceNotFound(id)
	}
	if err != nil {
		return h.internal("delete user", err)
	}
	return h.changed(r.Context(), Change{Users: []string{id}})
}

// put stores u (which was old, nil for a new user) and tells the
// coordinator.
func (h *userHandler) put(ctx context.Context, u, old *store.SCIMUser) (scimlib.Resource, error) {
	u.Modified = h.cfg.Now()
	err := h.cfg.Store.PutSCIMUser(ctx, u)
	if stderrors.Is(err, store.ErrConflict) {
		return scimlib.Resource{}, errors.ScimErrorUniqueness
	}
	if err != nil {
		return scimlib.Resource{}, h.internal("store user", err)
	}
	c := Change{Users: []string{u.ID}}
	if old != nil && !old.Active && u.Active {
		c.Reactivated = c.Users
	}
	return userResource(u), h.changed(ctx, c)
}

func (h *userHandler) changed(ctx context.Context, c Change) error {
	if err := h.cfg.Changed(ctx, c); err != nil {
		return h.internal("apply change", err)
	}
	return nil
}

// load returns live user id; unknown and deleted users are not found.
func (h *userHandler) load(ctx context.Context, id string) (*store.SCIMUser, error) {
	u, err := h.cfg.Store.SCIMUser(ctx, id)
	switch {
	case stderrors.Is(err, store.ErrNotFound) || err == nil && u.Deleted:
		return nil, errors.ScimErrorResourceNotFound(id)
	case err != nil:
		return nil, h.internal("load user", err)
	}
	return u, nil
}

func (h *userHandler) internal(op string, err error) error {
	return internal(h.cfg, op, err)
}

// internal logs err and answers 500 without its detail.
func internal(cfg Config, op string, err error) error {
	cfg.Log.Error("SCIM "+op, "err", err)
	return errors.ScimError{Status: http.StatusInternalServerError, Detail: "internal error; see the coordinator's log"}
}

// userFrom is the stored user for attributes a, keeping the id and
// creation time of old (nil for a new user).
func userFrom(a attrs, old *store.SCIMUser) (*store.SCIMUser, error) {
	b, err := stored(a)
	if err != nil {
		return nil, err
	}
	u := &store.SCIMUser{
		UserName: str(a, "userName"), Email: primaryEmail(a), ExternalID: str(a, "externalId"),
		Active: boolOf(get(a, "active"), true), Attrs: b,
	}
	if u.UserName == "" {
		return nil, badRequest("userName is required")
	}
	if old != nil {
		u.ID, u.Created = old.ID, old.Created
	}
	return u, nil
}

func userResource(u *store.SCIMUser) scimlib.Resource {
	a := decode(u.Attrs)
	a[key(a, "active")] = u.Active
	return resource(u.ID, u.ExternalID, a, u.Created, u.Modified)
}
