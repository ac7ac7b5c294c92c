package main

import (
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
		{[]string{"--audit-syslog-addr", "siem.example"}, "want host:port"},
		{[]string{"--audit-syslog-addr", "siem.example:6514", "--audit-syslog-ca-file", sec}, "no PEM certificate"},
		{[]string{"--audit-syslog-addr", "siem.example:6514", "--audit-syslog-cert-file", sec}, "--audit-syslog-key-file"},
		{[]string{"--audit-syslog-addr", "siem.example:6514", "--audit-syslog-carry", "all"}, "--audit-syslog-carry"},
	} {
		clitest.Run(t, bin, nil, append(base, tc.args...)...).Want(t, cli.ExitUsage, nil, []string{tc.want})
	}
}

// TestAuditSinksFromFlags: a webhook and a syslog sink from the same
// flags, each with what it carries.
func TestAuditSinksFromFlags(t *testing.T) {
	var s sinkSettings
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	s.register(fs)
	err := fs.Parse([]string{"--audit-webhook-url", "https://siem.example/hook", "--audit-webhook-secret", "0123456789abcdef",
		"--audit-syslog-addr", "siem.example:6514", "--audit-syslog-carry", "refusals", "--audit-syslog-prompts"})
	if err != nil {
		t.Fatal(err)
	}
	sinks := s.sinks()
	if len(sinks) != 2 || sinks[0].Name != "webhook" || sinks[1].Name != "syslog" {
		t.Fatalf("sinks %+v, want webhook and syslog", sinks)
	}
	sl, ok := sinks[1].Sink.(*auditsink.Syslog)
	if !ok || sl.Addr != "siem.example:6514" || sinks[1].Filter != (auditsink.Filter{Refusals: true}) || !sinks[1].Prompts {
		t.Fatalf("syslog sink %+v", sinks[1])
	}
	if sinks[0].Filter != (auditsink.Filter{Records: true, Admin: true}) || sinks[0].Prompts {
		t.Fatalf("webhook sink %+v", sinks[0])
	}
}
