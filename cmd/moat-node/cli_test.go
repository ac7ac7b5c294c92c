package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/internal/cli/clitest"
	"github.com/moatmesh/moat/node/audit"
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
		run(nil, append([]string{"run", "--lockdown", "service"}, models...)...).Want(t, cli.ExitUsage, nil, []string{"--lockdown", "--lockdown-service-user, --lockdown-service-cgroup, --lockdown-pod-cgroup or --lockdown-pod-selector"})
		run(nil, append([]string{"run", "--lockdown", "service", "--lockdown-pod-selector", "moat.dev/lockdown=inference"}, models...)...).Want(t, cli.ExitUsage, nil, []string{"--lockdown-pod-selector", "no node name", "not in a Kubernetes pod"})
		run(nil, append([]string{"run", "--lockdown", "service", "--lockdown-pod-cgroup", "kubepods.slice/[x"}, models...)...).Want(t, cli.ExitUsage, nil, []string{"--lockdown-pod-cgroup", "not a cgroup path pattern"})
		run(nil, append([]string{"run", "--lockdown", "service", "--lockdown-pod-allow", "10.96.0.10:53"}, models...)...).Want(t, cli.ExitUsage, nil, []string{"--lockdown-pod-allow", "neither is given"})
		run(nil, append([]string{"run", "--lockdown", "service", "--lockdown-pod-cgroup", "kubepods.slice/*/*pod*.slice", "--lockdown-pod-allow", "mirror"}, models...)...).Want(t, cli.ExitUsage, nil, []string{"--lockdown-pod-allow", "CIDR"})
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
	t.Run("audit verify after retention", func(t *testing.T) {
		state := t.TempDir()
		spoolAfterRetention(t, state+"/audit")
		r := run(nil, "audit", "verify", "--state-dir", state)
		if r.Code != 0 || !strings.Contains(r.Stdout, "intact") || !strings.Contains(r.Stdout, "3 older ones deleted by retention under 1 checkpoints") {
			t.Errorf("audit verify after retention: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		os.Remove(state + "/audit/" + audit.CheckpointFile)
		run(nil, "audit", "verify", "--state-dir", state).Want(t, cli.ExitNo, nil, []string{"no checkpoint covers records 1–3"})
		run(nil, "run", "--state-dir", state, "--audit-retention", "soon").Want(t, cli.ExitUsage, nil, []string{"audit-retention", `"soon"`})
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

// spoolAfterRetention writes a spool of 5 records in dir, delivers them
// to a test receiver and lets retention delete the 3 older ones.
func spoolAfterRetention(t *testing.T, dir string) {
	t.Helper()
	sp, err := audit.Open(dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	now := time.Now()
	for i := range 5 {
		age := time.Duration(0)
		if i < 3 {
			age = 60 * 24 * time.Hour
		}
		if err := sp.Append(&audit.Record{Time: now.Add(-age), Decision: audit.DecisionAllow, Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	sh, err := audit.NewShipper(audit.ShipperConfig{Dir: dir, URL: srv.URL, Client: srv.Client(), Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	if _, err := sh.ShipNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if cp, err := sh.Retain(sp, now, func(*audit.Record) time.Duration { return 30 * 24 * time.Hour }); err != nil || cp.Last != 3 {
		t.Fatalf("Retain = %+v, %v", cp, err)
	}
}
