package coordinator

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/moatmesh/moat/coordinator/idp"
)

// embeddedClientID is the coordinator's client registration at its own
// embedded provider.
const embeddedClientID = "moat-coordinator"

// startEmbedded runs the embedded OpenID provider under /idp and points
// the relying party at it. Discovery, JWKS and the token exchange go to
// the provider in-process (no hairpin through proxies or TLS); the
// browser reaches it at PUBLIC_URL/idp like any IdP. Everything after
// that is the same go-oidc code path as for an external IdP.
func (a *authenticator) startEmbedded(ctx context.Context) error {
	s := a.s
	sec, err := s.secretSetting(ctx, "idp-client-secret")
	if err != nil {
		return err
	}
	// Every replica derives the provider's form and token keys from it.
	shared, err := s.secretSetting(ctx, "idp-state-key")
	if err != nil {
		return err
	}
	u, _ := url.Parse(s.cfg.PublicURL)
	a.issuer, a.clientID, a.secret, a.embedded = s.url(idp.PathPrefix), embeddedClientID, hex.EncodeToString(sec), true
	p, err := idp.New(ctx, idp.Config{
		Issuer:    a.issuer,
		Clients:   []idp.Client{{ID: a.clientID, Secret: a.secret, RedirectURIs: []string{a.redirect}}},
		DataDir:   s.cfg.DataDir,
		Secret:    shared,
		Box:       s.box,
		Logger:    s.log.With("component", "idp"),
		Now:       s.cfg.Now,
		Insecure:  u.Scheme == "http",
		ClientKey: func(r *http.Request) string { return s.clientKeyOf(r) },
	}, s.store)
	if err != nil {
		return fmt.Errorf("embedded identity provider: %w", err)
	}
	a.idp, a.closeIdP = p.Handler(), func() { p.Close() }
	a.client = &http.Client{Transport: inProcess{a.idp}}
	return nil
}

// inProcess is an http.RoundTripper that serves requests with a handler
// in this process. The provider's answers to the relying party
// (discovery, keys, tokens) are small, so they are buffered whole.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	w := &bufferedResponse{header: http.Header{}}
	t.h.ServeHTTP(w, r)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.header,
		Body:          io.NopCloser(&w.body),
		ContentLength: int64(w.body.Len()),
		Request:       r,
	}, nil
}

// bufferedResponse is an http.ResponseWriter that keeps the answer in
// memory.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *bufferedResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}
