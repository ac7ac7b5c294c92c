package router

import (
	"encoding/json"
	"net/http"
	"strings"
)

// apiError is an error the router answers itself, rendered in the shape of
// the API the caller spoke.
type apiError struct {
	status int
	typ    string // OpenAI error type, e.g. "invalid_request_error"
	code   string // stable code, e.g. "model_not_found"
	msg    string // what happened and what to do
}

func (e *apiError) Error() string { return e.msg }

func badRequest(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "invalid_request", msg: msg}
}

// loginRequired is the answer when this device can no longer use the mesh
// until its person signs in again.
func loginRequired(why string) *apiError {
	return &apiError{status: http.StatusUnauthorized, typ: "authentication_error", code: "login_required",
		msg: why + "; run `moat login` (a running `moat up` picks up the new sign-in)"}
}

// isOllama reports whether path is one of Ollama's (/api/...).
func isOllama(path string) bool { return strings.HasPrefix(path, "/api/") }

// writeError answers e in OpenAI's shape, or Ollama's for /api/ paths.
func writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	var body any
	if isOllama(r.URL.Path) {
		body = map[string]string{"error": e.msg}
	} else {
		body = map[string]any{"error": map[string]any{"message": e.msg, "type": e.typ, "code": e.code}}
	}
	writeJSON(w, e.status, body)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
