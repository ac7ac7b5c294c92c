package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/internal/cli/clitest"
)

// TestCLI runs the built moat-coordinator as an admin would.
func TestCLI(t *testing.T) {
	bin := clitest.Build(t, "github.com/moatmesh/moat/cmd/moat-coordinator")
	run := func(env []string, args ...string) clitest.Result { return clitest.Run(t, bin, env, args...) }

	t.Run("help shows only the command's own flags", func(t *testing.T) {
		r := run(nil, "users", "add", "-h")
		r.Want(t, 0, []string{"--link-ttl", "--public-url", "--config", "MOAT_DATA_DIR"}, nil)
		for _, other := range []string{"--oidc-client-secret", "--listen", "--tls"} {
			if strings.Contains(r.Stdout, other) {
				t.Errorf("users add -h shows serve's %s:\n%s", other, r.Stdout)
			}
		}
		run(nil, "serve", "--help").Want(t, 0, []string{"--oidc-client-secret-file", "MOAT_OIDC_CLIENT_SECRET_FILE", "--mfa-methods"}, nil)
		run(nil, "tokens", "create", "--help").Want(t, 0, []string{"--expiry"}, nil)
	})
	t.Run("version", func(t *testing.T) {
		for _, args := range [][]string{{"--version"}, {"version"}} {
			r := run(nil, args...)
			r.Want(t, 0, []string{"moat-coordinator " + clitest.TestVersion}, nil)
			if strings.Contains(r.Stdout, "(devel)") {
				t.Errorf("%v prints (devel): %s", args, r.Stdout)
			}
		}
	})
	t.Run("usage errors name the flag, variable or file line", func(t *testing.T) {
		run(nil, "serve").Want(t, cli.ExitUsage, nil, []string{"public-url is required", "--public-url", "MOAT_PUBLIC_URL"})
		run(nil, "serve", "extra", "--public-url", "http://x").Want(t, cli.ExitUsage, nil, []string{`unexpected argument "extra"`})
		run([]string{"MOAT_DEVICE_TTL=abc"}, "serve", "--public-url", "http://x").Want(t, cli.ExitUsage, nil, []string{`MOAT_DEVICE_TTL: "abc" is not a duration`})
		run(nil, "serve", "--public-url", "http://x", "--log-level", "verbose").Want(t, cli.ExitUsage, nil, []string{"--log-level", "want debug, info, warn or error"})
		run(nil, "serve", "--public-url", "http://x", "--signin-rate", "0").Want(t, cli.ExitUsage, nil, []string{"--signin-rate", "want a number above 0, or -1 for no limit, not 0"})
		run(nil, "serve", "--public-url", "ftp://x").Want(t, cli.ExitUsage, nil, []string{`--public-url: "ftp://x": want http(s)://HOST`})
		run([]string{"MOAT_PUBLIC_URL=moat.example.com"}, "serve").Want(t, cli.ExitUsage, nil, []string{"MOAT_PUBLIC_URL: "})
		run(nil, "users").Want(t, cli.ExitUsage, nil, []string{"name a subcommand: add, erase, export, list"})
		run(nil, "users", "add").Want(t, cli.ExitUsage, nil, []string{"missing the person's EMAIL"})
		run(nil, "bogus").Want(t, cli.ExitUsage, nil, []string{`unknown command "bogus"`})
		run(nil).Want(t, cli.ExitUsage, nil, []string{"Available Commands"})
	})
	t.Run("config file", func(t *testing.T) {
		data := t.TempDir()
		conf := clitest.WriteFile(t, "coordinator.conf", "# the coordinator\n\ndata-dir "+data+"\npublic-url https://file.example\nlisten :9999\n")
		r := run(nil, "users", "add", "--config", conf, "a@example.com")
		r.Want(t, 0, []string{"https://file.example/idp/setup?token="}, nil)
		run([]string{"MOAT_PUBLIC_URL=https://env.example"}, "users", "add", "--config", conf, "b@example.com").Want(t, 0, []string{"https://env.example/"}, nil)
		run([]string{"MOAT_PUBLIC_URL=https://env.example", "MOAT_CONFIG=" + conf}, "users", "add", "--public-url", "https://flag.example", "c@example.com").Want(t, 0, []string{"https://flag.example/"}, nil)
		run(nil, "users", "list", "--config", conf).Want(t, 0, []string{"a@example.com", "c@example.com"}, nil)

		bad := clitest.WriteFile(t, "bad.conf", "public-url https://x.example\ndevice-ttl abc\n")
		run(nil, "serve", "--config", bad).Want(t, cli.ExitUsage, nil, []string{bad + `:2: device-ttl: "abc" is not a duration`})
		unknown := clitest.WriteFile(t, "unknown.conf", "public-url https://x.example\ncolour blue\n")
		run(nil, "serve", "--config", unknown).Want(t, cli.ExitUsage, nil, []string{unknown + `:2: unknown key "colour"`})
		badURL := clitest.WriteFile(t, "url.conf", "public-url moat.example\n")
		run(nil, "serve", "--config", badURL).Want(t, cli.ExitUsage, nil, []string{badURL + `:1: public-url: "moat.example": want http(s)://HOST`})
		run(nil, "serve", "--config", filepath.Join(t.TempDir(), "none.conf")).Want(t, cli.ExitUsage, nil, []string{"--config: open", "no such file"})
	})
	t.Run("secret files", func(t *testing.T) {
		db := clitest.WriteFile(t, "db", "postgres://u:pw@127.0.0.1:1/x\n")
		r := run([]string{"MOAT_DATABASE_FILE=" + db}, "users", "list")
		r.Want(t, cli.ExitFailure, nil, []string{"127.0.0.1:1"})
		if strings.Contains(r.Stderr, "pw") {
			t.Errorf("the error shows the database password: %s", r.Stderr)
		}
		run(nil, "serve", "--public-url", "http://x", "--oidc-client-secret-file", filepath.Join(t.TempDir(), "none")).Want(t, cli.ExitUsage, nil, []string{"--oidc-client-secret-file: open"})
		run([]string{"MOAT_OIDC_CLIENT_SECRET=s"}, "serve", "--public-url", "http://x", "--oidc-client-secret-file", db).Want(t, cli.ExitUsage, nil, []string{"MOAT_OIDC_CLIENT_SECRET and --oidc-client-secret-file both set"})
	})
	t.Run("json and exit codes", func(t *testing.T) {
		data := t.TempDir()
		run(nil, "users", "add", "--data-dir", data, "--public-url", "http://x", "a@example.com").Want(t, 0, nil, nil)
		run(nil, "tokens", "create", "--data-dir", data, "ci").Want(t, 0, []string{"moat_at_"}, nil)
		var users []map[string]any
		decode(t, run(nil, "users", "list", "--data-dir", data, "--json"), &users)
		if len(users) != 1 || users[0]["email"] != "a@example.com" || users[0]["setup_pending"] != true {
			t.Errorf("users list --json = %v", users)
		}
		var toks []map[string]any
		decode(t, run(nil, "tokens", "list", "--data-dir", data, "--json"), &toks)
		if len(toks) != 1 || toks[0]["name"] != "ci" || toks[0]["expiry"] == nil {
			t.Errorf("tokens list --json = %v (want one token, with the default expiry)", toks)
		}
		id, _ := toks[0]["id"].(string)
		run(nil, "tokens", "revoke", "--data-dir", data, id).Want(t, 0, []string{"revoked " + id}, nil)
		run(nil, "tokens", "revoke", "--data-dir", data, id).Want(t, 1, nil, []string{"no API token " + id})
		decode(t, run(nil, "tokens", "list", "--data-dir", data, "--json"), &toks)
		if len(toks) != 0 {
			t.Errorf("tokens list after revoke = %v", toks)
		}
		wantCLITrail(t, data, "idp.user.add a@example.com", "token.create "+id, "token.revoke "+id)
		pol := clitest.WriteFile(t, "policy.hujson", goodPolicy)
		var e map[string]any
		r := run(nil, "policy", "explain", pol, "--src", "bob@example.com", "--model", "llama-3.1-70b", "--json")
		if r.Code != cli.ExitNo {
			t.Errorf("policy explain for a denied request exits %d, want %d", r.Code, cli.ExitNo)
		}
		r.Code = 0
		decode(t, r, &e)
		if e["decision"] != "denied" {
			t.Errorf("policy explain --json = %v", e)
		}
	})
	t.Run("completion", func(t *testing.T) { clitest.Completion(t, bin) })
}

func decode(t *testing.T, r clitest.Result, v any) {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	if err := json.Unmarshal([]byte(r.Stdout), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.Stdout)
	}
}

// TestReference keeps docs/cli/moat-coordinator.md generated from the
// flag definitions.
func TestReference(t *testing.T) {
	var b bytes.Buffer
	cli.Reference(&b, newRoot())
	clitest.Golden(t, "../../docs/cli/moat-coordinator.md", b.String())
}

func TestTrustedProxiesPrefixes(t *testing.T) {
	var s serveSettings
	fs := s.flagSet()
	if err := fs.Parse([]string{"--trusted-proxies", "127.0.0.1/32,10.0.0.0/8,fd00::/8"}); err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(prefixes(s.trustedProxies))
	if got != "[127.0.0.1/32 10.0.0.0/8 fd00::/8]" {
		t.Fatalf("prefixes %s", got)
	}
}
