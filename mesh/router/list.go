package router

import (
	"net/http"
	"time"
)

// serveList answers GET /v1/models and GET /api/tags with the models the
// netmap says nodes serve to this person, merged over all nodes.
func (r *Router) serveList(w http.ResponseWriter, req *http.Request, s *snapshot) {
	if e := r.listable(req, s); e != nil {
		writeError(w, req, e)
		return
	}
	if isOllama(req.URL.Path) {
		writeJSON(w, http.StatusOK, ollamaTags(s))
		return
	}
	data := make([]openAIModel, 0, len(s.models))
	for _, m := range s.models {
		data = append(data, r.openAIModel(m))
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// serveOne answers GET /v1/models/{model}.
func (r *Router) serveOne(w http.ResponseWriter, req *http.Request, s *snapshot, model string) {
	if e := r.listable(req, s); e != nil {
		writeError(w, req, e)
		return
	}
	if len(s.byModel[model]) == 0 {
		writeError(w, req, unknownModel(s, model))
		return
	}
	writeJSON(w, http.StatusOK, r.openAIModel(model))
}

func (r *Router) listable(req *http.Request, s *snapshot) *apiError {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return &apiError{status: http.StatusMethodNotAllowed, typ: "invalid_request_error", code: "method_not_allowed",
			msg: req.URL.Path + " wants GET, got " + req.Method}
	}
	if s == nil || s.nm == nil {
		return unavailable("moat is not connected to the mesh yet; check `moat status`", "not_connected")
	}
	if why := r.loginProblem(s); why != "" {
		return loginRequired(why)
	}
	return nil
}

// openAIModel is one entry of OpenAI's model list.
type openAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (r *Router) openAIModel(m string) openAIModel {
	return openAIModel{ID: m, Object: "model", Created: 0, OwnedBy: "moat"}
}

// ollamaModel is one entry of Ollama's /api/tags.
type ollamaModel struct {
	Name       string    `json:"name"`
	Model      string    `json:"model"`
	ModifiedAt time.Time `json:"modified_at"`
	Size       int64     `json:"size"`
	Digest     string    `json:"digest"`
	Details    struct{}  `json:"details"`
}

func ollamaTags(s *snapshot) map[string]any {
	ms := make([]ollamaModel, 0, len(s.models))
	for _, m := range s.models {
		ms = append(ms, ollamaModel{Name: m, Model: m, ModifiedAt: s.nm.Created})
	}
	return map[string]any{"models": ms}
}
