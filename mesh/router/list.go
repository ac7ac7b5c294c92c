package router

import (
	"net/http"

	"github.com/moatmesh/moat/mesh/llmapi"
)

// serveList answers GET /v1/models and GET /api/tags with the models the
// netmap says nodes serve to this person through the path's API family,
// merged over all nodes, and GET /v1/models/{model} with one of them.
func (r *Router) serveList(w http.ResponseWriter, req *http.Request, s *snapshot, api *llmapi.API) {
	if e := r.listable(req, s); e != nil {
		writeError(w, req, e)
		return
	}
	names := s.models[api.Family]
	if api.PathModel {
		model := api.PathModelName(req.URL.Path)
		if len(s.byModel[route{api.Family, model}]) == 0 {
			writeError(w, req, unknownModel(s, api, model))
			return
		}
		names = []string{model}
	}
	llmapi.WriteJSON(w, http.StatusOK, llmapi.ListBody(api, names, "moat", s.nm.Created))
}

func (r *Router) listable(req *http.Request, s *snapshot) *apiError {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
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
