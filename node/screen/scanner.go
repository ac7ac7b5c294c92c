package screen

import (
	"slices"
	"sync"
	"unsafe"
)

// span is a raw detector hit.
type span struct {
	start, end int
	rule       ruleID
	tail       tailKind // how a Stream follows it past the visible text; 0: the rule's
	set        *charset // for tailSet: the bytes that continue it
}

// ctx is the scratch state of one scan. Scanners keep them in a pool, so a
// scan that finds nothing allocates nothing.
type ctx struct {
	on    *[maxRules]bool
	allow *hostSet
	spans []span
	norm  normText // normalised text for the phrase matcher
	dec   []byte   // decoded base64/hex candidates
	dnorm normText // normalised decoded text
	rot   []byte   // rot13 window
	fold  foldText // text without invisible runes, in NFKC
}

func (c *ctx) add(r ruleID, start, end int) {
	if c.on[r] {
		c.spans = append(c.spans, span{start: start, end: end, rule: r})
	}
}

// addTail adds a span that a Stream follows in its own way.
func (c *ctx) addTail(r ruleID, start, end int, tail tailKind, set *charset) {
	if c.on[r] {
		c.spans = append(c.spans, span{start: start, end: end, rule: r, tail: tail, set: set})
	}
}

// detector finds the spans of one or more rules.
type detector struct {
	rules []ruleID
	find  func(c *ctx, s string)
	raw   bool // it looks at the text as it is, not folded (see foldText)
}

var detectors = []detector{
	{rules: []ruleID{rAWS, rGitHub, rSlack, rStripe, rGCP, rOpenAI, rAnthropic, rHuggingFace, rGitLab, rAge, rNotion, rSourcegraph, rTailscale, rVercel, rGroq, rNuGet, rVault, rAuthress, rAPIToken, rAzure, rJWT}, find: findTokens},
	{rules: []ruleID{rPrivateKey}, find: findPrivateKeys},
	{rules: []ruleID{rConnString}, find: findConnStrings},
	{rules: []ruleID{rK8sSecret}, find: findK8sSecrets},
	{rules: []ruleID{rWebhook}, find: findWebhooks},
	{rules: []ruleID{rAuthHeader}, find: findAuthHeaders},
	{rules: []ruleID{rGeneric}, find: findGeneric},
	{rules: []ruleID{rGeneric}, find: findBare},
	{rules: []ruleID{rEmail}, find: findEmails},
	{rules: []ruleID{rCreditCard, rPhone, rSSN}, find: findNumbers},
	{rules: []ruleID{rNPI, rDEA, rNHS}, find: findHealthIDs},
	{rules: []ruleID{rIBAN}, find: findIBANs},
	{rules: []ruleID{rIP}, find: findIPs},
	{rules: []ruleID{rInjOverride, rInjRoleplay, rEncoded}, find: findInjection},
	{rules: []ruleID{rInjOverride, rInjRoleplay}, find: findScriptInjection},
	{rules: []ruleID{rEncoded}, find: findEncoded},
	{rules: []ruleID{rHidden}, find: findHidden, raw: true},
	{rules: []ruleID{rRoleTag}, find: findRoleTags},
	{rules: []ruleID{rExfil}, find: findExfil},
}

// Scanner runs the enabled rules with their actions over text. It is
// immutable after construction and safe for concurrent use.
type Scanner struct {
	actions [maxRules]Action
	on      [maxRules]bool
	defs    []ruleDef // the built-in rules, then the policy's own
	dets    []detector
	allow   *hostSet
	hold    int
	pool    sync.Pool
}

// NewScanner builds a scanner from rule actions (rule id → action; a rule
// that is absent or ActionOff does not run) and the hosts links may point
// at (see Config.LinkAllow). It fails on an unknown rule id.
func NewScanner(actions RuleActions, linkAllow []string) (*Scanner, error) {
	return newScanner(actions, linkAllow, nil)
}

// newScanner builds a scanner with the policy's own rules as well.
func newScanner(actions RuleActions, linkAllow []string, custom []*customRule) (*Scanner, error) {
	s := &Scanner{allow: newHostSet(linkAllow), defs: ruleDefs[:]}
	dets := detectors
	if len(custom) > 0 {
		s.defs = slices.Clone(s.defs)
		dets = slices.Clone(dets)
		for _, cr := range custom {
			s.defs = append(s.defs, cr.def)
		}
		dets = append(dets, customDetector(custom))
	}
	for id, a := range actions {
		i := slices.IndexFunc(s.defs, func(d ruleDef) bool { return d.id == id })
		if i < 0 {
			return nil, &ConfigError{Msg: "unknown rule " + quote(id) + "; see screen.Rules()"}
		}
		s.actions[i], s.on[i] = a, a != ActionOff
	}
	for _, d := range dets {
		if slices.ContainsFunc(d.rules, func(r ruleID) bool { return s.on[r] }) {
			s.dets = append(s.dets, d)
		}
	}
	s.hold = s.holdBack()
	s.pool.New = func() any { return &ctx{on: &s.on, allow: s.allow} }
	return s, nil
}

func (s *Scanner) holdBack() int {
	h := 0
	for r, d := range s.defs {
		if s.on[r] && d.decide+1 > h {
			h = d.decide + 1
		}
	}
	return min(h, MaxHoldBack)
}

// HoldBack returns the most bytes a Stream of this scanner holds back.
func (s *Scanner) HoldBack() int { return s.hold }

// Enabled reports whether any rule runs.
func (s *Scanner) Enabled() bool { return len(s.dets) > 0 }

// Scan returns the findings in text, in text order, without overlaps (when
// two rules match overlapping bytes, the more specific one is kept). It
// returns nil, without allocating, when nothing matches.
func (s *Scanner) Scan(text string) []Finding { return s.AppendScan(nil, text) }

// AppendScan appends the findings in text (see Scan) to fs. It allocates
// only when fs must grow.
func (s *Scanner) AppendScan(fs []Finding, text string) []Finding {
	c := s.pool.Get().(*ctx)
	defer s.pool.Put(c)
	s.spansOf(c, text)
	if len(c.spans) == 0 {
		return fs
	}
	fs = slices.Grow(fs, len(c.spans))
	for _, sp := range c.spans {
		d := s.defs[sp.rule]
		fs = append(fs, Finding{Rule: d.id, Category: d.cat, Start: sp.start, End: sp.end, Action: s.actions[sp.rule]})
	}
	return fs
}

// spansOf leaves the resolved spans of text in c.spans.
func (s *Scanner) spansOf(c *ctx, text string) {
	c.spans = c.spans[:0]
	folded := needsFold(text)
	src := text
	if folded {
		c.fold.fold(text)
		src = string(c.fold.b)
	}
	for _, d := range s.dets {
		if !d.raw {
			d.find(c, src)
		}
	}
	if folded {
		c.fold.source(c.spans)
	}
	for _, d := range s.dets {
		if d.raw {
			d.find(c, text)
		}
	}
	c.spans = s.resolve(c.spans)
}

// resolve merges overlapping spans into one span covering all of them (so
// no part of any match is left out), sorted by start. The merged span
// takes the label of the span that decides the action: the strongest
// action (block, then redact, then flag) and, among equals, the most
// specific rule (the lowest id).
func (s *Scanner) resolve(sp []span) []span {
	if len(sp) < 2 {
		return sp
	}
	slices.SortFunc(sp, func(a, b span) int { return a.start - b.start })
	out := sp[:1]
	for _, x := range sp[1:] {
		last := &out[len(out)-1]
		if x.start >= last.end {
			out = append(out, x)
			continue
		}
		end, tail, set := last.end, last.tailOf(), last.set // the end, and how it continues
		if x.end > end {
			end, tail, set = x.end, x.tailOf(), x.set
		}
		if s.wins(x, *last) {
			last.rule = x.rule
		}
		last.end, last.tail, last.set = end, tail, set
	}
	return out
}

// wins reports whether span a labels a merge with span b.
func (s *Scanner) wins(a, b span) bool {
	if aa, ab := s.actions[a.rule], s.actions[b.rule]; aa != ab {
		return aa > ab
	}
	return a.rule < b.rule
}

// tailOf returns how a Stream follows the span.
func (x span) tailOf() tailKind {
	if x.tail != tailNone {
		return x.tail
	}
	return ruleDefs[x.rule].tail
}

// Check screens an input: it returns text with the ActionRedact findings
// replaced by markers (text itself when there are none), all findings,
// and a *BlockError for the first ActionBlock finding (then the text is
// returned unchanged).
func (s *Scanner) Check(text string) (string, []Finding, error) {
	fs := s.Scan(text)
	if err := blocked(fs); err != nil {
		return text, fs, err
	}
	return Redact(text, fs), fs, nil
}

// AppendCheck is Check for a caller that keeps its buffers: it appends
// the findings to fs and text, with the ActionRedact findings replaced by
// markers, to dst (after a block, text unchanged). It allocates only when
// dst or fs must grow.
func (s *Scanner) AppendCheck(dst []byte, fs []Finding, text string) ([]byte, []Finding, error) {
	n := len(fs)
	fs = s.AppendScan(fs, text)
	if err := blocked(fs[n:]); err != nil {
		return append(dst, text...), fs, err
	}
	return appendRedact(dst, text, fs[n:]), fs, nil
}

// blocked returns a *BlockError for the first ActionBlock finding.
func blocked(fs []Finding) error {
	for _, f := range fs {
		if f.Action == ActionBlock {
			return &BlockError{Rule: f.Rule, Category: f.Category}
		}
	}
	return nil
}

// Redact returns text with the spans of the findings whose action is
// ActionRedact replaced by typed markers such as [REDACTED:jwt], or text
// itself when there are none. The findings must come from scanning text
// (in order, without overlaps).
func Redact(text string, findings []Finding) string {
	n, last := len(text), 0
	for _, f := range findings {
		if redacts(f, last, text) {
			n += len(markerPrefix) + len(f.Rule) + 1 - (f.End - f.Start)
			last = f.End
		}
	}
	if last == 0 {
		return text
	}
	b := appendRedact(make([]byte, 0, n), text, findings) // the one allocation
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// appendRedact appends text to dst with the spans of the ActionRedact
// findings replaced by markers.
func appendRedact(dst []byte, text string, findings []Finding) []byte {
	last := 0
	for _, f := range findings {
		if !redacts(f, last, text) {
			continue
		}
		dst = append(dst, text[last:f.Start]...)
		dst = append(dst, markerPrefix...)
		dst = append(dst, f.Rule...)
		dst = append(dst, ']')
		last = f.End
	}
	return append(dst, text[last:]...)
}

// redacts reports whether f is a redaction within text that starts at or
// after last, where the previous one ended.
func redacts(f Finding, last int, text string) bool {
	return f.Action == ActionRedact && f.Start >= last && f.End <= len(text)
}
