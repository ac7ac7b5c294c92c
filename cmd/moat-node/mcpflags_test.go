package main

import (
	"strings"
	"testing"
)

func TestParseMCP(t *testing.T) {
	name, u, err := parseMCP("jira=http://127.0.0.1:8931/mcp")
	if err != nil || name != "jira" || u != "http://127.0.0.1:8931/mcp" {
		t.Fatalf("parseMCP = %q %q %v", name, u, err)
	}
	for in, want := range map[string]string{
		"jira":                             "want NAME=http://127.0.0.1:PORT/mcp or NAME=stdio:",
		"jira=http://10.0.0.5:8931/mcp":    "not on loopback",
		"jira=https://127.0.0.1:8931/mcp":  "not an http://HOST:PORT/PATH URL",
		"jira=http://127.0.0.1/mcp":        "not an http://HOST:PORT/PATH URL",
		"jira=stdio:usr/bin/jira-mcp,--ro": "not an absolute path",
		"a/b=http://127.0.0.1:1/mcp":       "want NAME=",
	} {
		if _, _, err := parseMCP(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseMCP(%q) = %v, want …%s…", in, err, want)
		}
	}
}
