package coordinator

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// Prefixes of the bearer secrets the coordinator hands out. They make a
// leaked secret recognisable (and scannable) and tell kinds apart.
const (
	prefixEnrollKey  = "moat_ek_"
	prefixDeviceCred = "moat_dc_"
	prefixAPIToken   = "moat_at_"
	prefixPoll       = "moat_lp_"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// newSecret returns prefix + 160 random bits in lowercase base32, and its
// SHA-256, which is all the store ever keeps.
func newSecret(prefix string) (secret string, hash []byte) {
	var b [20]byte
	rand.Read(b[:])
	secret = prefix + strings.ToLower(b32.EncodeToString(b[:]))
	return secret, hashSecret(secret)
}

// hashSecret is the at-rest form of a bearer secret. The secrets are
// random and long, so a plain SHA-256 is enough (no salt or stretching is
// needed against guessing); lookups by hash are then constant-time in the
// sense that matters: the secret itself is never compared.
func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// newID returns prefix + 64 random bits, for record identifiers.
func newID(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + strings.ToLower(b32.EncodeToString(b[:]))
}
