package main

import (
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/internal/browsertest"
)

// `moat login` prints the code its sign-in page shows, and a refused
// sign-in ends it at once with the reason instead of leaving it polling
// until the link expires.
func TestLoginPrintsCodeAndEndsOnRefusal(t *testing.T) {
	c := coordtest.Start(t, func(cfg *coordinator.Config) { cfg.OIDC.AllowedDomains = []string{"example.org"} })
	alice := c.AddPerson(t, "alice@example.com", false)
	shown := make(chan string, 1)
	old := openBrowser
	openBrowser = func(url string) {
		go func() {
			page, err := browsertest.New(nil).Get(url)
			if err != nil {
				shown <- err.Error()
				return
			}
			shown <- page.Text("samp")
			c.SignIn(url, alice) // refused: example.com is not allowed
		}()
	}
	t.Cleanup(func() { openBrowser = old })

	type result struct {
		code     int
		out, err string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := run(t, t.TempDir()+"/state", "login", "--coordinator", c.URL)
		done <- result{code, out, errOut}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("moat login still waits 15 s after its sign-in was refused")
	}
	code := <-shown
	if len(code) != 9 || !strings.Contains(r.out, "The page shows the code "+code) {
		t.Fatalf("the page shows %q; moat login printed:\n%s", code, r.out)
	}
	if r.code != 1 || !strings.Contains(r.err, "refused") || !strings.Contains(r.err, "not in a domain allowed to use moat") {
		t.Fatalf("moat login: exit %d, stderr:\n%s", r.code, r.err)
	}
}
