package idp

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// argon2Params are argon2id parameters.
type argon2Params struct {
	Time    uint32 // passes
	Memory  uint32 // KiB
	Threads uint8  // lanes
}

// hashParams are the parameters of new hashes (see HashPassword); tests
// lower them.
var hashParams = argon2Params{Time: 3, Memory: 64 * 1024, Threads: 4}

const (
	saltLen = 16
	hashLen = 32
	// MinPasswordLen is the shortest password accepted (in characters).
	MinPasswordLen = 12
	// maxPasswordLen bounds hashing work; longer input is refused.
	maxPasswordLen = 1024
	// maxVerifyMemory refuses stored hashes that would need absurd memory.
	maxVerifyMemory = 1 << 20 // KiB (1 GiB)
)

var errBadHash = errors.New("not an argon2id PHC string")

// HashPassword hashes password with argon2id into a PHC string,
// $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash> (unpadded base64). The
// parameters are RFC 9106's second recommended option — 3 passes over
// 64 MiB with 4 lanes — with a 16-byte random salt and a 32-byte hash:
// roughly 50–100 ms on a server. A stored hash carries its parameters, so
// they may be raised later without invalidating existing passwords.
func HashPassword(password string) string {
	return hashPassword(password, hashParams)
}

func hashPassword(password string, p argon2Params) string {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	sum := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, hashLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(sum))
}

// VerifyPassword reports whether password matches the PHC string phc,
// comparing in constant time. A malformed phc gives an error.
func VerifyPassword(phc, password string) (bool, error) {
	p, salt, want, err := parsePHC(phc)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

func parsePHC(phc string) (argon2Params, []byte, []byte, error) {
	var p argon2Params
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, errBadHash
	}
	if p.Time == 0 || p.Threads == 0 || p.Memory < 8*uint32(p.Threads) || p.Memory > maxVerifyMemory {
		return p, nil, nil, errBadHash
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	sum, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(sum) < 16 {
		return p, nil, nil, errBadHash
	}
	return p, salt, sum, nil
}

// commonPasswords are refused outright (compared case-insensitively, and
// also as the start of the password followed by digits or symbols only).
var commonPasswords = []string{
	"password", "passw0rd", "qwerty", "qwertyuiop", "letmein", "welcome",
	"iloveyou", "admin", "administrator", "changeme", "secret", "monkey",
	"dragon", "football", "baseball", "sunshine", "princess", "trustno1",
	"123456789012", "1234567890", "abcdefghijkl", "moat", "correcthorsebatterystaple",
}

// CheckPassword says why password is not acceptable for the account
// email, in words for the person, or returns nil. It refuses passwords
// shorter than MinPasswordLen characters or longer than 1,024 bytes, ones
// made of a single repeated character or a simple run (abcd…, 1234…),
// well-known ones, and ones containing the email's local part.
func CheckPassword(password, email string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLen:
		return fmt.Errorf("use at least %d characters (this one has %d)", MinPasswordLen, n)
	case len(password) > maxPasswordLen:
		return fmt.Errorf("use at most %d characters", maxPasswordLen)
	case isRun(password):
		return errors.New("this password is too predictable (repeated or consecutive characters); choose another")
	case isCommon(password):
		return errors.New("this password is too common; choose another")
	}
	local, _, _ := strings.Cut(strings.ToLower(email), "@")
	if len(local) >= 3 && strings.Contains(strings.ToLower(password), local) {
		return errors.New("the password must not contain your email address")
	}
	return nil
}

// isRun reports whether every character repeats the previous one or
// follows it (by +1 or -1).
func isRun(s string) bool {
	rs := []rune(strings.ToLower(s))
	step := rs[1] - rs[0]
	if step < -1 || step > 1 {
		return false
	}
	for i := 2; i < len(rs); i++ {
		if rs[i]-rs[i-1] != step {
			return false
		}
	}
	return true
}

func isCommon(s string) bool {
	lower := strings.ToLower(s)
	for _, c := range commonPasswords {
		rest, ok := strings.CutPrefix(lower, c)
		if ok && strings.TrimLeft(rest, "0123456789!@#$%^&*()-_=+.?") == "" {
			return true
		}
	}
	return false
}
