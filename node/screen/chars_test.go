package screen

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestNextIn checks the eight-bytes-at-a-time search against a plain
// loop, for every byte value at every position of random texts.
func TestNextIn(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ranges := [][2]byte{{'0', '9'}, {'(', '9'}, {1, 127}, {'a', 'a'}, {127, 127}, {1, 1}}
	for _, r := range ranges {
		for range 12 {
			b := make([]byte, 1+rng.IntN(40))
			for i := range b {
				b[i] = byte(rng.IntN(256))
				if b[i] >= r[0] && b[i] <= r[1] {
					b[i] = 0 // most texts have none, then one is planted
				}
			}
			for at := range b {
				for v := range 256 {
					old := b[at]
					b[at] = byte(v)
					s := string(b)
					for from := range len(s) + 1 {
						want := from
						for want < len(s) && (s[want] < r[0] || s[want] > r[1]) {
							want++
						}
						if got := nextIn(s, from, r[0], r[1]); got != want {
							t.Fatalf("nextIn(%q, %d, %d, %d) = %d, want %d", s, from, r[0], r[1], got, want)
						}
					}
					b[at] = old
				}
			}
		}
	}
}

// TestNextNumber checks nextNumber against a plain loop.
func TestNextNumber(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = "ab (+)*,-./09:\x80\xff"[rng.IntN(16)]
			if rng.IntN(3) > 0 {
				b[i] = byte('a' + rng.IntN(26))
			}
		}
		s := string(b)
		for from := range len(s) + 1 {
			want := from
			for want < len(s) && !isDigit(s[want]) && s[want] != '+' && s[want] != '(' {
				want++
			}
			if got := nextNumber(s, from); got != want {
				t.Fatalf("nextNumber(%q, %d) = %d, want %d", s, from, got, want)
			}
		}
	}
}

// TestIndexByLast checks indexByLast against strings.Index.
func TestIndexByLast(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, sub := range []string{"ind:", "ata:", "hooks.slack.com/", "a", "aa:"} {
		for range 2000 {
			b := make([]byte, rng.IntN(30))
			for i := range b {
				b[i] = "ind:ata/hooks.slackcom "[rng.IntN(23)]
			}
			s := string(b)
			if rng.IntN(4) == 0 {
				k := rng.IntN(len(s) + 1)
				s = s[:k] + sub + s[k:]
			}
			if got, want := indexByLast(s, sub), strings.Index(s, sub); got != want {
				t.Fatalf("indexByLast(%q, %q) = %d, want %d", s, sub, got, want)
			}
		}
	}
}

// TestNextOf checks nextOf against a plain loop.
func TestNextOf(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, list := range []string{genericSeps, tagOpens, "a"} {
		set := chars(list)
		for range 2000 {
			b := make([]byte, rng.IntN(40))
			for i := range b {
				b[i] = "ab=:>,<[\x00\xff z"[rng.IntN(12)]
			}
			s := string(b)
			for from := range len(s) + 1 {
				want := from
				for want < len(s) && !strings.Contains(list, s[want:want+1]) {
					want++
				}
				if got := nextOf(s, from, list, set); got != want {
					t.Fatalf("nextOf(%q, %d, %q) = %d, want %d", s, from, list, got, want)
				}
			}
		}
	}
}
