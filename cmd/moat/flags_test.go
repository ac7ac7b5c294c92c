package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/internal/cli/clitest"
	"github.com/moatmesh/moat/mesh/client"
)

// TestCLI runs the built moat as a person would.
func TestCLI(t *testing.T) {
	bin := clitest.Build(t, "github.com/moatmesh/moat/cmd/moat")
	run := func(env []string, args ...string) clitest.Result { return clitest.Run(t, bin, env, args...) }

	t.Run("help shows only the command's own flags", func(t *testing.T) {
		r := run(nil, "login", "-h")
		r.Want(t, 0, []string{"--coordinator", "--no-browser", "--state-dir", "MOAT_STATE_DIR"}, nil)
		if strings.Contains(r.Stdout, "--listen") {
			t.Errorf("login -h shows up's flags:\n%s", r.Stdout)
		}
		run(nil, "up", "--help").Want(t, 0, []string{"--log-level", "-v, --verbose", "--listen"}, nil)
		run(nil, "status", "--help").Want(t, 0, []string{"--json"}, nil)
	})
	t.Run("version", func(t *testing.T) {
		run(nil, "--version").Want(t, 0, []string{"moat " + clitest.TestVersion}, nil)
		run(nil, "version").Want(t, 0, []string{"moat " + clitest.TestVersion}, nil)
	})
	t.Run("usage errors", func(t *testing.T) {
		run(nil, "up", "--log-level", "verbose").Want(t, cli.ExitUsage, nil, []string{"want debug, info, warn or error"})
		run(nil, "status", "now").Want(t, cli.ExitUsage, nil, []string{`unexpected argument "now"`})
		run(nil, "up", "--guard-port", "0").Want(t, cli.ExitUsage, nil, []string{"--guard-port: must be 1..65535"})
		run([]string{"MOAT_LOG_LEVEL=loud"}, "up").Want(t, cli.ExitUsage, nil, []string{"MOAT_LOG_LEVEL"})
		run(nil, "sign-in").Want(t, cli.ExitUsage, nil, []string{`unknown command "sign-in"`})
	})
	t.Run("not signed in", func(t *testing.T) {
		run([]string{"MOAT_STATE_DIR=" + t.TempDir()}, "status").Want(t, cli.ExitFailure, nil, []string{"moat status: "})
	})
	t.Run("completion", func(t *testing.T) { clitest.Completion(t, bin) })
}

// TestStatusExitCodes: status and models say whether moat up runs, in
// text and JSON, by their exit status.
func TestStatusExitCodes(t *testing.T) {
	c := coordtest.Start(t)
	alice := c.AddPerson(t, "alice@example.com", false)
	dir := t.TempDir() + "/state"
	signIn(t, dir, c, alice)

	code, out, _ := run(t, dir, "status")
	if code != cli.ExitNo || !strings.Contains(out, "moat up is not running") {
		t.Errorf("status without moat up: exit %d, want %d\n%s", code, cli.ExitNo, out)
	}
	var st client.Status
	code, out, _ = run(t, dir, "status", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != cli.ExitNo || st.Connected || st.Identity.Login != "alice@example.com" {
		t.Errorf("status --json without moat up: exit %d, %+v, %v\n%s", code, st, err, out)
	}
	if code, _, errOut := run(t, dir, "models", "--json"); code != cli.ExitNo || !strings.Contains(errOut, "not running") {
		t.Errorf("models without moat up: exit %d: %s", code, errOut)
	}

	_, _, upDone := startUp(t, dir)
	waitConnected(t, dir)
	code, out, _ = run(t, dir, "status", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 || !st.Connected {
		t.Errorf("status --json with moat up: exit %d, %+v, %v\n%s", code, st, err, out)
	}
	var models []string
	code, out, _ = run(t, dir, "models", "--json")
	if err := json.Unmarshal([]byte(out), &models); err != nil || code != 0 {
		t.Errorf("models --json: exit %d, %v\n%s", code, err, out)
	}
	if err := client.Down(context.Background(), client.Dir(dir)); err != nil {
		t.Fatal(err)
	}
	<-upDone
}

// TestReference keeps docs/cli/moat.md generated from the flag
// definitions.
func TestReference(t *testing.T) {
	var b bytes.Buffer
	cli.Reference(&b, newRoot())
	clitest.Golden(t, "../../docs/cli/moat.md", b.String())
}
