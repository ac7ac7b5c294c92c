package idp

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/coordinator/store"
)

func TestMain(m *testing.M) {
	hashParams = argon2Params{Time: 1, Memory: 1024, Threads: 1} // fast tests; format unchanged
	os.Exit(m.Run())
}

const (
	rpID       = "moat-coordinator"
	rpSecret   = "rp-secret-for-tests-only"
	publicID   = "moat-cli"
	rpCallback = "/callback"
)

// clock is the provider's clock: real time plus an offset tests move.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// env is a provider on a real HTTP server over the real SQLite store, with
// a relying-party callback at /callback on the same server.
type env struct {
	t       *testing.T
	ctx     context.Context
	srv     *httptest.Server
	st      *store.DB
	p       *Provider
	clock   *clock
	dataDir string
	box     *seal.Box
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "moat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, err := seal.LoadOrCreateKey(filepath.Join(dir, "seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, st: st, clock: &clock{}, dataDir: dir, box: seal.New(key)}
	var handler http.Handler = http.NotFoundHandler()
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	e.p = e.newProvider()
	mux := http.NewServeMux()
	mux.Handle(PathPrefix+"/", e.p.Handler())
	handler = mux
	return e
}

func (e *env) issuer() string { return e.srv.URL + PathPrefix }

func (e *env) newProvider() *Provider {
	e.t.Helper()
	p, err := New(e.ctx, Config{
		Issuer: e.issuer(),
		Clients: []Client{
			{ID: rpID, Secret: rpSecret, RedirectURIs: []string{e.srv.URL + rpCallback}},
			{ID: publicID, RedirectURIs: []string{e.srv.URL + rpCallback}},
		},
		DataDir:  e.dataDir,
		Box:      e.box,
		Now:      e.clock.now,
		Insecure: true,
		ClientKey: func(r *http.Request) string { // browsers may say where they are
			if c := r.Header.Get("X-Test-Client"); c != "" {
				return c
			}
			return "127.0.0.1"
		},
	}, e.st)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { p.Close() })
	return p
}

// browser is a headless browser: a cookie jar, following redirects except
// to the relying party's callback.
type browser struct {
	t    *testing.T
	c    *http.Client
	from string // the client address it claims (X-Test-Client), if any
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, c: &http.Client{
		Jar: jar,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Path == rpCallback {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}}
}

// page is a response with its body read.
type page struct {
	*http.Response
	body string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	if b.from != "" {
		req.Header.Set("X-Test-Client", b.from)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{resp, string(body)}
}

func (b *browser) get(u string) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="(\w+)" value="([^"]*)">`)

// form returns the hidden fields of the page's form, plus extra fields.
func (p page) form(extra ...string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v
}

// action is the absolute URL the page's form posts to.
func (p page) action() string {
	m := regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	u, _ := p.Request.URL.Parse(html.UnescapeString(m[1]))
	return u.String()
}

// fieldError is the error shown next to a field, or "".
func (p page) fieldError() string {
	m := regexp.MustCompile(`<p class="error field" role="alert">([^<]*)</p>`).FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func (p page) expect(t *testing.T, status int, contains string) {
	t.Helper()
	if p.StatusCode != status || !strings.Contains(p.body, contains) {
		t.Fatalf("%s %s: status %d, want %d containing %q; body:\n%s",
			p.Request.Method, p.Request.URL.Path, p.StatusCode, status, contains, p.body)
	}
}
