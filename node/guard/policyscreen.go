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

// Input checks the request body's strings; see Screen. A redacted body
// is written into a pooled buffer that c holds until the call ends (see
// ScreenCall.release).
func (p *policyScreen) Input(ctx context.Context, c *ScreenCall, body []byte) ([]byte, error) {
	comp := p.lookup(c.Grant)
	if comp == nil {
		return body, nil
	}
	buf := screenBufs.Get().(*screenBuf)
	out, fs, err := comp.scr.In.AppendCheckJSON(buf.b[:0], buf.fs[:0], body)
	note(c, fs, "input")
	c.hold(buf, out, fs, body)
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

// Answer screens a whole answer's strings; a redacted answer is written
// into a pooled buffer, as in Input.
func (p *policyScreen) Answer(c *ScreenCall, body []byte) ([]byte, error) {
	comp := p.lookup(c.Grant)
	if comp == nil || !comp.scr.Out.Enabled() {
		return body, nil
	}
	buf := screenBufs.Get().(*screenBuf)
	out, fs, err := comp.scr.Out.AppendCheckJSON(buf.b[:0], buf.fs[:0], body)
	note(c, fs, "output")
	c.hold(buf, out, fs, body)
	if errors.Is(err, screen.ErrMalformedEvent) {
		return body, nil // not JSON (an error page, plain text): nothing to rewrite in place
	}
	return out, err
}

// screenBuf is a pooled buffer for a redacted body (Input's request,
// Answer's whole answer) and scratch for its findings, so that screening
// a body allocates nothing.
//
// The redacted request is read after Input returns: it goes upstream
// (call.forward; internal/upclient writes it before RoundTrip returns,
// and again from Request.GetBody when a kept connection turns out stale,
// also before RoundTrip returns) and it is the prompt the audit record
// keeps (call.sent, sealed into a new string by call.record in
// call.done, before the record is appended, so an asynchronous audit
// write never sees the buffer). The redacted answer is written to the
// caller (call.relayWhole, a copy into the connection's buffer). So the
// buffer is released only when the call is done: ScreenCall.release, at
// the end of call.done.
type screenBuf struct {
	b  []byte
	fs []screen.Finding
}

var screenBufs = sync.Pool{New: func() any { return new(screenBuf) }}

// maxPooledBody is the largest buffer that goes back to the pool (a rare
// large body is left to the collector rather than kept).
const maxPooledBody = 256 << 10

// poisonReleased, set by tests, overwrites a buffer as it is released,
// so that a reader after its release sees poison instead of reading, by
// luck, the bytes that are still there.
var poisonReleased atomic.Bool

// hold keeps buf until the call ends when out (what AppendCheckJSON
// returned for body) is in it; else buf goes back to the pool at once.
// fs is the findings' scratch (its contents are noted already).
func (c *ScreenCall) hold(buf *screenBuf, out []byte, fs []screen.Finding, body []byte) {
	clear(fs) // drop the findings' strings with the scratch
	buf.fs = fs[:0]
	if sameSlice(out, body) {
		putScreenBuf(buf)
		return
	}
	buf.b = out
	for i := range c.held {
		if c.held[i] == nil {
			c.held[i] = buf
			return
		}
	}
	// More bodies than slots (a Screen calling Input twice): let the
	// collector have it rather than release it while it may be read.
}

// release returns the call's buffers to the pool. The guard calls it when
// nothing reads the bodies any more (see screenBuf).
func (c *ScreenCall) release() {
	for i, buf := range c.held {
		if buf != nil {
			putScreenBuf(buf)
			c.held[i] = nil
		}
	}
}

func putScreenBuf(buf *screenBuf) {
	if poisonReleased.Load() {
		for i := range buf.b {
			buf.b[i] = 'X'
		}
	}
	if cap(buf.b) > maxPooledBody || cap(buf.fs) > maxPooledBody/64 {
		return
	}
	buf.b = buf.b[:0]
	screenBufs.Put(buf)
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
