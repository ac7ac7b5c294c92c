package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/internal/cli/clitest"
)

// TestCLI runs the built moat-node as an admin would.
func TestCLI(t *testing.T) {
	bin := clitest.Build(t, "github.com/moatmesh/moat/cmd/moat-node")
	run := func(env []string, args ...string) clitest.Result { return clitest.Run(t, bin, env, args...) }

	t.Run("help shows only the command's own flags", func(t *testing.T) {
		r := run(nil, "audit", "verify", "-h")
		r.Want(t, 0, []string{"--state-dir", "--json", "MOAT_STATE_DIR"}, nil)
		if strings.Contains(r.Stdout, "--key") || strings.Contains(r.Stdout, "--model") {
			t.Errorf("audit verify -h shows join's flags:\n%s", r.Stdout)
		}
		run(nil, "join", "--help").Want(t, 0, []string{"--key-file", "MOAT_KEY_FILE", "--model", "--log-level"}, nil)
		run(nil, "lockdown", "status", "-h").Want(t, 0, []string{"--json"}, nil)
	})
	t.Run("version", func(t *testing.T) {
		run(nil, "--version").Want(t, 0, []string{"moat-node " + clitest.TestVersion}, nil)
		run(nil, "version").Want(t, 0, []string{"moat-node " + clitest.TestVersion}, nil)
	})
	t.Run("usage errors name the flag, variable or file line", func(t *testing.T) {
		state := t.TempDir()
		run(nil, "join", "--state-dir", state).Want(t, cli.ExitUsage, nil, []string{"key is required", "MOAT_KEY"})
		run([]string{"MOAT_LISTEN_PORT=abc"}, "run", "--state-dir", state).Want(t, cli.ExitUsage, nil, []string{`MOAT_LISTEN_PORT: "abc" is not a whole number`})
		run(nil, "run", "--state-dir", state, "--log-level", "verbose").Want(t, cli.ExitUsage, nil, []string{"want debug, info, warn or error"})
		run(nil, "run", "now").Want(t, cli.ExitUsage, nil, []string{`unexpected argument "now"`})
		run(nil, "run", "--state-dir", state, "--model", "llama").Want(t, cli.ExitUsage, nil, []string{`--model`, "NAME=http://127.0.0.1:PORT"})
		run(nil, "lockdown").Want(t, cli.ExitUsage, nil, []string{"name a subcommand: off, status"})
		run(nil, "run", "--state-dir", state, "--model", "llama=http://127.0.0.1:1", "--endpoint", "203.0.113.7:41641", "--endpoint", "gpu.example:41641").Want(t, cli.ExitUsage, nil, []string{"--endpoint", "want IP:PORT", "gpu.example"})
	})
	t.Run("lockdown flags", func(t *testing.T) {
		state := t.TempDir()
		models := []string{"--state-dir", state, "--model", "llama=http://127.0.0.1:11434"}
		run(nil, append([]string{"run", "--lockdown", "service"}, models...)...).Want(t, cli.ExitUsage, nil, []string{"--lockdown", "--lockdown-service-user or --lockdown-service-cgroup"})
		run(nil, append([]string{"run", "--lockdown-service-user", "root", "--lockdown", "service"}, models...)...).Want(t, cli.ExitUsage, nil, []string{"--lockdown-service-user", "is root"})
		run(nil, append([]string{"run", "--lockdown-dns", "resolver.example"}, models...)...).Want(t, cli.ExitUsage, nil, []string{"--lockdown-dns", "not an IP address"})
		run(nil, append([]string{"run", "--lockdown-allow", "mirror.example"}, models...)...).Want(t, cli.ExitUsage, nil, []string{"--lockdown-allow", "CIDR"})
		run(nil, append([]string{"run", "--lockdown-upstream", "172.17.0.2"}, models...)...).Want(t, cli.ExitUsage, nil, []string{"--lockdown-upstream", "ADDR:PORT"})
		run([]string{"MOAT_LOCKDOWN_DHCP=sometimes"}, append([]string{"run"}, models...)...).Want(t, cli.ExitUsage, nil, []string{"MOAT_LOCKDOWN_DHCP", "want auto, on or off"})
		run(nil, "join", "--help").Want(t, 0, []string{"--lockdown string", `(default "host")`, "--lockdown-service-user", "MOAT_LOCKDOWN_DNS"}, nil)
	})
	t.Run("config file", func(t *testing.T) {
		missing := t.TempDir() + "/gone"
		conf := clitest.WriteFile(t, "node.conf", "state-dir "+missing+"\nlockdown sideways\nmodel a=http://127.0.0.1:1\nmodel b=http://127.0.0.1:2\n")
		run(nil, "audit", "verify", "--config", conf).Want(t, cli.ExitFailure, nil, []string{missing, conf + ":1: state-dir"})
		run(nil, "run", "--config", conf).Want(t, cli.ExitUsage, nil, []string{conf + `:2: lockdown: "sideways": want off, host or service`})
		run([]string{"MOAT_LOCKDOWN=upside-down"}, "run", "--config", conf).Want(t, cli.ExitUsage, nil, []string{`MOAT_LOCKDOWN: "upside-down"`})
		dup := clitest.WriteFile(t, "dup.conf", "hostname a\nhostname b\n")
		run(nil, "run", "--config", dup).Want(t, cli.ExitUsage, nil, []string{dup + ":2: hostname is set twice (first on line 1)"})
		eq := clitest.WriteFile(t, "eq.conf", "hostname = a\n")
		run(nil, "run", "--config", eq).Want(t, cli.ExitUsage, nil, []string{eq + ":1: write", "without ="})
	})
	t.Run("secret file", func(t *testing.T) {
		state := t.TempDir()
		key := clitest.WriteFile(t, "key", "moat_ek_example\n")
		// The key is read: join gets past it to the missing models.
		run(nil, "join", "--state-dir", state, "--key-file", key).Want(t, cli.ExitUsage, nil, []string{"no models"})
		run(nil, "join", "--state-dir", state, "--key-file", state+"/none").Want(t, cli.ExitUsage, nil, []string{"--key-file: open"})
	})
	t.Run("audit verify", func(t *testing.T) {
		run(nil, "audit", "verify", "--state-dir", "/nonexistent").Want(t, cli.ExitFailure, nil, []string{"/nonexistent", "no such file"})
		r := run(nil, "audit", "verify", "--state-dir", t.TempDir(), "--json")
		var v map[string]any
		if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil || r.Code != 0 || v["intact"] != true || v["exists"] != false {
			t.Errorf("audit verify --json on a fresh state dir: exit %d, %v, %v\n%s", r.Code, v, err, r.Stderr)
		}
	})
	t.Run("lockdown status", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("reading nftables needs root")
		}
		r := run(nil, "lockdown", "status", "--json")
		var v struct{ Applied bool }
		if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil {
			t.Fatalf("not JSON (exit %d): %v\n%s%s", r.Code, err, r.Stdout, r.Stderr)
		}
		if want := map[bool]int{true: 0, false: cli.ExitNo}[v.Applied]; r.Code != want {
			t.Errorf("applied %v: exit %d, want %d", v.Applied, r.Code, want)
		}
	})
	t.Run("completion", func(t *testing.T) { clitest.Completion(t, bin) })
}

// TestReference keeps docs/cli/moat-node.md generated from the flag
// definitions.
func TestReference(t *testing.T) {
	var b bytes.Buffer
	cli.Reference(&b, newRoot())
	clitest.Golden(t, "../../docs/cli/moat-node.md", b.String())
}
