package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/moatmesh/moat/coordinator/auditsink"
	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/internal/cli/clitest"
)

// TestAuditWebhookSettings: serve refuses a webhook or a syslog sink it
// could not use before it starts.
func TestAuditWebhookSettings(t *testing.T) {
	bin := clitest.Build(t, "github.com/moatmesh/moat/cmd/moat-coordinator")
	sec := clitest.WriteFile(t, "hook", "0123456789abcdef0123\n")
	base := []string{"serve", "--public-url", "http://x", "--data-dir", t.TempDir()}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--audit-webhook-url", "https://siem.example/hook"}, "--audit-webhook-secret"},
		{[]string{"--audit-webhook-url", "http://siem.example/hook", "--audit-webhook-secret-file", sec}, "want https"},
		{[]string{"--audit-webhook-url", "https://siem.example/hook", "--audit-webhook-secret", "short"}, "at least 16 bytes"},
		{[]string{"--audit-webhook-url", "https://siem.example/hook", "--audit-webhook-secret-file", sec, "--audit-webhook-format", "xml"}, "xml"},
		{[]string{"--audit-webhook-url", "https://siem.example/hook", "--audit-webhook-secret-file", sec, "--audit-webhook-carry", "prompts"}, "--audit-webhook-carry"},
		{[]string{"--audit-webhook-also", "b=https://b.example/hook"}, "needs --audit-webhook-url"},
		{[]string{"--audit-webhook-url", "https://siem.example/hook", "--audit-webhook-secret-file", sec, "--audit-webhook-also", "https://b.example/hook"}, "want NAME=URL"},
		{[]string{"--audit-webhook-url", "https://siem.example/hook", "--audit-webhook-secret-file", sec, "--audit-webhook-also", "b=https://b.example/1", "--audit-webhook-also", "b=https://b.example/2"}, "a NAME of its own"},
		{[]string{"--audit-webhook-url", "https://siem.example/hook", "--audit-webhook-secret-file", sec, "--audit-webhook-also", "b=http://b.example/hook"}, "want https"},
		{[]string{"--audit-syslog-addr", "siem.example"}, "want host:port"},
		{[]string{"--audit-syslog-addr", "siem.example:6514", "--audit-syslog-ca-file", sec}, "no PEM certificate"},
		{[]string{"--audit-syslog-addr", "siem.example:6514", "--audit-syslog-cert-file", sec}, "--audit-syslog-key-file"},
		{[]string{"--audit-syslog-addr", "siem.example:6514", "--audit-syslog-carry", "all"}, "--audit-syslog-carry"},
	} {
		clitest.Run(t, bin, nil, append(base, tc.args...)...).Want(t, cli.ExitUsage, nil, []string{tc.want})
	}
}

// TestAuditSinksFromFlags: several webhooks and a syslog sink from the
// same flags, each with what it carries.
func TestAuditSinksFromFlags(t *testing.T) {
	var s sinkSettings
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	s.register(fs)
	err := fs.Parse([]string{"--audit-webhook-url", "https://siem.example/hook", "--audit-webhook-secret", "0123456789abcdef",
		"--audit-webhook-also", "archive=https://archive.example/in", "--audit-webhook-also", "soc=https://soc.example/in",
		"--audit-syslog-addr", "siem.example:6514", "--audit-syslog-carry", "refusals", "--audit-syslog-prompts"})
	if err != nil {
		t.Fatal(err)
	}
	sinks := s.sinks()
	var names []string
	for _, k := range sinks {
		names = append(names, k.Name)
	}
	if strings.Join(names, " ") != "webhook webhook-archive webhook-soc syslog" {
		t.Fatalf("sinks %v, want webhook webhook-archive webhook-soc syslog", names)
	}
	sl, ok := sinks[3].Sink.(*auditsink.Syslog)
	if !ok || sl.Addr != "siem.example:6514" || sinks[3].Filter != (auditsink.Filter{Refusals: true}) || !sinks[3].Prompts {
		t.Fatalf("syslog sink %+v", sinks[3])
	}
	for i, url := range []string{"https://siem.example/hook", "https://archive.example/in", "https://soc.example/in"} {
		w, ok := sinks[i].Sink.(*auditsink.Webhook)
		if !ok || w.URL != url || string(w.Secret) != "0123456789abcdef" || sinks[i].Filter != (auditsink.Filter{Records: true, Admin: true}) || sinks[i].Prompts {
			t.Fatalf("webhook sink %d: %+v %+v", i, sinks[i], w)
		}
	}
}
