package main

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/internal/testlog"
	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/wire"
)

// syncBuffer holds a command's output while the test reads it.
type syncBuffer = testlog.Buffer

// run runs one moat command in-process with --state-dir dir.
func run(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb syncBuffer
	code := cli.Run(newRoot(), append([]string{args[0], "--state-dir", dir}, args[1:]...), &out, &errb)
	return code, out.String(), errb.String()
}

// signInThrough makes the "browser" that moat login opens sign p in.
func signInThrough(t *testing.T, c *coordtest.Coord, p *coordtest.Person) <-chan error {
	errc := make(chan error, 1)
	old := openBrowser
	openBrowser = func(url string) { go func() { errc <- c.SignIn(url, p) }() }
	t.Cleanup(func() { openBrowser = old })
	return errc
}

// signIn runs `moat login` with dir, signing p in through the browser
// flow, and returns what it printed. A failed sign-in fails the test at
// once rather than leave `moat login` waiting.
func signIn(t *testing.T, dir string, c *coordtest.Coord, p *coordtest.Person) string {
	t.Helper()
	errc := signInThrough(t, c, p)
	type result struct {
		code        int
		out, errOut string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errOut := run(t, dir, "login", "--coordinator", c.URL)
		done <- result{code, out, errOut}
	}()
	var r result
	select {
	case r = <-done:
	case err := <-errc:
		if err != nil {
			t.Fatalf("signing in through the browser: %v", err)
		}
		r, errc = <-done, nil
	}
	if r.code != 0 {
		t.Fatalf("moat login: exit %d\n%s\n%s", r.code, r.out, r.errOut)
	}
	if errc != nil {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	return r.out
}

// waitFor polls cond until it holds, failing after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func TestLoginUpStatusLogout(t *testing.T) {
	c := coordtest.Start(t)
	alice := c.AddPerson(t, "alice@example.com", false)
	dir := t.TempDir() + "/state"

	out := signIn(t, dir, c, alice)
	if !strings.Contains(out, c.URL+"/") || !strings.Contains(out, "Signed in as alice@example.com") || !strings.Contains(out, "█") {
		t.Fatalf("login output lacks the URL, the QR code or the identity:\n%s", out)
	}
	checkSecretsKept(t, client.Dir(dir), out)

	upOut, upErr, upDone := startUp(t, dir)
	st := waitConnected(t, dir)
	if st.Identity.Login != "alice@example.com" || st.NetMapSeq == 0 {
		t.Fatalf("status after up: %+v", st)
	}
	if code, out, _ := run(t, dir, "status"); code != 0 || !strings.Contains(out, "alice@example.com") || !strings.Contains(out, ": connected") ||
		!strings.Contains(out, "Use:\n  (no grant lets you use a model)") { // asked of the coordinator
		t.Fatalf("moat status: %d\n%s", code, out)
	}
	if code, _, _ := run(t, dir, "models"); code != 0 {
		t.Fatalf("moat models: exit %d", code)
	}
	checkLocalToken(t, dir, st.Endpoint)
	if status := get(t, st.Endpoint+"/v1/models"); status != http.StatusOK {
		t.Fatalf("GET /v1/models: %d", status)
	}

	old, _ := client.Dir(dir).LoadLogin()
	if code, out, errOut := run(t, dir, "logout"); code != 0 {
		t.Fatalf("moat logout: %d\n%s%s", code, out, errOut)
	}
	refused(t, c, old)
	waitFor(t, "the endpoint to ask for a login", func() bool { return get(t, st.Endpoint+"/v1/models") == http.StatusUnauthorized })

	// A new login is picked up by the running `moat up`.
	signIn(t, dir, c, alice)
	waitFor(t, "the endpoint to serve again", func() bool { return get(t, st.Endpoint+"/v1/models") == http.StatusOK })

	if code, out, errOut := run(t, dir, "down"); code != 0 {
		t.Fatalf("moat down: %d\n%s%s", code, out, errOut)
	}
	if code := <-upDone; code != 0 {
		t.Fatalf("moat up exited %d\n%s\n%s", code, upOut, upErr)
	}
	if !strings.Contains(upOut.String(), "moat is up") || !strings.Contains(upErr.String(), "moat login") {
		t.Fatalf("moat up output:\n%s\n%s", upOut, upErr)
	}
}

func startUp(t *testing.T, dir string) (*syncBuffer, *syncBuffer, <-chan int) {
	t.Helper()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(newRoot(), []string{"up", "--state-dir", dir, "--listen", "127.0.0.1:0"}, &out, &errb)
	}()
	t.Cleanup(func() { client.Down(context.Background(), client.Dir(dir)) })
	return &out, &errb, done
}

func waitConnected(t *testing.T, dir string) *client.Status {
	t.Helper()
	var st *client.Status
	waitFor(t, "moat up to receive a netmap", func() bool {
		s, err := client.FetchStatus(context.Background(), client.Dir(dir))
		st = s
		return err == nil && s.Connected && s.NetMapSeq > 0
	})
	return st
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// refused checks that the coordinator no longer accepts l's credential.
func refused(t *testing.T, c *coordtest.Coord, l *client.Login) {
	t.Helper()
	cl, err := control.New(control.Config{URL: c.URL, Credential: l.Credential})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = cl.Stream(ctx, 0, func(*wire.NetMap) error { return errors.New("got a netmap") })
	if !control.IsAuth(err) {
		t.Fatalf("revoked credential: %v, want refused", err)
	}
}

// checkSecretsKept checks file modes and that nothing secret was printed.
func checkSecretsKept(t *testing.T, dir client.Dir, printed string) {
	t.Helper()
	if fi, err := os.Stat(string(dir)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v %v", fi.Mode(), err)
	}
	for _, f := range []string{client.KeyFile, client.LoginFile} {
		fi, err := os.Stat(dir.Path(f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v; want 0600", f, fi.Mode(), err)
		}
	}
	priv, _ := dir.DeviceKey(false)
	l, _ := dir.LoadLogin()
	if strings.Contains(printed, priv.Text()) || strings.Contains(printed, string(l.Credential)) {
		t.Fatal("moat printed the private key or the credential")
	}
	if _, err := os.Stat(dir.Path(client.SocketFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("control socket present before up: %v", err)
	}
}
