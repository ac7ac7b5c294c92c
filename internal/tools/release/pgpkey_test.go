package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"aead.dev/minisign"
)

// goldenKey is a minisign secret key made for this test only (it signs
// nothing real), and goldenAPTKey the fingerprint of the OpenPGP key
// derived from it. A change here changes every repository's key: APT
// users would have to fetch a new keyring, so it must never happen by
// accident (a library upgrade that generates keys differently).
const (
	goldenKey = "untrusted comment: minisign encrypted secret key\n" +
		"RWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAnr8lE2gaHOKoYksQI1Ikw8eAQ+33j96Tlt69f3bWoT/Wb+7uVZT9pLCJuVyq5v5lOeeNFzTecKFLnvOJOuYfoGyKargtndYiAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	goldenAPTKey = "4162EF0A907B1B4AC6243271F52EA610A37A2F1B"
)

func TestAPTKeyDerivation(t *testing.T) {
	var priv minisign.PrivateKey
	must(t, priv.UnmarshalText([]byte(goldenKey)))
	for range 2 {
		e, err := aptEntity(priv)
		must(t, err)
		if got := fmt.Sprintf("%X", e.PrimaryKey.Fingerprint); got != goldenAPTKey {
			t.Fatalf("derived APT key %s, want %s: the derivation changed", got, goldenAPTKey)
		}
		if len(e.Subkeys) != 0 || !e.PrimaryKey.CanSign() {
			t.Errorf("want a signing-only key")
		}
		text, _ := priv.Public().(minisign.PublicKey).MarshalText()
		lines := strings.Split(strings.TrimSpace(string(text)), "\n")
		raw, err := base64.StdEncoding.DecodeString(lines[len(lines)-1])
		must(t, err)
		if bin, _, err := publicKey(e); err != nil || len(raw) != 42 || bytes.Contains(bin, raw[10:]) {
			t.Errorf("the APT key must differ from the release key (err %v)", err)
		}
	}
	_, other, err := minisign.GenerateKey(rand.Reader)
	must(t, err)
	if e, _ := aptEntity(other); fmt.Sprintf("%X", e.PrimaryKey.Fingerprint) == goldenAPTKey {
		t.Error("another release key derived the same APT key")
	}
}
