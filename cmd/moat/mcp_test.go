package main

import (
	"strings"
	"testing"
)

func TestPrintMCP(t *testing.T) {
	var b strings.Builder
	if err := printMCP(&b, "all", "http://127.0.0.1:4000", "moat_tok", []string{"jira"}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		`claude mcp add --transport http jira http://127.0.0.1:4000/mcp/jira --header "Authorization: Bearer moat_tok"`,
		"\"mcpServers\": {\n    \"jira\": {\n      \"url\": \"http://127.0.0.1:4000/mcp/jira\"",
		"\"servers\": {\n    \"jira\": {\n      \"type\": \"http\",",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if err := printMCP(&b, "cursor", "http://127.0.0.1:4000", "t", []string{"jira"}); err != nil || strings.Contains(b.String(), "claude") || strings.Contains(b.String(), "VS Code") {
		t.Errorf("--agent cursor printed %q, %v", b.String(), err)
	}
	if err := printMCP(&b, "emacs", "http://127.0.0.1:4000", "t", []string{"jira"}); err == nil {
		t.Error("--agent emacs was accepted")
	}
	b.Reset()
	printMCP(&b, "all", "http://127.0.0.1:4000", "t", nil)
	if !strings.Contains(b.String(), "No MCP servers are granted") {
		t.Errorf("no servers: %q", b.String())
	}
}
