package idp

import (
	"strings"
	"testing"
)

func TestPasswordHash(t *testing.T) {
	phc := HashPassword("correct horse battery")
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=1024,t=1,p=1$") { // test parameters, see TestMain
		t.Fatalf("PHC %q", phc)
	}
	if phc == HashPassword("correct horse battery") {
		t.Fatal("two hashes equal: salt not random")
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "correct horse batter": false, "": false} {
		if ok, err := VerifyPassword(phc, pw); ok != want || err != nil {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	for _, bad := range []string{
		"", "plain", "$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=18$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=1024,t=0,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=1024,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
	} {
		if _, err := VerifyPassword(bad, "x"); err == nil {
			t.Errorf("VerifyPassword accepted hash %q", bad)
		}
	}
}

func TestDefaultHashParameters(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB hash")
	}
	phc := hashPassword("pw", argon2Params{Time: 3, Memory: 64 * 1024, Threads: 4})
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=65536,t=3,p=4$") {
		t.Fatalf("PHC %q", phc)
	}
	if ok, err := VerifyPassword(phc, "pw"); !ok || err != nil {
		t.Fatalf("verify: %v, %v", ok, err)
	}
}

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		pw, want string
	}{
		{"violet-harbour-lantern-42", ""},
		{"ünïcödé-pässwörd", ""},
		{"elevenchars", "at least 12"},
		{"ääääääääääää", "predictable"},
		{"123456789012", "too common"},
		{"bcdefghijklmn", "predictable"},
		{"zyxwvutsrqpo", "predictable"},
		{"qwertyuiop12", "too common"},
		{"Password123!", "too common"},
		{"correcthorsebatterystaple", "too common"},
		{"bob.smith-likes-tea", "email"},
		{strings.Repeat("ab", 513), "at most"},
	}
	for _, tt := range tests {
		err := CheckPassword(tt.pw, "Bob.Smith@example.com")
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("CheckPassword(%q) = %v; want %q", tt.pw, err, tt.want)
		}
	}
}
