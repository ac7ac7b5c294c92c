package wire

import (
	"strings"
	"testing"

	"github.com/moatmesh/moat/mesh/key"
)

// The sign-in page shows a login's hostname and OS, so they must be short
// plain words: a link someone else made must not be able to show the
// person a page of its own text.
func TestLoginRequestShownFieldsArePlain(t *testing.T) {
	k, _ := key.NewPrivate()
	for _, tc := range []struct {
		name, hostname, os, want string
	}{
		{"usual", "alice-laptop", "linux", ""},
		{"dotted, mixed case", "Alice_MBP.local", "macos-14.2", ""},
		{"no os", "h", "", ""},
		{"long os", "h", strings.Repeat("x", 60000), "os: want at most 32"},
		{"os with words", "h", "linux (verified by IT)", "os: want at most 32"},
		{"os with markup", "h", "<b>ok</b>", "os: want at most 32"},
		{"hostname with spaces", "Your IT desk", "linux", "use only letters"},
		{"hostname with markup", "Alice's <MacBook>", "linux", "use only letters"},
		{"long hostname", strings.Repeat("h", 64), "linux", "want 1 to 63"},
		{"hostname with control", "a\x1bb", "linux", "control"},
	} {
		r := LoginRequest{Version: Version, Key: k.Public(), Hostname: tc.hostname, OS: tc.os}
		err := r.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}
