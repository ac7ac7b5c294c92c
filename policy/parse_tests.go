package policy

import (
	"fmt"
	"strings"

	"github.com/tailscale/hujson"
)

func (d *decoder) tests(v *hujson.Value, p *Policy) {
	if !d.checkTestCount(v) {
		return
	}
	d.array(v, `"tests"`, func(i int, el *hujson.Value) {
		t := Test{Pos: d.lines.pos(el.StartOffset)}
		if d.test(el, &t, fmt.Sprintf("tests[%d]", i)) {
			p.Tests = append(p.Tests, t)
		}
	})
}

// test decodes one test: who ("src", and for people "groups" and "admin")
// and what they must ("accept") or must not ("deny") reach.
func (d *decoder) test(v *hujson.Value, t *Test, what string) bool {
	var src *hujson.Value
	var personOnly []string
	d.fields(v, what,
		field{"src", func(v *hujson.Value) { src = v }},
		field{"groups", func(v *hujson.Value) {
			personOnly = append(personOnly, "groups")
			t.Who.Groups = d.idpGroups(v, what+".groups")
		}},
		field{"admin", func(v *hujson.Value) {
			personOnly = append(personOnly, "admin")
			t.Who.Admin = d.boolean(v, what+".admin")
		}},
		field{"accept", func(v *hujson.Value) { t.Accept = d.targets(v, what+".accept") }},
		field{"deny", func(v *hujson.Value) { t.Deny = d.targets(v, what+".deny") }},
	)
	if _, ok := v.Value.(*hujson.Object); !ok {
		return false
	}
	if src == nil {
		d.errorf(v.StartOffset, `%s has no src; say whom it tests, e.g. "src": "alice@example.com"`, what)
		return false
	}
	if !d.testSource(src, &t.Who, what+".src", personOnly) {
		return false
	}
	if len(t.Accept) == 0 && len(t.Deny) == 0 {
		d.errorf(v.StartOffset, `%s asserts nothing; add "accept" and/or "deny"`, what)
	}
	return true
}

// testSource decodes a test's src: one login or one tag.
func (d *decoder) testSource(v *hujson.Value, who *Identity, what string, personOnly []string) bool {
	s, ok := d.str(v, what)
	if !ok {
		return false
	}
	switch {
	case strings.HasPrefix(s, "tag:") && validName(s[len("tag:"):]):
		if len(personOnly) > 0 {
			d.errorf(v.StartOffset, "%s is a tag, which has no %s; remove them or test a person", what, quoteList(personOnly))
			return false
		}
		d.refer(refTag, s, v, what)
		who.Tags = []string{s}
	case validLogin(s):
		who.Login = s
	default:
		d.errorf(v.StartOffset, "%s: %q is not a person's login or a tag; groups are tested through a member, e.g. \"src\": \"alice@example.com\", \"groups\": [\"idp:ml-research\"]", what, s)
		return false
	}
	return true
}

// idpGroups decodes the IdP groups a tested person is assumed to hold.
func (d *decoder) idpGroups(v *hujson.Value, what string) []string {
	var names []string
	d.strs(v, what, func(s string, el *hujson.Value, w string) bool {
		name, ok := strings.CutPrefix(s, "idp:")
		if !ok || name == "" {
			d.errorf(el.StartOffset, "%s: %q is not an IdP group; write idp:NAME (policy groups follow from the login and are not listed here)", w, s)
			return false
		}
		names = append(names, name)
		return true
	})
	return names
}

// targets decodes "model:NAME", "mcp:SERVER:TOOL" and "tag:NAME:PORT"
// assertions.
func (d *decoder) targets(v *hujson.Value, what string) []Target {
	var out []Target
	d.strs(v, what, func(s string, el *hujson.Value, w string) bool {
		if handled, ok := d.mcpTestTarget(s, el, w); handled {
			if !ok {
				return false
			}
		} else if name, ok := strings.CutPrefix(s, "model:"); ok {
			d.refer(refModel, name, el, w)
		} else if nd, err := parseDst(s); err != nil || nd.tag == "" || nd.ports.First != nd.ports.Last {
			d.errorf(el.StartOffset, "%s: %q is not a test target; write model:NAME, mcp:SERVER:TOOL or tag:NAME:PORT", w, s)
			return false
		} else {
			d.refer(refTag, nd.tag, el, w)
		}
		out = append(out, Target{Text: s, Pos: d.lines.pos(el.StartOffset)})
		return true
	})
	return out
}
