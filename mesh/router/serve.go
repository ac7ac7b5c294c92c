package router

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/moatmesh/moat/mesh/llmapi"
)

// ServeHTTP answers one local API call: the paths of mesh/llmapi's table,
// lists from the netmap, model requests forwarded by their "model".
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if e := r.check(req); e != nil {
		writeError(w, req, e)
		return
	}
	if e := r.authorize(req); e != nil {
		writeError(w, req, e)
		return
	}
	s := r.snap.Load()
	if name, ok := llmapi.MCPServerOf(req.URL.Path); ok {
		r.serveMCP(w, req, s, name)
		return
	}
	switch api := llmapi.Lookup(req.URL.Path); {
	case api == nil:
		writeError(w, req, &apiError{status: http.StatusNotFound, code: "unknown_path",
			msg: fmt.Sprintf("%s %s is not an API path moat serves; it serves %s", req.Method, req.URL.Path, strings.Join(llmapi.Paths(), ", "))})
	case api.Kind == llmapi.KindList:
		r.serveList(w, req, s, api)
	default:
		r.serveModel(w, req, s, api)
	}
}

// check refuses what the router never serves: calls from web pages or
// foreign host names, and calls before a netmap or after Close.
func (r *Router) check(req *http.Request) *apiError {
	if !r.cfg.AllowAnyHost && (!loopbackHost(req.Host) || !loopbackOrigin(req.Header.Get("Origin"))) {
		return &apiError{status: http.StatusForbidden, code: "not_loopback",
			msg: "moat's local endpoint only answers programs on this device (Host and Origin must be localhost)"}
	}
	if r.closed() {
		return unavailable("moat is shutting down", "shutting_down")
	}
	return nil
}

// loopbackHost reports whether a Host header names this machine.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// loopbackOrigin accepts no Origin (programs) or a page served from this
// machine.
func loopbackOrigin(origin string) bool {
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && loopbackHost(u.Host)
}

// serveModel routes a request by its "model".
func (r *Router) serveModel(w http.ResponseWriter, req *http.Request, s *snapshot, api *llmapi.API) {
	if req.Method != api.Method {
		w.Header().Set("Allow", api.Method)
		writeError(w, req, &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
			msg: fmt.Sprintf("%s wants %s, got %s", req.URL.Path, api.Method, req.Method)})
		return
	}
	body, e := r.readBody(w, req)
	if e != nil {
		writeError(w, req, e)
		return
	}
	model, err := llmapi.ReadModel(body, api)
	if err != nil {
		writeError(w, req, badRequest(err.Error()))
		return
	}
	if e := r.routable(s, api, model); e != nil {
		writeError(w, req, e)
		return
	}
	r.forward(w, req, s, route{api.Family, model}, body)
}

// routable says why a request for model cannot go anywhere, or nil.
func (r *Router) routable(s *snapshot, api *llmapi.API, model string) *apiError {
	if s == nil || s.nm == nil {
		return unavailable("moat is not connected to the mesh yet; check `moat status`", "not_connected")
	}
	if why := r.loginProblem(s); why != "" {
		return loginRequired(why)
	}
	if len(s.byModel[route{api.Family, model}]) == 0 {
		return unknownModel(s, api, model)
	}
	return nil
}

// unknownModel is the answer for a model no node serves through api's
// family: which models there are, or which path serves this one.
func unknownModel(s *snapshot, api *llmapi.API, model string) *apiError {
	for _, f := range []llmapi.Family{llmapi.OpenAI, llmapi.Ollama} {
		if f != api.Family && len(s.byModel[route{f, model}]) > 0 && api.Kind == llmapi.KindModel {
			return &apiError{status: http.StatusBadRequest, code: "wrong_api_family",
				msg: fmt.Sprintf("model %q is served with the %s API only and moat does not translate; call %s instead of %s", model, f, api.Instead(f), api.Path)}
		}
	}
	avail := "none"
	if ms := s.models[api.Family]; len(ms) > 0 {
		avail = strings.Join(ms, ", ")
	}
	return &apiError{status: http.StatusNotFound, code: "model_not_found",
		msg: fmt.Sprintf("model %q is not served to you on the mesh through the %s API; models you may use with it: %s", model, api.Family, avail)}
}

// readBody reads the whole request body within the size limit.
func (r *Router) readBody(w http.ResponseWriter, req *http.Request) ([]byte, *apiError) {
	if req.ContentLength > r.cfg.MaxBodyBytes {
		return nil, tooLarge(r.cfg.MaxBodyBytes)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge(r.cfg.MaxBodyBytes)
	case err != nil:
		return nil, badRequest("reading the request body: " + err.Error())
	}
	return b, nil
}

func tooLarge(limit int64) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, code: "request_too_large",
		msg: fmt.Sprintf("request body is over moat's limit of %d bytes", limit)}
}
