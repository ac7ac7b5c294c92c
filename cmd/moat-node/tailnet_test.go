package main

import (
	"testing"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/internal/cli/clitest"
)

// TestTailnetCLI: the tailnet subcommand's flags and its refusals.
func TestTailnetCLI(t *testing.T) {
	bin := clitest.Build(t, "github.com/moatmesh/moat/cmd/moat-node")
	run := func(args ...string) clitest.Result { return clitest.Run(t, bin, nil, args...) }
	run("tailnet", "--help").Want(t, 0, []string{"--control-url", "--authkey-file", "--policy", "--advertise-tags", "MOAT_AUTHKEY", "docs/tailnet.md", "--coordinator", "--key-file"}, nil)
	state := t.TempDir()
	run("tailnet", "--state-dir", state).Want(t, cli.ExitUsage, nil, []string{"hostname is required"})
	run("tailnet", "--state-dir", state, "--hostname", "gpu-1").Want(t, cli.ExitUsage, nil, []string{"policy is required"})
	run("tailnet", "--state-dir", state, "--hostname", "gpu-1", "--coordinator", "https://moat.example.com", "--policy", "p.hujson").
		Want(t, cli.ExitUsage, nil, []string{"--policy", "takes its policy from there"})
	bad := clitest.WriteFile(t, "policy.hujson", `{"grants":[{"src":["x"],"models":["m"]}]}`)
	run("tailnet", "--state-dir", state, "--hostname", "gpu-1", "--policy", bad, "--model", "m=http://127.0.0.1:1").
		Want(t, cli.ExitFailure, nil, []string{bad + ":1:", "not an identity"})
	good := clitest.WriteFile(t, "good.hujson", `{"tagOwners":{"tag:gpu":[]},"models":{"m":{"servedBy":["tag:gpu"]}}}`)
	run("tailnet", "--state-dir", state, "--hostname", "gpu-1", "--policy", good, "--advertise-tags", "gpu").
		Want(t, cli.ExitUsage, nil, []string{"--advertise-tags", "tags start with tag:"})
}
