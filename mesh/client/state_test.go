package client

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The local API token is made once, kept 0600 in the 0700 directory and
// returned unchanged after; without create nothing is made, and a damaged
// file is an error rather than a token anyone could guess.
func TestToken(t *testing.T) {
	dir := Dir(filepath.Join(t.TempDir(), "state"))
	if _, err := dir.Token(false); err == nil {
		t.Fatal("Token(false) made a token")
	}
	tok, err := dir.Token(true)
	if err != nil || !strings.HasPrefix(tok, tokenPrefix) || len(tok) < len(tokenPrefix)+43 {
		t.Fatalf("Token(true) = %q, %v", tok, err)
	}
	if again, _ := dir.Token(true); again != tok {
		t.Fatal("the token changed on the second call")
	}
	fi, _ := os.Stat(dir.Path(TokenFile))
	di, _ := os.Stat(string(dir))
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Fatalf("modes: file %v, dir %v", fi.Mode(), di.Mode())
	}
	os.WriteFile(dir.Path(TokenFile), []byte("\n"), 0o600)
	if _, err := dir.Token(true); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("empty token file: %v", err)
	}
}
