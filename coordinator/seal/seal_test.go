package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func testBox(t *testing.T, fill byte) *Box {
	t.Helper()
	var key [KeySize]byte
	for i := range key {
		key[i] = fill
	}
	return New(key)
}

func TestSealOpen(t *testing.T) {
	b := testBox(t, 1)
	pt := []byte("JBSWY3DPEHPK3PXP")
	s1 := b.Seal(pt, []byte("iu_1"))
	s2 := b.Seal(pt, []byte("iu_1"))
	if bytes.Equal(s1, s2) {
		t.Fatal("two seals of the same plaintext are equal; nonce not random")
	}
	if bytes.Contains(s1, pt) {
		t.Fatal("sealed value contains the plaintext")
	}
	got, err := b.Open(s1, []byte("iu_1"))
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v; want %q", got, err, pt)
	}
	empty := b.Seal(nil, nil)
	if got, err := b.Open(empty, nil); err != nil || len(got) != 0 {
		t.Fatalf("Open(empty) = %q, %v", got, err)
	}
}

func TestOpenRefuses(t *testing.T) {
	b := testBox(t, 1)
	good := b.Seal([]byte("secret"), []byte("iu_1"))
	flip := func(i int) []byte {
		s := bytes.Clone(good)
		s[i] ^= 0x01
		return s
	}
	tests := []struct {
		name   string
		box    *Box
		sealed []byte
		ad     string
	}{
		{"wrong additional data", b, good, "iu_2"},
		{"missing additional data", b, good, ""},
		{"wrong key", testBox(t, 2), good, "iu_1"},
		{"version byte", b, flip(0), "iu_1"},
		{"nonce", b, flip(3), "iu_1"},
		{"ciphertext", b, flip(1 + nonceSize), "iu_1"},
		{"tag", b, flip(len(good) - 1), "iu_1"},
		{"truncated", b, good[:len(good)-1], "iu_1"},
		{"too short", b, good[:1+nonceSize+tagSize-1], "iu_1"},
		{"empty", b, nil, "iu_1"},
		{"appended", b, append(bytes.Clone(good), 0), "iu_1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.box.Open(tt.sealed, []byte(tt.ad))
			if !errors.Is(err, ErrOpen) || got != nil {
				t.Fatalf("Open = %q, %v; want nil, ErrOpen", got, err)
			}
		})
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "seal.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != KeySize {
		t.Fatalf("key file mode %v size %d; want 0600, %d", fi.Mode().Perm(), fi.Size(), KeySize)
	}
	if k1 == ([KeySize]byte{}) {
		t.Fatal("key is all zero")
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || k2 != k1 {
		t.Fatalf("second load = %x, %v; want the same key", k2, err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".sealkey-*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

func TestLoadOrCreateKeyRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seal.key")
	keys := make([][KeySize]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := LoadOrCreateKey(path)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if k != keys[0] {
			t.Fatal("racing creators got different keys")
		}
	}
}

func TestLoadOrCreateKeyRefuses(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		mode os.FileMode
		want string
	}{
		{"short", make([]byte, 31), 0o600, "want exactly 32"},
		{"long", make([]byte, 33), 0o600, "want exactly 32"},
		{"empty", nil, 0o600, "want exactly 32"},
		{"group readable", make([]byte, 32), 0o640, "chmod 600"},
		{"world readable", make([]byte, 32), 0o604, "chmod 600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "seal.key")
			if err := os.WriteFile(path, tt.data, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil { // umask-proof
				t.Fatal(err)
			}
			_, err := LoadOrCreateKey(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want it to mention %q", err, tt.want)
			}
			if got, _ := os.ReadFile(path); len(got) != len(tt.data) {
				t.Fatal("refused key file was modified")
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	var key [KeySize]byte
	for i := range key {
		key[i] = byte(i * 7)
	}
	for name, in := range map[string]string{
		"raw":            string(key[:]),
		"base64":         EncodeKey(key) + "\n",
		"hex":            fmt.Sprintf("%x\n", key[:]),
		"base64 url raw": base64.RawURLEncoding.EncodeToString(key[:]),
	} {
		got, err := ParseKey([]byte(in))
		if err != nil || got != key {
			t.Errorf("%s: %x, %v", name, got, err)
		}
	}
	for _, bad := range []string{"", "short", EncodeKey(key)[:40], fmt.Sprintf("%x", key[:31])} {
		if _, err := ParseKey([]byte(bad)); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}

// TestKeyID: the id tells keys apart and does not reveal the key.
func TestKeyID(t *testing.T) {
	a, b := [KeySize]byte{1}, [KeySize]byte{2}
	if KeyID(a) == KeyID(b) || KeyID(a) != KeyID(a) || len(KeyID(a)) != 16 {
		t.Fatalf("ids %s, %s", KeyID(a), KeyID(b))
	}
	if strings.Contains(fmt.Sprintf("%x", a[:]), KeyID(a)) {
		t.Fatal("the id is part of the key")
	}
}

func TestLoadKeyText(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	key := [KeySize]byte{9, 8, 7}
	if err := os.WriteFile(path, []byte(EncodeKey(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadKey(path); err != nil || got != key {
		t.Fatalf("LoadKey = %x, %v", got, err)
	}
}
