package policy

import (
	"fmt"
	"strings"

	"github.com/tailscale/hujson"
)

// Bounds on a policy, so that checking one costs a bounded amount of
// work whoever submits it. Each is far above what an organisation writes.
const (
	// MaxSize is the largest policy accepted, in bytes.
	MaxSize = 512 << 10
	// MaxGroupDepth is how deeply groups may nest: a group holding a
	// group holding a group is depth 3.
	MaxGroupDepth = 8
	// MaxTests is how many "tests" a policy may hold.
	MaxTests = 1000
	// MaxOutputTokensLimit bounds a model's maxOutputTokens: 1Mi tokens,
	// above any model's context.
	MaxOutputTokensLimit = 1 << 20
	// MaxChoicesLimit bounds a model's maxChoices: OpenAI's own limit on n
	// is 128.
	MaxChoicesLimit = 128
)

// checkSize refuses a policy larger than MaxSize before it is parsed.
func (d *decoder) checkSize(src []byte) bool {
	if len(src) <= MaxSize {
		return true
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: 1, Col: 1,
		Msg: fmt.Sprintf("the policy is %d bytes; the most accepted is %d: split long lists into groups", len(src), MaxSize)})
	return false
}

// checkTestCount refuses more than MaxTests tests.
func (d *decoder) checkTestCount(v *hujson.Value) bool {
	if arr, ok := v.Value.(*hujson.Array); ok && len(arr.Elements) > MaxTests {
		d.errorf(v.StartOffset, `"tests" holds %d tests; the most accepted is %d`, len(arr.Elements), MaxTests)
		return false
	}
	return true
}

// checkDepth refuses groups nested deeper than MaxGroupDepth. The groups
// are known to be free of cycles. Each group's height is computed once,
// and a descent stops as soon as it is too deep, so this is linear in the
// size of the groups and never recurses deeper than MaxGroupDepth.
func (d *decoder) checkDepth(p *Policy, defs definitions) {
	height := make(map[string]int, len(p.Groups))
	var path, chain []string       // chain: the first path found too deep
	var measure func(g string) int // g's height, or MaxGroupDepth+1 when too deep
	measure = func(g string) int {
		if h, ok := height[g]; ok {
			return h
		}
		path = append(path, g)
		defer func() { path = path[:len(path)-1] }()
		if len(path) > MaxGroupDepth {
			chain = append(chain[:0], path...)
			return MaxGroupDepth + 1
		}
		h := 1
		for _, m := range p.Groups[g] {
			if _, isGroup := p.Groups[m]; isGroup {
				if h = max(h, 1+measure(m)); h > MaxGroupDepth {
					return h
				}
			}
		}
		height[g] = h
		return h
	}
	for _, g := range sortedKeys(p.Groups) {
		if measure(g) > MaxGroupDepth {
			d.errorf(defs.groups[g], "groups nest more than %d deep: %s → …; flatten them",
				MaxGroupDepth, strings.Join(chain, " → "))
			return
		}
	}
}
