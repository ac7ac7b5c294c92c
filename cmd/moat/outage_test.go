package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/mesh/client"
)

func TestUpKeepsServingWhenCoordinatorIsGone(t *testing.T) {
	c := coordtest.Start(t)
	bob := c.AddPerson(t, "bob@example.com", false)
	dir := t.TempDir() + "/state"
	signIn(t, dir, c, bob)
	_, upErr, upDone := startUp(t, dir)
	st := waitConnected(t, dir)

	c.Stop()
	waitFor(t, "status to say the coordinator is unreachable", func() bool {
		s, err := client.FetchStatus(context.Background(), client.Dir(dir))
		return err == nil && strings.Contains(s.Problem, "cannot reach the coordinator")
	})
	if status := get(t, st.Endpoint+"/v1/models"); status != http.StatusOK {
		t.Fatalf("endpoint without a coordinator: %d, want the last netmap kept", status)
	}
	if code, out, _ := run(t, dir, "status"); code != 0 || !strings.Contains(out, "cannot reach the coordinator") || !strings.Contains(out, "bob@example.com") {
		t.Fatalf("moat status: %d\n%s", code, out)
	}
	if !strings.Contains(upErr.String(), "retrying, the last netmap stays in use") {
		t.Fatalf("moat up did not tell the person:\n%s", upErr)
	}
	if code, _, _ := run(t, dir, "down"); code != 0 || <-upDone != 0 {
		t.Fatal("moat down")
	}
}

func TestUpRefusals(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := run(t, dir, "up"); code != 1 || !strings.Contains(errOut, "moat login") {
		t.Fatalf("up without login: %d %s", code, errOut)
	}
	if code, _, errOut := run(t, dir, "status"); code != 1 || !strings.Contains(errOut, "not signed in") {
		t.Fatalf("status without login: %d %s", code, errOut)
	}
	if code, _, errOut := run(t, dir, "down"); code != 1 || !strings.Contains(errOut, "not running") {
		t.Fatalf("down without up: %d %s", code, errOut)
	}
	err := checkUpFlags(&client.Config{Listen: "0.0.0.0:0"}, false)
	if err == nil || !strings.Contains(err.Error(), "--listen-insecure-any") {
		t.Fatalf("non-loopback listen: %v", err)
	}
}

// TestUpWithCoordinatorUnreachable: `moat up` started while the
// coordinator cannot be reached says so in one plain sentence, with what
// to check, and keeps trying.
func TestUpWithCoordinatorUnreachable(t *testing.T) {
	c := coordtest.Start(t)
	carol := c.AddPerson(t, "carol@example.com", false)
	dir := t.TempDir() + "/state"
	signIn(t, dir, c, carol)
	c.Stop()

	_, upErr, upDone := startUp(t, dir)
	var problem string
	waitFor(t, "status to say the coordinator is unreachable", func() bool {
		s, err := client.FetchStatus(context.Background(), client.Dir(dir))
		if err == nil {
			problem = s.Problem
		}
		return strings.Contains(problem, "cannot reach the coordinator")
	})
	for _, want := range []string{c.URL, "connection refused", "retrying", "check the URL"} {
		if !strings.Contains(problem, want) {
			t.Errorf("problem lacks %q: %s", want, problem)
		}
	}
	for _, noise := range []string{"dial tcp", `Get "`, "api/v1/netmap", "the last netmap"} {
		if strings.Contains(upErr.String(), noise) {
			t.Errorf("moat up printed %q:\n%s", noise, upErr)
		}
	}
	if !strings.Contains(upErr.String(), problem) {
		t.Errorf("moat up did not print the problem:\n%s", upErr)
	}
	if code, _, _ := run(t, dir, "down"); code != 0 || <-upDone != 0 {
		t.Fatal("moat down")
	}
}
