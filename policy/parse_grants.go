package policy

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tailscale/hujson"
)

func (d *decoder) grants(v *hujson.Value, p *Policy) {
	d.array(v, `"grants"`, func(i int, el *hujson.Value) {
		g := Grant{Index: i, Pos: d.lines.pos(el.StartOffset)}
		d.grant(el, &g)
		p.Grants = append(p.Grants, g)
	})
}

// grant decodes one grant and checks that its keys make sense together.
func (d *decoder) grant(v *hujson.Value, g *Grant) {
	what := g.ID()
	var modelOnly []string // model settings present, for the check below
	present := map[string]bool{}
	has := func(name string, decode func(v *hujson.Value)) field {
		return field{name, func(v *hujson.Value) {
			present[name] = true
			if d.emptyList(v, what+"."+name) {
				return
			}
			decode(v)
		}}
	}
	setting := func(name string, decode func(v *hujson.Value)) field {
		return field{name, func(v *hujson.Value) { modelOnly = append(modelOnly, name); decode(v) }}
	}
	d.fields(v, what,
		has("src", func(v *hujson.Value) {
			g.Src = d.strs(v, what+".src", func(s string, el *hujson.Value, w string) bool { return d.identity(s, el, w, true) })
		}),
		has("models", func(v *hujson.Value) { g.Models = d.modelPatterns(v, what+".models") }),
		has("dst", func(v *hujson.Value) { g.Dst, g.dst = d.destinations(v, what+".dst") }),
		has("mcp", func(v *hujson.Value) { g.MCP, g.mcp = d.mcpPatterns(v, what+".mcp") }),
		setting("mfa", func(v *hujson.Value) { d.mfa(v, what+".mfa", g) }),
		setting("limits", func(v *hujson.Value) { g.Limits = d.limits(v, what+".limits") }),
		setting("guard", func(v *hujson.Value) { g.Guard = d.guard(v, what+".guard") }),
		setting("audit", func(v *hujson.Value) { g.Audit = d.audit(v, what+".audit") }),
	)
	if _, ok := v.Value.(*hujson.Object); !ok {
		return
	}
	// Keys present but holding only mistakes were reported already.
	switch {
	case !present["src"]:
		d.errorf(v.StartOffset, `%s has no src; say who it is for, e.g. "src": ["group:ml"]`, what)
	case !present["models"] && !present["dst"] && !present["mcp"]:
		d.errorf(v.StartOffset, `%s grants nothing; add "models", "mcp" and/or "dst"`, what)
	case !present["models"] && !present["mcp"] && len(modelOnly) > 0:
		d.errorf(v.StartOffset, `%s sets %s, which apply to model and MCP use only, but has no "models" or "mcp"; add one or move them to a grant that has`, what, quoteList(modelOnly))
	default:
		d.checkMCPGrant(v, g, present["models"])
	}
}

func (d *decoder) modelPatterns(v *hujson.Value, what string) []string {
	return d.strs(v, what, func(s string, el *hujson.Value, w string) bool {
		if !validModelName(strings.ReplaceAll(s, "*", "x")) {
			d.errorf(el.StartOffset, "%s: %q is not a model name or pattern; use a name from \"models\", a glob such as \"llama-*\", or \"*\"", w, s)
			return false
		}
		d.refer(refPattern, s, el, w)
		return true
	})
}

func (d *decoder) destinations(v *hujson.Value, what string) ([]string, []netDst) {
	var parsed []netDst
	texts := d.strs(v, what, func(s string, el *hujson.Value, w string) bool {
		nd, err := parseDst(s)
		if err != nil {
			d.errorf(el.StartOffset, "%s: %v", w, err)
			return false
		}
		if nd.tag != "" {
			d.refer(refTag, nd.tag, el, w)
		}
		parsed = append(parsed, nd)
		return true
	})
	return texts, parsed
}

// parseDst parses "*", "tag:NAME:*", "tag:NAME:PORT" or "tag:NAME:FIRST-LAST".
func parseDst(s string) (netDst, error) {
	if s == "*" {
		return netDst{ports: PortRange{1, math.MaxUint16}}, nil
	}
	tag, ports, ok := strings.Cut(strings.TrimPrefix(s, "tag:"), ":")
	if !strings.HasPrefix(s, "tag:") || !ok || !validName(tag) {
		return netDst{}, fmt.Errorf("%q is not a destination; write tag:NAME:PORT, tag:NAME:FIRST-LAST, tag:NAME:* or *", s)
	}
	r, err := parsePorts(ports)
	if err != nil {
		return netDst{}, fmt.Errorf("%q: %v", s, err)
	}
	return netDst{tag: "tag:" + tag, ports: r}, nil
}

// parsePorts parses "*", "PORT" or "FIRST-LAST".
func parsePorts(s string) (PortRange, error) {
	if s == "*" {
		return PortRange{1, math.MaxUint16}, nil
	}
	first, last, isRange := strings.Cut(s, "-")
	if !isRange {
		last = first
	}
	a, errA := strconv.ParseUint(first, 10, 16)
	b, errB := strconv.ParseUint(last, 10, 16)
	if errA != nil || errB != nil || a == 0 || a > b {
		return PortRange{}, fmt.Errorf("bad port %q; use a port from 1 to 65535, a range FIRST-LAST with FIRST ≤ LAST, or *", s)
	}
	return PortRange{uint16(a), uint16(b)}, nil
}

func (d *decoder) limits(v *hujson.Value, what string) Limits {
	var l Limits
	num := func(name string, max int64, set func(int64)) field {
		return field{name, func(v *hujson.Value) {
			if n, ok := d.positive(v, what+"."+name, max); ok {
				set(n)
			}
		}}
	}
	d.fields(v, what,
		num("rpm", math.MaxInt32, func(n int64) { l.RPM = int(n) }),
		num("tpm", math.MaxInt32, func(n int64) { l.TPM = int(n) }),
		num("concurrency", math.MaxInt32, func(n int64) { l.Concurrency = int(n) }),
		num("tokensPerDay", 1<<53, func(n int64) { l.TokensPerDay = n }),
		num("maxTokens", math.MaxInt32, func(n int64) { l.MaxTokens = int(n) }),
	)
	return l
}

func (d *decoder) guard(v *hujson.Value, what string) Guard {
	var g Guard
	d.fields(v, what,
		field{"injection", func(v *hujson.Value) { g.Injection, _ = d.enum(v, what+".injection", "off", "flag", "block") }},
		field{"redact", func(v *hujson.Value) { g.Redact = d.redact(v, what+".redact") }},
		field{"links", func(v *hujson.Value) { g.Links, _ = d.enum(v, what+".links", "allow", "block-external") }},
		field{"prompts", func(v *hujson.Value) { g.Prompts = d.actions(v, what+".prompts") }},
		field{"answers", func(v *hujson.Value) { g.Answers = d.actions(v, what+".answers") }},
		field{"linkAllow", func(v *hujson.Value) { g.LinkAllow = d.linkAllow(v, what+".linkAllow") }},
		field{"detectors", func(v *hujson.Value) { g.Detectors = d.detectors(v, what+".detectors") }},
	)
	return g
}

func (d *decoder) redact(v *hujson.Value, what string) []string {
	var seen []string
	return d.strs(v, what, func(s string, el *hujson.Value, w string) bool {
		if _, ok := d.enum(el, w, "secrets", "pii"); !ok {
			return false
		}
		if slices.Contains(seen, s) {
			d.errorf(el.StartOffset, "%s: %q is listed twice; keep one", w, s)
			return false
		}
		seen = append(seen, s)
		return true
	})
}

func (d *decoder) audit(v *hujson.Value, what string) Audit {
	var a Audit
	d.fields(v, what,
		field{"prompts", func(v *hujson.Value) { a.Prompts, _ = d.enum(v, what+".prompts", "off", "hash", "full") }},
		field{"retention", func(v *hujson.Value) { a.Retention, _ = d.duration(v, what+".retention") }},
	)
	return a
}
