package main

import (
	"testing"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/internal/cli/clitest"
)

// TestAuditWebhookSettings: serve refuses a webhook it could not use
// before it starts.
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
	} {
		clitest.Run(t, bin, nil, append(base, tc.args...)...).Want(t, cli.ExitUsage, nil, []string{tc.want})
	}
}
