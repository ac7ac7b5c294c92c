package guard

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strings"
	"sync"
)

// promptHasher computes audit.HashPrompt under one key with pooled HMAC
// states, so a request's prompt hash costs no key setup and one
// allocation.
type promptHasher struct {
	pool sync.Pool
}

const promptHashPrefix = "hmac-sha256:"

func newPromptHasher(key []byte) *promptHasher {
	key = append([]byte(nil), key...)
	return &promptHasher{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// hash returns audit.HashPrompt(key, body).
func (p *promptHasher) hash(body []byte) string {
	m := p.pool.Get().(hash.Hash)
	m.Reset()
	m.Write(body)
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	p.pool.Put(m)
	var hx [2 * sha256.Size]byte
	hex.Encode(hx[:], sum[:])
	var b strings.Builder
	b.Grow(len(promptHashPrefix) + len(hx))
	b.WriteString(promptHashPrefix)
	b.Write(hx[:])
	return b.String()
}
