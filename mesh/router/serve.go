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
)

// modelPaths are the POST paths routed by their "model".
var modelPaths = map[string]bool{
	"/v1/chat/completions": true,
	"/v1/completions":      true,
	"/v1/embeddings":       true,
	"/v1/responses":        true,
	"/api/chat":            true,
	"/api/generate":        true,
	"/api/embed":           true,
	"/api/embeddings":      true,
	"/api/show":            true,
}

// ServeHTTP answers one local API call.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if e := r.check(req); e != nil {
		writeError(w, req, e)
		return
	}
	s := r.snap.Load()
	switch p := req.URL.Path; {
	case p == "/v1/models" || p == "/api/tags":
		r.serveList(w, req, s)
	case strings.HasPrefix(p, "/v1/models/"):
		r.serveOne(w, req, s, strings.TrimPrefix(p, "/v1/models/"))
	case modelPaths[p]:
		r.serveModel(w, req, s)
	default:
		writeError(w, req, &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "unknown_path",
			msg: fmt.Sprintf("%s %s is not an API path moat serves; it serves the OpenAI /v1/... and Ollama /api/... paths", req.Method, p)})
	}
}

// check refuses what the router never serves: calls from web pages or
// foreign host names, and calls before a netmap or after Close.
func (r *Router) check(req *http.Request) *apiError {
	if !r.cfg.AllowAnyHost && (!loopbackHost(req.Host) || !loopbackOrigin(req.Header.Get("Origin"))) {
		return &apiError{status: http.StatusForbidden, typ: "permission_error", code: "not_loopback",
			msg: "moat's local endpoint only answers programs on this device (Host and Origin must be localhost)"}
	}
	if r.closed() {
		return unavailable("moat is shutting down", "shutting_down")
	}
	return nil
}

func unavailable(msg, code string) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, typ: "service_unavailable", code: code, msg: msg}
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

// serveModel routes a POST by its "model".
func (r *Router) serveModel(w http.ResponseWriter, req *http.Request, s *snapshot) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, req, &apiError{status: http.StatusMethodNotAllowed, typ: "invalid_request_error", code: "method_not_allowed",
			msg: fmt.Sprintf("%s wants POST, got %s", req.URL.Path, req.Method)})
		return
	}
	body, e := r.readBody(w, req)
	if e != nil {
		writeError(w, req, e)
		return
	}
	model, err := ParseModel(body)
	if err != nil {
		writeError(w, req, badRequest(err.Error()))
		return
	}
	if e := r.routable(s, model); e != nil {
		writeError(w, req, e)
		return
	}
	r.forward(w, req, s, model, body)
}

// routable says why a request for model cannot go anywhere, or nil.
func (r *Router) routable(s *snapshot, model string) *apiError {
	if s == nil || s.nm == nil {
		return unavailable("moat is not connected to the mesh yet; check `moat status`", "not_connected")
	}
	if why := r.loginProblem(s); why != "" {
		return loginRequired(why)
	}
	if len(s.byModel[model]) == 0 {
		return unknownModel(s, model)
	}
	return nil
}

func unknownModel(s *snapshot, model string) *apiError {
	avail := "none"
	if len(s.models) > 0 {
		avail = strings.Join(s.models, ", ")
	}
	return &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "model_not_found",
		msg: fmt.Sprintf("model %q is not served to you on the mesh; models you may use: %s", model, avail)}
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
	return &apiError{status: http.StatusRequestEntityTooLarge, typ: "invalid_request_error", code: "request_too_large",
		msg: fmt.Sprintf("request body is over moat's limit of %d bytes", limit)}
}
