package guard

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/moatmesh/moat/node/screen"
	"github.com/moatmesh/moat/policy"
)

// ScreenOptions configures the guard's built-in screening, which applies
// each grant's Guard settings (injection, redact, links) with node/screen.
// The zero value is ready to use: no link allowlist, no classifier, the
// abuse tracker on with its defaults and no throttling.
type ScreenOptions struct {
	// LinkAllow lists the hosts answers may link to under a grant whose
	// links setting is "block-external" ("example.com", ".example.com" or
	// "*.example.com" for subdomains). Empty: every external link is
	// removed.
	LinkAllow []string
	// Classifier, when set, is asked about the prompts of grants whose
	// injection setting is "flag" or "block"; a flagged prompt counts as
	// rule "classifier" with the grant's action. Nil: heuristics only.
	Classifier *screen.Classifier
	// Abuse tunes the per-identity abuse tracker (bursts, near-duplicate
	// prompts, logprobs at scale). Zero: the tracker's defaults; events
	// are audited and counted, nobody is throttled unless Abuse.Throttle
	// is set. Abuse.OnEvent is called after the guard's own handling.
	Abuse screen.AbuseConfig
	// NoAbuse turns the abuse tracker off.
	NoAbuse bool
}

// compiled is one distinct policy.Guard value, compiled.
type compiled struct {
	g         policy.Guard
	scr       *screen.Screen
	injection screen.Action // for the classifier
}

// policyScreen is the built-in Screen: a screen.Screen per distinct
// policy.Guard value, compiled once per netmap (prepare) and looked up per
// request by grant ID. Grants without guard settings are not screened and
// their bytes pass untouched.
type policyScreen struct {
	opts    ScreenOptions
	byGrant atomic.Pointer[map[string]*compiled] // nil entry: nothing to screen
	mu      struct {
		sync.Mutex
		byKey map[string]*compiled // every value compiled for the current netmap
	}
}

func newPolicyScreen(opts ScreenOptions) *policyScreen {
	p := &policyScreen{opts: opts}
	p.mu.byKey = map[string]*compiled{}
	return p
}

// prepare compiles the guard settings of rules' grants, reusing what the
// previous netmap compiled for the same values.
func (p *policyScreen) prepare(rules *policy.NodeRules) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	byKey := map[string]*compiled{}
	byGrant := map[string]*compiled{}
	if rules != nil {
		for i := range rules.Grants {
			gr := &rules.Grants[i]
			c, err := p.compileLocked(gr.Guard, byKey)
			if err != nil {
				return err
			}
			byGrant[gr.ID] = c
		}
	}
	p.mu.byKey = byKey
	p.byGrant.Store(&byGrant)
	return nil
}

// compileLocked returns the compiled form of g (nil when g asks for
// nothing), from the previous netmap's cache when it has it, and adds it
// to byKey.
func (p *policyScreen) compileLocked(g policy.Guard, byKey map[string]*compiled) (*compiled, error) {
	if isZeroGuard(g) {
		return nil, nil
	}
	k := guardKey(g)
	if c := byKey[k]; c != nil {
		return c, nil
	}
	c := p.mu.byKey[k]
	if c == nil {
		scr, err := screen.Compile(screen.FromGuard(g, p.opts.LinkAllow))
		if err != nil {
			return nil, err
		}
		inj := injectionAction(g.Injection)
		switch g.Prompts.Injection { // the prompts setting decides for the classifier too
		case "":
		case "redact": // a verdict on a whole prompt has nothing to redact
			inj = screen.ActionFlag
		default:
			inj = injectionAction(g.Prompts.Injection)
		}
		c = &compiled{g: g, scr: scr, injection: inj}
	}
	byKey[k] = c
	return c, nil
}

// lookup returns the compiled settings of gr; nil when it has none. A
// grant of a netmap newer than the last prepare (a race between a request
// and SetNetMap) is compiled on the spot.
func (p *policyScreen) lookup(gr *policy.GrantRule) *compiled {
	if gr == nil || isZeroGuard(gr.Guard) {
		return nil
	}
	if m := p.byGrant.Load(); m != nil {
		if c := (*m)[gr.ID]; c != nil && sameGuard(c.g, gr.Guard) {
			return c
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := p.compileLocked(gr.Guard, p.mu.byKey)
	if err != nil {
		return nil // FromGuard yields only known rules; unreachable
	}
	return c
}

func isZeroGuard(g policy.Guard) bool {
	return (g.Injection == "" || g.Injection == "off") && len(g.Redact) == 0 && (g.Links == "" || g.Links == "allow") &&
		g.Prompts == (policy.Actions{}) && g.Answers == (policy.Actions{})
}

func sameGuard(a, b policy.Guard) bool {
	return a.Injection == b.Injection && a.Links == b.Links && slices.Equal(a.Redact, b.Redact) &&
		a.Prompts == b.Prompts && a.Answers == b.Answers && slices.Equal(a.LinkAllow, b.LinkAllow) &&
		slices.Equal(a.Detectors, b.Detectors)
}

func guardKey(g policy.Guard) string {
	r := slices.Clone(g.Redact)
	slices.Sort(r)
	return g.Injection + "|" + strings.Join(r, ",") + "|" + g.Links + "|" + actionsKey(g.Prompts) + "|" + actionsKey(g.Answers) +
		"|" + strings.Join(g.LinkAllow, ",") + "|" + detectorsKey(g.Detectors)
}

// detectorsKey names a grant's own detectors (the pattern quoted, so no
// two lists share a key).
func detectorsKey(ds []policy.Detector) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.Name + "," + strconv.Quote(d.Pattern) + "," + d.Validator + "," + d.Category + ";")
	}
	return b.String()
}

func actionsKey(a policy.Actions) string {
	return a.Secrets + "," + a.PII + "," + a.Injection + "," + a.Links
}

func injectionAction(s string) screen.Action {
	switch s {
	case "flag":
		return screen.ActionFlag
	case "block":
		return screen.ActionBlock
	}
	return screen.ActionOff
}

// Input checks the request body's strings; see Screen.
func (p *policyScreen) Input(ctx context.Context, c *ScreenCall, body []byte) ([]byte, error) {
	comp := p.lookup(c.Grant)
	if comp == nil {
		return body, nil
	}
	out, fs, err := comp.scr.In.CheckJSON(body)
	note(c, fs, "input")
	if err != nil {
		return nil, err
	}
	if cl := p.opts.Classifier; cl != nil && comp.injection != screen.ActionOff {
		if v := cl.Check(ctx, string(body)); v.Flagged {
			c.Note("classifier", screen.CatInjection.String(), comp.injection.String(), "input")
			if comp.injection == screen.ActionBlock {
				return nil, &screen.BlockError{Rule: "classifier", Category: screen.CatInjection}
			}
		}
	}
	return out, nil
}

// Output returns a payload filter when the grant screens answers.
func (p *policyScreen) Output(c *ScreenCall) OutputFilter {
	comp := p.lookup(c.Grant)
	if comp == nil || !comp.scr.Out.Enabled() {
		return nil
	}
	f := screen.FormatOpenAI
	if c.Kind == KindOllama {
		f = screen.FormatOllama
	}
	return &payloadFilter{pf: comp.scr.Out.NewPayloadFilter(f), call: c}
}

// Answer screens a whole answer's strings.
func (p *policyScreen) Answer(c *ScreenCall, body []byte) ([]byte, error) {
	comp := p.lookup(c.Grant)
	if comp == nil || !comp.scr.Out.Enabled() {
		return body, nil
	}
	out, fs, err := comp.scr.Out.CheckJSON(body)
	note(c, fs, "output")
	if errors.Is(err, screen.ErrMalformedEvent) {
		return body, nil // not JSON (an error page, plain text): nothing to rewrite in place
	}
	return out, err
}

func note(c *ScreenCall, fs []screen.Finding, where string) {
	for _, f := range fs {
		if f.Action != screen.ActionOff {
			c.Note(f.Rule, f.Category.String(), f.Action.String(), where)
		}
	}
}

// payloadFilter adapts screen.PayloadFilter to OutputFilter and notes its
// findings as they appear.
type payloadFilter struct {
	pf    *screen.PayloadFilter
	call  *ScreenCall
	noted int
}

func (f *payloadFilter) Payload(dst, payload []byte, frame func(dst, p []byte) []byte) ([]byte, error) {
	dst, err := f.pf.Payload(dst, payload, frame)
	f.noteNew()
	return dst, err
}

func (f *payloadFilter) End(dst []byte, frame func(dst, p []byte) []byte) ([]byte, error) {
	dst, err := f.pf.End(dst, frame)
	f.noteNew()
	return dst, err
}

func (f *payloadFilter) noteNew() {
	fs := f.pf.Findings()
	if len(fs) > f.noted {
		note(f.call, fs[f.noted:], "output")
		f.noted = len(fs)
	}
}
