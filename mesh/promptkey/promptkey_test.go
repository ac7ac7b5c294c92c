package promptkey

import (
	"errors"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	pub, priv, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	prompt := []byte(`{"messages":[{"role":"user","content":"hello"}]}`)
	sealed, err := Seal(pub, "u_alice", prompt)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "hello") || !strings.HasPrefix(sealed, "hpke1:") {
		t.Fatalf("sealed prompt %q", sealed)
	}
	got, err := Open(priv, "u_alice", sealed)
	if err != nil || string(got) != string(prompt) {
		t.Fatalf("open: %q %v", got, err)
	}
	_, other, _ := NewKey()
	tampered := sealed[:len(sealed)-4] + "AAA="
	for name, open := range map[string]func() ([]byte, error){
		"another key":    func() ([]byte, error) { return Open(other, "u_alice", sealed) },
		"another person": func() ([]byte, error) { return Open(priv, "u_bob", sealed) },
		"changed":        func() ([]byte, error) { return Open(priv, "u_alice", tampered) },
		"not sealed":     func() ([]byte, error) { return Open(priv, "u_alice", "hello") },
	} {
		if _, err := open(); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: %v, want ErrOpen", name, err)
		}
	}
	if _, err := Seal([]byte("short"), "u_alice", prompt); err == nil {
		t.Error("sealed to a malformed public key")
	}
}
