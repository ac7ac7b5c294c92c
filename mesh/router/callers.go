package router

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/moatmesh/moat/mesh/router/peercred"
)

// Who may use the endpoint. On a shared machine (terminal servers, lab
// boxes) every local user reaches 127.0.0.1, so loopback alone proves
// nothing. A caller is served when it sends the local API token
// (Config.Token) as "Authorization: Bearer TOKEN" or "x-api-key: TOKEN" —
// the portable way, and how SDKs pass an API key — or, without a token,
// when the system says its socket belongs to the same user as this
// process (Linux: peercred.LoopbackUID) and it is not a browser (whose
// pages may come from anyone). Anyone else gets a 401 in the
// API's own error shape saying how to get the token. The token never
// goes on to the nodes (forwardHeaders drops both headers).

// authorize says why req may not use the endpoint, or nil.
func (r *Router) authorize(req *http.Request) *apiError {
	tok := presentedToken(req.Header)
	if tok != "" && r.tokenOK(tok) {
		return nil
	}
	if !fromBrowser(req.Header) && r.sameUser(req) {
		return nil
	}
	if tok != "" {
		return &apiError{status: http.StatusUnauthorized, code: "invalid_api_key",
			msg: "this is not your moat API key; use the output of `moat token` (run as the person signed in to moat on this machine) as the API key"}
	}
	return &apiError{status: http.StatusUnauthorized, code: "missing_api_key",
		msg: "moat's local endpoint needs your moat API key: run `moat token` and pass its output as the API key (OPENAI_API_KEY, or an \"Authorization: Bearer …\" header)"}
}

// fromBrowser reports whether a browser sent req: a page (perhaps one
// another local user serves on localhost) acting through this user's
// browser connects as this user, so browsers need the token.
func fromBrowser(h http.Header) bool {
	return h.Get("Origin") != "" || h.Get("Sec-Fetch-Site") != ""
}

// presentedToken is the API key the caller sent, "" for none.
func presentedToken(h http.Header) string {
	if scheme, tok, ok := strings.Cut(h.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(tok)
	}
	return strings.TrimSpace(h.Get("X-Api-Key"))
}

// tokenOK compares tok with the configured token in constant time (over
// their hashes, so the length is not compared either).
func (r *Router) tokenOK(tok string) bool {
	if r.token == nil {
		return false
	}
	got := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(got[:], r.token[:]) == 1
}

// ConnContext is for the serving http.Server's ConnContext: with it the
// router asks the system for a connection's user once, not on every
// request (a socket's owner is fixed when the socket is made).
func (r *Router) ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, callerKey{}, new(connCaller))
}

type callerKey struct{}

// connCaller is one connection's user, once known.
type connCaller struct {
	mu    sync.Mutex
	known bool
	uid   uint32
}

// sameUser reports whether req's connection comes from a process of the
// user running the router, as the system tells (false where it cannot).
func (r *Router) sameUser(req *http.Request) bool {
	cc, _ := req.Context().Value(callerKey{}).(*connCaller)
	if cc == nil {
		uid, ok := r.callerUID(req)
		return ok && uid == r.uid
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if !cc.known {
		cc.uid, cc.known = r.callerUID(req) // a failure is asked again next time
	}
	return cc.known && cc.uid == r.uid
}

// callerUID asks the system which user req's connection belongs to.
func (r *Router) callerUID(req *http.Request) (uint32, bool) {
	la, ok := req.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return 0, false
	}
	local, err1 := netip.ParseAddrPort(la.String())
	remote, err2 := netip.ParseAddrPort(req.RemoteAddr)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	uid, err := peercred.LoopbackUID(local, remote)
	if err != nil {
		r.log.Debug("caller's user unknown; the API key is needed", "peer", req.RemoteAddr, "err", err)
		return 0, false
	}
	return uid, true
}
