package screen

import (
	"bytes"
	"regexp"
	"regexp/syntax"
	"strings"
)

// phrasePat is a compiled phrase, indexed by its first word.
type phrasePat struct {
	rule   ruleID
	second string // the trigger's second word, if it has one
	re     *regexp.Regexp
	// next has bit c set when the phrase can go on with byte c after the
	// trigger and one space: a cheap test before the expression runs (most
	// trigger words, "you" or "it", are followed by words no phrase has).
	next *byteSet
}

// byteSet is a set of bytes.
type byteSet [4]uint64

func (s *byteSet) has(c byte) bool { return s[c/64]&(1<<(c%64)) != 0 }
func (s *byteSet) add(c byte)      { s[c/64] |= 1 << (c % 64) }

// nextByte returns c, rot13-decoded when rot is not nil (see matchAt).
func nextByte(c byte, rot *[]byte) byte {
	if rot != nil {
		return rot13Byte(c)
	}
	return c
}

// nextBytes returns the bytes that can come right after the space that
// opens rest (a phrase's expression after its trigger): the first bytes
// of the next word. It over-approximates (empty-width assertions count
// as met) and returns nil when it cannot tell (then any byte, or none,
// may follow), which includes a rest that may begin with something other
// than a space; a byte outside the set means the expression cannot match.
func nextBytes(rest string) *byteSet {
	re, err := syntax.Parse(rest, syntax.Perl)
	if err != nil {
		return nil
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil
	}
	at := closure(prog, []uint32{uint32(prog.Start)})
	var after []uint32
	for _, pc := range at {
		i := &prog.Inst[pc]
		switch i.Op {
		case syntax.InstMatch:
			return nil
		case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
			for c := range rune(256) {
				if c != ' ' && i.MatchRune(c) {
					return nil // the filter reads the byte after a space
				}
			}
			if i.MatchRune(' ') {
				after = append(after, i.Out)
			}
		}
	}
	var s byteSet
	for _, pc := range closure(prog, after) {
		i := &prog.Inst[pc]
		switch i.Op {
		case syntax.InstMatch:
			return nil
		case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
			for c := range 256 {
				if c >= 0x80 || i.MatchRune(rune(c)) {
					s.add(byte(c))
				}
			}
		}
	}
	return &s
}

// closure returns the instructions reachable from pcs without reading a
// byte (taking every empty-width assertion as met).
func closure(prog *syntax.Prog, pcs []uint32) []uint32 {
	seen := map[uint32]bool{}
	var out []uint32
	for len(pcs) > 0 {
		pc := pcs[len(pcs)-1]
		pcs = pcs[:len(pcs)-1]
		if seen[pc] {
			continue
		}
		seen[pc] = true
		switch i := &prog.Inst[pc]; i.Op {
		case syntax.InstAlt, syntax.InstAltMatch:
			pcs = append(pcs, i.Out, i.Arg)
		case syntax.InstCapture, syntax.InstNop, syntax.InstEmptyWidth:
			pcs = append(pcs, i.Out)
		default:
			out = append(out, pc)
		}
	}
	return out
}

// phraseIndex maps a first word to the phrases it can open.
var phraseIndex = map[string][]phrasePat{}

// trigFilter tells, from a word's length and first, second and last
// bytes, whether it can be a trigger word, before the map lookup.
type trigFilter struct {
	// shape has bit n of [c] set when a trigger word starts with byte c
	// and is n bytes long: a word that fails it needs no more tests.
	shape [256]uint32
	// pairs has bit b1<<8|b2 set when a trigger word starts with the
	// bytes b1 b2 (b2 is ' ' for a word of one byte).
	pairs [1 << 16 / 64]uint64
	// ends has bit b1<<8|bn set when a trigger word starts with b1 and
	// ends with bn.
	ends [1 << 16 / 64]uint64
}

// trigPlain filters words as they are; trigRot filters words whose rot13
// rotation is a trigger, looking at their bytes unrotated.
var trigPlain, trigRot trigFilter

// addWord records a trigger word; with rot, its rot13 rotation.
func (f *trigFilter) addWord(word string, rot bool) {
	w := []byte(word)
	if rot {
		rot13(w)
	}
	f.shape[w[0]] |= 1 << min(len(w), 31)
	k := pairKey(w)
	f.pairs[k/64] |= 1 << (k % 64)
	k = endKey(w)
	f.ends[k/64] |= 1 << (k % 64)
}

// may reports whether word passes the filter.
func (f *trigFilter) may(word []byte) bool {
	if f.shape[word[0]]&(1<<len(word)) == 0 {
		return false
	}
	k := pairKey(word)
	if f.pairs[k/64]&(1<<(k%64)) == 0 {
		return false
	}
	k = endKey(word)
	return f.ends[k/64]&(1<<(k%64)) != 0
}

// pairKey returns the pairs bit for a word.
func pairKey(word []byte) uint16 {
	b2 := byte(' ')
	if len(word) > 1 {
		b2 = word[1]
	}
	return uint16(word[0])<<8 | uint16(b2)
}

// endKey returns the ends bit for a word.
func endKey(word []byte) uint16 { return uint16(word[0])<<8 | uint16(word[len(word)-1]) }

// mayTrigger is the first test of both filters at once: whether a word
// can be a trigger, as it is or in rot13, from its length and first two
// bytes. Most words fail it, before any call.
func mayTrigger(word []byte) bool {
	return len(word) > 0 && len(word) <= maxTrigWord && trigStart[startKey(word)]&(1<<len(word)) != 0
}

// trigStart has bit n of [startKey(w)] set when a trigger word w, or the
// rot13 rotation of one, is n bytes long.
var trigStart [32 * 32]uint32

// startKey folds a word's first two bytes (letters, else one code for
// all others) into an index of trigStart.
func startKey(word []byte) int {
	k := int(letterCode[word[0]]) << 5
	if len(word) > 1 {
		k |= int(letterCode[word[1]])
	}
	return k
}

// letterCode numbers the lower-case letters from 1; other bytes are 0.
var letterCode = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = uint8(c - 'a' + 1)
	}
	return t
}()

// maxSecondWord is the length of the longest second word of a trigger.
var maxSecondWord int

// maxTrigWord bounds the length of a trigger word.
const maxTrigWord = 24

// phraseWindow bounds the normalised bytes a phrase may span.
const phraseWindow = 160

func init() {
	for _, p := range phrases {
		// The map and secondWord have matched the trigger: the expression
		// only steps over its one or two words (a smaller program than
		// the trigger's alternatives, which keeps it backtracking).
		var one, two *regexp.Regexp
		for _, t := range strings.Split(p.trig, "|") {
			first, second, isTwo := strings.Cut(t, " ")
			re, skip := &one, `^[^ ]+`
			if isTwo {
				re, skip = &two, `^[^ ]+ [^ ]+`
			}
			if *re == nil {
				*re = regexp.MustCompile(skip + p.rest + `\b`)
			}
			if len(first) > maxTrigWord {
				panic("screen: trigger word " + first + " is longer than maxTrigWord")
			}
			phraseIndex[first] = append(phraseIndex[first], phrasePat{p.rule, second, *re, nextBytes(p.rest)})
			maxSecondWord = max(maxSecondWord, len(second))
			trigPlain.addWord(first, false)
			trigRot.addWord(first, true)
			rot := []byte(first)
			rot13(rot)
			trigStart[startKey([]byte(first))] |= 1 << len(first)
			trigStart[startKey(rot)] |= 1 << len(first)
		}
	}
	trigTable = newWordTable(phraseIndex)
}

// wordTable finds a trigger word's phrases (phraseIndex's) without a map:
// open addressing on an FNV-1a hash of the word, in a table under half
// full, so a lookup is a short hash and mostly one comparison.
type wordTable struct {
	slot  []uint16 // 1 + the index in words, 0: empty
	words []string
	pats  [][]phrasePat
}

// trigTable is phraseIndex as a wordTable; built in init.
var trigTable wordTable

func newWordTable(index map[string][]phrasePat) wordTable {
	n := 1
	for n < 2*len(index) {
		n <<= 1
	}
	t := wordTable{slot: make([]uint16, n)}
	for w, pats := range index {
		t.words, t.pats = append(t.words, w), append(t.pats, pats)
		h := wordHash([]byte(w)) & uint32(n-1)
		for t.slot[h] != 0 {
			h = (h + 1) & uint32(n-1)
		}
		t.slot[h] = uint16(len(t.words))
	}
	return t
}

func (t *wordTable) lookup(word []byte) ([]phrasePat, bool) {
	mask := uint32(len(t.slot) - 1)
	for h := wordHash(word) & mask; t.slot[h] != 0; h = (h + 1) & mask {
		if k := t.slot[h] - 1; t.words[k] == string(word) {
			return t.pats[k], true
		}
	}
	return nil, false
}

func wordHash(w []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range w {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}

// findInjection normalises s and looks for the injection phrasings, also
// spelled in rot13 (reported as encoded-instructions).
func findInjection(c *ctx, s string) {
	if !c.on[rInjOverride] && !c.on[rInjRoleplay] && !c.on[rEncoded] {
		return
	}
	c.norm.normalize(s)
	t := &c.norm
	for w := 0; w < len(t.b); {
		e := w + wordEnd(t.b[w:])
		if !mayTrigger(t.b[w:e]) {
			w = e + 1
			continue
		}
		r, n, ok := matchAt(t.b, w, e, nil)
		if !ok && c.on[rEncoded] {
			_, n, ok = matchAt(t.b, w, e, &c.rot)
			r = rEncoded
		}
		if ok && !mentioned(t.b[max(0, w-mentionWindow):w]) {
			a, b := t.span(w, w+n, len(s))
			c.add(r, a, b)
			e = max(e, w+n)
		}
		w = e + 1
	}
}

// containsInjection reports whether normalised text holds a phrase.
func containsInjection(b []byte) bool {
	for w := 0; w < len(b); {
		e := w + wordEnd(b[w:])
		if _, _, ok := matchAt(b, w, e, nil); ok {
			return true
		}
		w = e + 1
	}
	return false
}

// wordEnd returns the length of the word that starts b: up to its first
// space. Words are short, so a plain loop beats bytes.IndexByte's setup.
func wordEnd(b []byte) int {
	for i, c := range b {
		if c == ' ' {
			return i
		}
	}
	return len(b)
}

// matchAt tries the phrases that the word b[w:e] opens and returns the
// rule and the match length.
// With a non-nil rot it reads the text rot13-decoded, into *rot.
func matchAt(b []byte, w, e int, rot *[]byte) (ruleID, int, bool) {
	if e-w > maxTrigWord {
		return 0, 0, false
	}
	f := &trigPlain
	if rot != nil {
		f = &trigRot
	}
	if !f.may(b[w:e]) {
		return 0, 0, false
	}
	var wb [maxTrigWord]byte
	word := wb[:e-w]
	copy(word, b[w:e])
	if rot != nil {
		rot13(word)
	}
	pats, ok := trigTable.lookup(word)
	if !ok {
		return 0, 0, false
	}
	win := b[w:min(len(b), w+phraseWindow)]
	done := len(win) // win[:done] is decoded
	if rot != nil {
		// Decode the word and the next one for secondWord; the rest only
		// for an expression.
		*rot = append((*rot)[:0], win...)
		win = *rot
		done = min(len(win), e-w+1+maxSecondWord+1)
		rot13(win[:done])
	}
	for _, p := range pats {
		if p.second != "" && !secondWord(win, e-w, p.second) {
			continue
		}
		next := e - w + 1 // where the next word starts in win
		if p.second != "" {
			next += len(p.second) + 1
		}
		if p.next != nil && (next >= len(win) || !p.next.has(nextByte(b[w+next], rot))) {
			continue
		}
		if done < len(win) {
			rot13(win[done:])
			done = len(win)
		}
		// One run of the expression: FindIndex allocates only its result,
		// on a match (Match first would run it twice then).
		if loc := p.re.FindIndex(win); loc != nil {
			return p.rule, loc[1], true
		}
	}
	return 0, 0, false
}

// secondWord reports whether the word after the one ending at e is want.
func secondWord(win []byte, e int, want string) bool {
	rest := win[min(len(win), e+1):]
	return len(rest) >= len(want) && string(rest[:len(want)]) == want && (len(rest) == len(want) || rest[len(want)] == ' ')
}

// rot13 rotates the ASCII letters of b in place.
func rot13(b []byte) {
	for i, c := range b {
		b[i] = rot13Byte(c)
	}
}

func rot13Byte(c byte) byte { return rot13Table[c] }

// rot13Table maps each byte to its rot13 rotation.
var rot13Table = func() (t [256]byte) {
	for i := range t {
		c := byte(i)
		switch {
		case c >= 'a' && c <= 'z':
			c = 'a' + (c-'a'+13)%26
		case c >= 'A' && c <= 'Z':
			c = 'A' + (c-'A'+13)%26
		}
		t[i] = c
	}
	return t
}()

// mentionWindow is how far before a phrase mentioned looks.
const mentionWindow = 48

// mentionMarkers, in normalised text, introduce a phrase that is talked
// about rather than meant ("attacks such as 'ignore previous instructions'").
var mentionMarkers = []string{"prompt injection", "injection attack", "such as", " e g ", "for example", "phrases like", "jailbreak prompts", "attacks like"}

// mentioned reports whether the text before a phrase shows that it is
// quoted as an example.
func mentioned(before []byte) bool {
	for _, m := range mentionMarkers {
		if bytes.Contains(before, []byte(m)) {
			return true
		}
	}
	return false
}
