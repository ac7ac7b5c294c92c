package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/policy"
)

// policyFile names the policy in its errors.
const policyFile = "policy.hujson"

// checkPolicy parses text and runs its tests, returning the problems,
// or an error (errPolicyBusy) when it cannot check now.
func checkPolicy(ctx context.Context, text string) (*policy.Policy, []policyProblem, error) {
	var p *policy.Policy
	var err error
	if berr := checkingPolicy(ctx, func() { p, err = policy.Check(policyFile, []byte(text)) }); berr != nil {
		return nil, nil, berr
	}
	if err == nil {
		return p, nil, nil
	}
	probs := policyProblems(err)
	out := make([]policyProblem, len(probs))
	for i, pr := range probs {
		out[i] = policyProblem(pr)
	}
	return nil, out, nil
}

type policyBody struct {
	Text    string `json:"text"`
	Message string `json:"message"`
	// Base, when given, is the version the edit started from: the save is
	// refused (409) if another version was saved since.
	Base *int64 `json:"base,omitempty"`
}

func (s *Server) getPolicy(c *gin.Context) {
	pv, err := s.store.Policy(c.Request.Context())
	if errors.Is(err, store.ErrNotFound) {
		c.JSON(http.StatusOK, builtinPolicyAnswer{Text: builtinPolicy, Builtin: true})
		return
	}
	if err != nil {
		s.internal(c, "load policy", err)
		return
	}
	c.JSON(http.StatusOK, pv)
}

// validatePolicy checks a policy and runs its tests without saving it.
func (s *Server) validatePolicy(c *gin.Context) {
	var b policyBody
	if !decode(c, limitPolicy, &b) {
		return
	}
	_, probs, err := checkPolicy(c.Request.Context(), b.Text)
	switch {
	case err != nil:
		s.policyBusy(c, err)
		return
	case probs != nil:
		c.JSON(http.StatusUnprocessableEntity, policyCheckAnswer{Errors: probs})
		return
	}
	c.JSON(http.StatusOK, policyCheckAnswer{OK: true})
}

// savePolicy validates, tests and saves a policy, then puts it in force:
// PUT /api/v1/admin/policy {"text": "...", "message": "why"}.
func (s *Server) savePolicy(c *gin.Context) {
	var b policyBody
	if !decode(c, limitPolicy, &b) {
		return
	}
	base := int64(-1)
	if b.Base != nil {
		base = max(*b.Base, 0)
	}
	s.putPolicy(c, b.Text, b.Message, "policy.save", base)
}

func (s *Server) putPolicy(c *gin.Context, text, message, action string, base int64) {
	pv, probs, err := s.savePolicyAs(c.Request.Context(), apiActor(c), text, message, action, base)
	switch {
	case errors.Is(err, store.ErrConflict):
		apiError(c, http.StatusConflict, "conflict", fmt.Sprintf("another policy version was saved since version %d; load it, merge your change and save again", base))
	case errors.Is(err, errPolicyBusy):
		s.policyBusy(c, err)
	case err != nil:
		s.internal(c, "save policy", err)
	case probs != nil:
		c.JSON(http.StatusUnprocessableEntity, policyCheckAnswer{Errors: probs})
	default:
		c.JSON(http.StatusOK, policyCheckAnswer{OK: true, ID: pv.ID})
	}
}

// savePolicyAs checks text and runs its tests and, when they pass, saves
// it as the newest policy on behalf of actor (a user id or "token:<id>"),
// puts it in force, records action in the admin trail and pushes the new
// netmaps. A policy that fails is not saved: its problems come back, with
// a nil error. With base ≥ 0 it saves only while version base is the
// newest (store.ErrConflict otherwise). The admin API and the web UI both
// save through here.
func (s *Server) savePolicyAs(ctx context.Context, actor, text, message, action string, base int64) (*store.PolicyVersion, []policyProblem, error) {
	p, probs, err := checkPolicy(ctx, text)
	if err != nil || probs != nil {
		return nil, probs, err
	}
	pv := &store.PolicyVersion{Text: text, Author: actor, Message: message}
	if err := s.store.SavePolicyOver(ctx, pv, base); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	s.mu.policy, s.mu.policyID = p, pv.ID
	s.mu.Unlock()
	s.recordAs(ctx, actor, action, strconv.FormatInt(pv.ID, 10), message)
	s.changed()
	return pv, nil, nil
}

// policyBusy answers 503 when no policy check could start.
func (s *Server) policyBusy(c *gin.Context, err error) {
	s.refuse("policy_checks_busy")
	c.Header("Retry-After", "30")
	apiError(c, http.StatusServiceUnavailable, "busy", err.Error())
}

// rollbackMessage is the message a rollback to version id is saved with.
func rollbackMessage(id int64) string { return fmt.Sprintf("rollback to version %d", id) }

func (s *Server) policyHistory(c *gin.Context) {
	n, _ := strconv.Atoi(c.DefaultQuery("limit", "50"))
	h, err := s.store.PolicyHistory(c.Request.Context(), min(max(n, 1), 500))
	if err != nil {
		s.internal(c, "load policy history", err)
		return
	}
	c.JSON(http.StatusOK, policyHistoryAnswer{Versions: h})
}

// rollbackPolicy saves an earlier version again as the newest.
func (s *Server) rollbackPolicy(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		apiError(c, http.StatusBadRequest, "bad_request", "policy version id: want a number")
		return
	}
	pv, err := s.store.PolicyVersion(c.Request.Context(), id)
	if s.notFound(c, err, "policy version") {
		return
	}
	s.putPolicy(c, pv.Text, rollbackMessage(id), "policy.rollback", -1)
}
