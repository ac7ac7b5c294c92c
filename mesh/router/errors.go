package router

import (
	"net/http"

	"github.com/moatmesh/moat/mesh/llmapi"
)

// apiError is an error the router answers itself, rendered in the shape of
// the API the caller spoke.
type apiError struct {
	status int
	code   string // stable code, e.g. "model_not_found"
	msg    string // what happened and what to do
}

func (e *apiError) Error() string { return e.msg }

func badRequest(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "invalid_request", msg: msg}
}

// loginRequired is the answer when this device can no longer use the mesh
// until its person signs in again.
func loginRequired(why string) *apiError {
	return &apiError{status: http.StatusUnauthorized, code: "login_required",
		msg: why + "; run `moat login` (a running `moat up` picks up the new sign-in)"}
}

func unavailable(msg, code string) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: code, msg: msg}
}

// writeError answers e in the shape of the family of the request's path.
func writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	llmapi.WriteError(w, llmapi.FamilyOfPath(r.URL.Path), e.status, e.code, e.msg)
}
