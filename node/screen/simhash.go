package screen

import "math/bits"

// simHash returns a 64-bit SimHash of the normalised words of s (word
// pairs as features): prompts that differ in a few words, or only in
// numbers, case and punctuation, land a few bits apart.
func simHash(s string) uint64 {
	var acc [64]int32
	var prev uint64
	word := uint64(14695981039346656037)
	inWord := false
	feature := func(h uint64) {
		for i := range acc {
			if h>>i&1 == 1 {
				acc[i]++
			} else {
				acc[i]--
			}
		}
	}
	flush := func() {
		if inWord {
			feature(mix(prev ^ word*31))
			prev, word, inWord = word, 14695981039346656037, false
		}
	}
	for i := 0; i < len(s); i++ {
		c := lower(s[i])
		switch {
		case isDigit(c):
			c = '0' // numbers vary systematically; fold them together
			fallthrough
		case isAlpha(c) || c >= 0x80:
			word = (word ^ uint64(c)) * 1099511628211
			inWord = true
		default:
			flush()
		}
	}
	flush()
	var h uint64
	for i, v := range acc {
		if v > 0 {
			h |= 1 << i
		}
	}
	return h
}

// mix is a 64-bit finaliser (splitmix64).
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func hamming(a, b uint64) int { return bits.OnesCount64(a ^ b) }
