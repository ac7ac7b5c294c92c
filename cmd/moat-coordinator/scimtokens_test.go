package main

import (
	"strings"
	"testing"

	"github.com/moatmesh/moat/internal/cli/clitest"
)

func TestSCIMTokensCommands(t *testing.T) {
	bin := clitest.Build(t, "github.com/moatmesh/moat/cmd/moat-coordinator")
	run := func(env []string, args ...string) clitest.Result { return clitest.Run(t, bin, env, args...) }
	data := t.TempDir()
	run(nil, "scim-tokens", "create", "--data-dir", data, "entra").Want(t, 0, []string{"moat_scim_"}, nil)
	var toks []map[string]any
	decode(t, run(nil, "scim-tokens", "list", "--data-dir", data, "--json"), &toks)
	if len(toks) != 1 || toks[0]["name"] != "entra" || toks[0]["expiry"] == nil {
		t.Fatalf("scim-tokens list --json = %v (want one token, with the default expiry)", toks)
	}
	id, _ := toks[0]["id"].(string)
	// The table: SCIM tokens have no last-used time, admin tokens do.
	if out := run(nil, "scim-tokens", "list", "--data-dir", data).Stdout; !strings.Contains(out, "EXPIRES") || !strings.Contains(out, id) || strings.Contains(out, "LAST USED") {
		t.Errorf("scim-tokens list:\n%s\nwant a table with the token and no LAST USED column", out)
	}
	run(nil, "tokens", "create", "--data-dir", data, "ci").Want(t, 0, []string{"moat_at_"}, nil)
	run(nil, "tokens", "list", "--data-dir", data).Want(t, 0, []string{"LAST USED", "ci"}, nil)
	run(nil, "scim-tokens", "revoke", "--data-dir", data, id).Want(t, 0, []string{"revoked " + id}, nil)
	run(nil, "scim-tokens", "revoke", "--data-dir", data, id).Want(t, 1, nil, []string{"no SCIM token " + id})
	run(nil, "scim-tokens", "create", "--data-dir", data, "--expiry", "0s", "x").Want(t, 2, nil, []string{"--expiry"})
}
