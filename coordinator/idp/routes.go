package idp

import (
	"net/http"

	"github.com/moatmesh/moat/coordinator/passkey"
)

// maxFormBytes bounds every form post.
const maxFormBytes = 16 << 10

// contentSecurityPolicy allows the pages their own stylesheet, the QR
// code's data: image and one script of their own (the passkey ceremony,
// /static/passkey.js), and nothing else: nothing inline.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (p *Provider) routes() http.Handler {
	mux := http.NewServeMux()
	pre := p.prefix
	mux.HandleFunc("GET "+pre+"/login", p.loginPage)
	mux.HandleFunc("POST "+pre+"/login", p.loginSubmit)
	mux.HandleFunc("GET "+pre+"/login/totp", p.totpPage)
	mux.HandleFunc("POST "+pre+"/login/totp", p.totpSubmit)
	mux.HandleFunc("POST "+pre+"/login/passkey", p.passkeySubmit)
	mux.HandleFunc("GET "+pre+"/setup", p.setupPage)
	mux.HandleFunc("POST "+pre+"/setup", p.setupSubmit)
	mux.HandleFunc("GET "+pre+"/signed-out", p.signedOut)
	mux.HandleFunc("GET "+pre+"/static/style.css", serveCSS)
	mux.HandleFunc("GET "+pre+"/static/passkey.js", passkey.ServeScript)
	opHandler := http.StripPrefix(pre, p.op)
	mux.Handle(pre+"/authorize/callback", p.callbackGuard(opHandler)) // every method
	mux.Handle(pre+"/oauth/token", tokenGuard(opHandler))

	mux.Handle(pre+"/", opHandler)
	return securityHeaders(mux)
}

// securityHeaders sets what every response of the provider carries; no
// response may be cached, framed or sniffed, or leak its URL (setup
// tokens, sign-in ids) in a Referer.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("Cache-Control", "no-store")
		h.Set("Pragma", "no-cache")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// callbackGuard lets only the browser that signed in collect the code:
// the sign-in must be finished and bound to this browser's cookie. Only
// GET passes, so that the id op reads (from the form) is the one checked
// here (from the query).
func (p *Provider) callbackGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		a, err := p.state.request(r.Context(), r.URL.Query().Get("id"), p.now())
		if err != nil {
			p.expired(w, err)
			return
		}
		if !p.boundTo(r, a) || !a.done {
			p.message(w, http.StatusForbidden, "Sign-in not finished in this browser",
				"Finish signing in in the browser where you started, or go back to the application and start again.")
			return
		}
		if a.coded {
			p.message(w, http.StatusConflict, "Already signed in", errCodeIssued.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (p *Provider) signedOut(w http.ResponseWriter, _ *http.Request) {
	p.message(w, http.StatusOK, "Signed out", "You are signed out. You can close this page.")
}
