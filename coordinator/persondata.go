package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/coordinator/store"
)

// One person's data: export (GDPR Art. 15 and 20) and erasure (Art. 17).
// Both work on the store and the seal key, so the admin API and the CLI
// (ExportPerson, ErasePerson) share them.

// ActionUserErase is the admin-trail action of an erasure.
const ActionUserErase = "user.erase"

// PersonExport is everything moat holds about one person's use of
// models: who they are and their audit records, each with its prompt
// decrypted when one was kept and the key is not erased.
type PersonExport struct {
	Exported time.Time        `json:"exported"`
	Person   ExportedPerson   `json:"person"`
	Records  []ExportedRecord `json:"records"` // newest first
}

// ExportedPerson is the person as the coordinator knows them.
type ExportedPerson struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name,omitempty"`
	Groups    []string  `json:"groups,omitempty"`
	Role      string    `json:"role"`
	Disabled  bool      `json:"disabled"`
	Created   time.Time `json:"created"`
	LastLogin time.Time `json:"lastLogin,omitzero"`
	// Erased is when their prompt key was destroyed; zero: it was not.
	Erased time.Time `json:"erased,omitzero"`
}

// ExportedRecord is one audit record as the node sealed it, with its
// prompt in clear when it can be read.
type ExportedRecord struct {
	Record json.RawMessage `json:"record"`
	Prompt json.RawMessage `json:"prompt,omitempty"`
	// PromptErased is set when the record keeps a prompt whose key was
	// erased: it cannot be read by anyone.
	PromptErased bool `json:"promptErased,omitempty"`
}

// maxExportRecords bounds one export.
const maxExportRecords = 1_000_000

// exportPerson gathers u's data.
func exportPerson(ctx context.Context, st *store.DB, box *seal.Box, u *store.User, now time.Time) (*PersonExport, error) {
	k, err := st.PersonKey(ctx, u.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	out := &PersonExport{Exported: now, Records: []ExportedRecord{}, Person: ExportedPerson{ID: u.ID, Email: u.Email,
		Name: u.Name, Groups: u.Groups, Role: u.Role, Disabled: u.Disabled, Created: u.Created, LastLogin: u.LastLogin}}
	if k != nil {
		out.Person.Erased = k.Erased
	}
	f := store.AuditFilter{UserID: u.ID, Limit: 10000}
	for len(out.Records) < maxExportRecords {
		recs, err := st.Audit(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			out.Records = append(out.Records, exportRecord(box, k, u.ID, r))
		}
		if len(recs) < f.Limit {
			break
		}
		f.Before = recs[len(recs)-1].ID
	}
	return out, nil
}

// exportRecord is r with its prompt opened when it can be.
func exportRecord(box *seal.Box, k *store.PersonKey, user string, r *store.AuditRecord) ExportedRecord {
	e := ExportedRecord{Record: r.Body}
	var p struct {
		Prompt       json.RawMessage `json:"prompt"`
		PromptSealed string          `json:"promptSealed"`
	}
	if json.Unmarshal(r.Body, &p) != nil {
		return e
	}
	switch {
	case p.PromptSealed != "":
		pt, err := openPrompt(box, k, user, p.PromptSealed)
		e.Prompt, e.PromptErased = pt, errors.Is(err, errPromptErased)
	case len(p.Prompt) > 0:
		e.Prompt = p.Prompt // kept in clear by a node from before prompt keys
	}
	return e
}

// erasePerson logs the erasure to the erasure log at log, destroys u's
// prompt key and writes the erasure, with why, to the admin trail as
// actor. An erasure that cannot be logged is not made: Restore could not
// replay it.
func erasePerson(ctx context.Context, st *store.DB, log string, u *store.User, actor, why string, now time.Time) error {
	if strings.TrimSpace(why) == "" {
		return errors.New("erase: say why (for the admin trail), e.g. \"GDPR Art. 17 request #123\"")
	}
	if err := logErasure(log, erasure{User: u.ID, Time: now.UTC()}); err != nil {
		return err
	}
	if err := st.ErasePersonKey(ctx, u.ID, now); err != nil {
		return err
	}
	return st.LogAdminAction(ctx, &store.AdminAction{Time: now, Actor: actor, Action: ActionUserErase, Target: u.ID,
		Detail: fmt.Sprintf("%s: prompt key destroyed; why: %s", u.Email, why)})
}

// findPerson is the person with id or email who.
func findPerson(ctx context.Context, st *store.DB, who string) (*store.User, error) {
	if strings.HasPrefix(who, "u_") {
		return st.User(ctx, who)
	}
	users, err := st.Users(ctx)
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		if strings.EqualFold(u.Email, who) {
			return u, nil
		}
	}
	return nil, fmt.Errorf("person %s: %w", who, store.ErrNotFound)
}

// ExportPerson exports the data of the person with id or email who, on
// cfg's store (the CLI).
func ExportPerson(ctx context.Context, cfg Config, who string) (*PersonExport, error) {
	var out *PersonExport
	err := withSecrets(ctx, cfg, func(st *store.DB, box *seal.Box) error {
		u, err := findPerson(ctx, st, who)
		if err != nil {
			return err
		}
		if out, err = exportPerson(ctx, st, box, u, time.Now()); err != nil {
			return err
		}
		return RecordCLIAction(ctx, st, actionUserExport, u.ID, u.Email)
	})
	return out, err
}

// ErasePerson erases the person with id or email who, on cfg's store
// (the CLI). Running coordinators drop the person's public key from the
// netmaps at their next recompute (within 30 s).
func ErasePerson(ctx context.Context, cfg Config, who, why string) error {
	return withSecrets(ctx, cfg, func(st *store.DB, _ *seal.Box) error {
		u, err := findPerson(ctx, st, who)
		if err != nil {
			return err
		}
		return erasePerson(ctx, st, erasureLog(cfg), u, CLIActor(), why, time.Now())
	})
}

// actionUserExport is the admin-trail action of an export.
const actionUserExport = "user.export"

// personDataRoutes serves GET /users/:id/export and POST
// /users/:id/erase {"reason": "..."} under the admin API.
func (s *Server) personDataRoutes(g *gin.RouterGroup) {
	g.GET("/users/:id/export", s.exportUser)
	g.POST("/users/:id/erase", s.eraseUser)
}

func (s *Server) exportUser(c *gin.Context) {
	ctx := c.Request.Context()
	u, err := findPerson(ctx, s.store, c.Param("id"))
	if s.notFound(c, err, "user") {
		return
	}
	out, err := exportPerson(ctx, s.store, s.box, u, s.cfg.Now())
	if err != nil {
		s.internal(c, "export user", err)
		return
	}
	s.recordAs(ctx, apiActor(c), actionUserExport, u.ID, u.Email)
	c.Header("Content-Disposition", `attachment; filename="moat-`+u.ID+`.json"`)
	c.JSON(http.StatusOK, out)
}

func (s *Server) eraseUser(c *gin.Context) {
	ctx := c.Request.Context()
	var req struct {
		Reason string `json:"reason"`
	}
	if !decode(c, limitSmall, &req) {
		return
	}
	u, err := findPerson(ctx, s.store, c.Param("id"))
	if s.notFound(c, err, "user") {
		return
	}
	if strings.TrimSpace(req.Reason) == "" {
		apiError(c, http.StatusBadRequest, "bad_request", `reason: say why the person is erased, e.g. "GDPR Art. 17 request #123"`)
		return
	}
	if err := erasePerson(ctx, s.store, erasureLog(s.cfg), u, apiActor(c), req.Reason, s.cfg.Now()); err != nil {
		s.internal(c, "erase user", err)
		return
	}
	s.changed()
	c.Status(http.StatusNoContent)
}
