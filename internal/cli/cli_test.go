package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// testSettings is a command with a few settings of each kind.
type testSettings struct {
	url, secret string
	ttl         time.Duration
	tags        []string
	on          bool
}

func newTestRoot(s *testSettings, ran *bool) *cobra.Command {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.StringVar(&s.url, "url", "default-url", "a URL")
	fs.StringVar(&s.secret, "secret", "", "a secret")
	SecretFile(fs, "secret")
	fs.DurationVar(&s.ttl, "ttl", time.Hour, "a duration")
	fs.StringSliceVar(&s.tags, "tag", nil, "tags")
	fs.BoolVar(&s.on, "on", false, "a switch")
	Settings(fs)
	cmd := &cobra.Command{Use: "go", RunE: func(*cobra.Command, []string) error { *ran = true; return nil }}
	cmd.Flags().AddFlagSet(fs)
	schema := pflag.NewFlagSet("schema", pflag.ContinueOnError)
	schema.AddFlagSet(fs)
	schema.String("other", "", "a key of another command")
	ConfigFile(cmd, schema)
	root := &cobra.Command{Use: "prog"}
	root.AddCommand(cmd)
	return root
}

func write(t *testing.T, text string) string {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSettingsPrecedence(t *testing.T) {
	conf := write(t, "# comment\nurl file-url\nttl 2h\ntag a\ntag b\non\nother ignored\nsecret-file "+write(t, "s3cret\r\n")+"\n")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want testSettings
	}{
		{"defaults", nil, nil, testSettings{url: "default-url", ttl: time.Hour}},
		{"file", nil, []string{"--config", conf}, testSettings{url: "file-url", ttl: 2 * time.Hour, tags: []string{"a", "b"}, on: true, secret: "s3cret"}},
		{"env over file", map[string]string{"MOAT_URL": "env-url", "MOAT_TAG": "x,y"}, []string{"--config", conf},
			testSettings{url: "env-url", ttl: 2 * time.Hour, tags: []string{"x", "y"}, on: true, secret: "s3cret"}},
		{"flag over env", map[string]string{"MOAT_URL": "env-url", "MOAT_CONFIG": conf}, []string{"--url", "flag-url", "--on=false"},
			testSettings{url: "flag-url", ttl: 2 * time.Hour, tags: []string{"a", "b"}, secret: "s3cret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var s testSettings
			var ran bool
			var out, errb bytes.Buffer
			if code := Run(newTestRoot(&s, &ran), append([]string{"go"}, tt.args...), &out, &errb); code != 0 || !ran {
				t.Fatalf("exit %d, ran %v: %s", code, ran, errb.String())
			}
			if s.url != tt.want.url || s.ttl != tt.want.ttl || strings.Join(s.tags, ",") != strings.Join(tt.want.tags, ",") ||
				s.on != tt.want.on || s.secret != tt.want.secret {
				t.Errorf("settings = %+v, want %+v", s, tt.want)
			}
		})
	}
}

func TestSettingsRefused(t *testing.T) {
	secret := write(t, "x\n")
	tests := []struct {
		name string
		env  map[string]string
		conf string
		want string
	}{
		{"bad env", map[string]string{"MOAT_TTL": "soon"}, "", `environment variable MOAT_TTL: "soon" is not a duration`},
		{"bad bool env", map[string]string{"MOAT_ON": "yes please"}, "", `MOAT_ON: "yes please" is not true or false`},
		{"bad line", nil, "url a\nttl soon\n", `:2: ttl: "soon" is not a duration`},
		{"unknown key", nil, "colour blue\n", `:1: unknown key "colour"`},
		{"dashes", nil, "--url x\n", `:1: write the key without dashes: "url"`},
		{"no value", nil, "url\n", ":1: url needs a value"},
		{"twice", nil, "url a\nurl b\n", ":2: url is set twice (first on line 1)"},
		{"config in config", nil, "config other\n", `:1: unknown key "config"`},
		{"bad quote", nil, "url \"a\n", ":1: url: bad quoted value"},
		{"both secrets", map[string]string{"MOAT_SECRET": "y"}, "secret-file " + secret + "\n", "MOAT_SECRET and "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := []string{"go"}
			if tt.conf != "" {
				args = append(args, "--config", write(t, tt.conf))
			}
			var s testSettings
			var ran bool
			var out, errb bytes.Buffer
			code := Run(newTestRoot(&s, &ran), args, &out, &errb)
			if code != ExitUsage || ran || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("exit %d, ran %v, stderr %q; want exit 2 and %q", code, ran, errb.String(), tt.want)
			}
		})
	}
}

func TestDescribeVersion(t *testing.T) {
	vcs := &debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.modified", Value: "true"}}}
	tests := []struct {
		stamped string
		bi      *debug.BuildInfo
		want    string
	}{
		{"v1.2.3", vcs, "v1.2.3 (commit 0123456789ab-dirty, go1.26 "},
		{"", vcs, "dev-0123456789ab-dirty ("},
		{"", &debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Version: "v0.4.0"}}, "v0.4.0 (go1.26 "},
		{"", &debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Version: "(devel)"}}, "dev (built without version or VCS information)"},
	}
	for _, tt := range tests {
		if got := describe(tt.stamped, tt.bi); !strings.HasPrefix(got, tt.want) || strings.Contains(got, "(devel)") {
			t.Errorf("describe(%q) = %q, want it to start with %q", tt.stamped, got, tt.want)
		}
	}
}
