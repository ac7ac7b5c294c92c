package policy

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/tailscale/hujson"
)

// Parse reads the HuJSON policy in src and validates it: its shape, every
// name it refers to and its group nesting. It does not run the policy's
// tests; Check does. file names the source in errors, which are an
// ErrorList of *Error located at FILE:LINE:COL.
func Parse(file string, src []byte) (*Policy, error) {
	d := &decoder{file: file, lines: newLineIndex(src)}
	if !d.checkSize(src) {
		return nil, d.errs
	}
	root, err := hujson.Parse(src)
	if err != nil {
		d.syntaxError(err)
		return nil, d.errs
	}
	p := &Policy{File: file, Groups: map[string][]string{}, TagOwners: map[string][]string{}}
	keys := d.document(&root, p)
	d.resolve(p, keys)
	d.checkBudgets(p)
	if err := d.errs.sorted(); err != nil {
		return nil, err
	}
	p.index()
	return p, nil
}

// Check parses src and runs the policy's tests: what a coordinator does
// before it accepts a policy. A policy whose tests fail is refused with one
// *Error per failed assertion.
func Check(file string, src []byte) (*Policy, error) {
	p, err := Parse(file, src)
	if err != nil {
		return nil, err
	}
	if err := p.RunTests(); err != nil {
		return nil, err
	}
	return p, nil
}

// syntaxError turns hujson's "hujson: line L, column C: msg" into an *Error.
func (d *decoder) syntaxError(err error) {
	e := &Error{File: d.file, Line: 1, Col: 1, Msg: err.Error()}
	var line, col int
	if n, _ := fmt.Sscanf(err.Error(), "hujson: line %d, column %d:", &line, &col); n == 2 {
		e.Line, e.Col = line, col
		_, e.Msg, _ = strings.Cut(err.Error(), ": ")
		_, e.Msg, _ = strings.Cut(e.Msg, ": ")
	}
	e.Msg = "syntax error: " + e.Msg + "; check for a missing comma, quote or bracket here or just before"
	d.errs = append(d.errs, e)
}

// definitions remembers where groups, tags and models are defined.
type definitions struct {
	groups map[string]int // name → offset of its key
	tags   map[string]int
}

// document decodes the top level.
func (d *decoder) document(root *hujson.Value, p *Policy) definitions {
	defs := definitions{groups: map[string]int{}, tags: map[string]int{}}
	d.fields(root, "the policy",
		field{"groups", func(v *hujson.Value) { d.groups(v, p, defs.groups) }},
		field{"tagOwners", func(v *hujson.Value) { d.tagOwners(v, p, defs.tags) }},
		field{"models", func(v *hujson.Value) { d.models(v, p) }},
		field{"grants", func(v *hujson.Value) { d.grants(v, p) }},
		field{"tests", func(v *hujson.Value) { d.tests(v, p) }},
		field{"mcp", func(v *hujson.Value) { d.mcpServers(v, p) }},
		field{"budgets", func(v *hujson.Value) { d.budgets(v, p) }},
	)
	return defs
}

func (d *decoder) groups(v *hujson.Value, p *Policy, defs map[string]int) {
	d.entries(v, `"groups"`, func(name string, key, val *hujson.Value) {
		if !d.prefixedName(name, "group:", key, "a group") {
			return
		}
		defs[name] = key.StartOffset
		p.Groups[name] = d.strs(val, name, func(s string, el *hujson.Value, what string) bool {
			return d.identity(s, el, what, false)
		})
	})
}

func (d *decoder) tagOwners(v *hujson.Value, p *Policy, defs map[string]int) {
	d.entries(v, `"tagOwners"`, func(name string, key, val *hujson.Value) {
		if !d.prefixedName(name, "tag:", key, "a tag") {
			return
		}
		defs[name] = key.StartOffset
		p.TagOwners[name] = d.strs(val, `"tagOwners".`+name, func(s string, el *hujson.Value, what string) bool {
			return d.identity(s, el, what, false)
		})
	})
}

// prefixedName checks a definition's name: prefix then letters, digits,
// '.', '_' or '-'.
func (d *decoder) prefixedName(name, prefix string, key *hujson.Value, what string) bool {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || !validName(rest) {
		d.errorf(key.StartOffset, "%q is not a valid name for %s; write %sNAME using letters, digits, '.', '_' or '-'", name, what, prefix)
		return false
	}
	return true
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (d *decoder) models(v *hujson.Value, p *Policy) {
	d.entries(v, `"models"`, func(name string, key, val *hujson.Value) {
		if !validModelName(name) {
			d.errorf(key.StartOffset, "%q is not a valid model name; use printable characters without spaces or '*'", name)
			return
		}
		m := Model{Name: name, Pos: d.lines.pos(key.StartOffset)}
		what := fmt.Sprintf("model %q", name)
		d.fields(val, what,
			field{"servedBy", func(v *hujson.Value) { m.ServedBy = d.tagList(v, what+".servedBy") }},
			field{"sha256", func(v *hujson.Value) { m.SHA256 = d.sha256(v, what+".sha256") }},
			field{"description", func(v *hujson.Value) { m.Description, _ = d.str(v, what+".description") }},
			field{"maxOutputTokens", func(v *hujson.Value) {
				n, _ := d.positive(v, what+".maxOutputTokens", MaxOutputTokensLimit)
				m.MaxOutputTokens = int(n)
			}},
			field{"maxChoices", func(v *hujson.Value) {
				n, _ := d.positive(v, what+".maxChoices", MaxChoicesLimit)
				m.MaxChoices = int(n)
			}},
			field{"encryptedAtRest", func(v *hujson.Value) { m.EncryptedAtRest = d.boolean(v, what+".encryptedAtRest") }},
		)
		if len(m.ServedBy) == 0 {
			d.errorf(key.StartOffset, `%s has no servedBy; list the tags whose nodes may serve it, e.g. "servedBy": ["tag:gpu"]`, what)
		}
		p.Models = append(p.Models, m)
	})
}

func validModelName(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c == '*' || c == 0x7f {
			return false
		}
	}
	return true
}

// tagList decodes a list of known tags.
func (d *decoder) tagList(v *hujson.Value, what string) []string {
	return d.strs(v, what, func(s string, el *hujson.Value, what string) bool {
		if !strings.HasPrefix(s, "tag:") || !validName(s[len("tag:"):]) {
			d.errorf(el.StartOffset, "%s: %q is not a tag; write tag:NAME", what, s)
			return false
		}
		d.refer(refTag, s, el, what)
		return true
	})
}

func (d *decoder) sha256(v *hujson.Value, what string) string {
	s, ok := d.str(v, what)
	if !ok {
		return ""
	}
	s = strings.ToLower(s)
	if b, err := hex.DecodeString(s); err != nil || len(b) != 32 {
		d.errorf(v.StartOffset, "%s must be 64 hexadecimal digits (a SHA-256 hash), not %q", what, s)
		return ""
	}
	return s
}

// identity checks one source or group member. Tags are accepted only where
// allowTags is set: a group holds people, never nodes.
func (d *decoder) identity(s string, el *hujson.Value, what string, allowTags bool) bool {
	msg := ""
	switch {
	case strings.HasPrefix(s, "group:"):
		d.refer(refGroup, s, el, what)
	case strings.HasPrefix(s, "tag:") && !allowTags:
		msg = "tags cannot be members here; name the tag in a grant's src instead"
	case strings.HasPrefix(s, "tag:"):
		if !validName(s[len("tag:"):]) {
			msg = "not a valid tag; write tag:NAME"
		}
		d.refer(refTag, s, el, what)
	case strings.HasPrefix(s, "idp:"):
		if len(s) == len("idp:") {
			msg = "empty IdP group; write idp:NAME with the group's name as the IdP sends it"
		}
	case strings.HasPrefix(s, "autogroup:"):
		if s != autogroupMember && s != autogroupAdmin {
			msg = "unknown autogroup; use autogroup:member or autogroup:admin"
		}
	case s == "*":
		msg = "not an identity; use autogroup:member for every signed-in person"
	case strings.Contains(s, "@"):
		if !validLogin(s) {
			msg = "not a valid login; write it as the IdP's email claim, e.g. alice@example.com"
		}
	default:
		msg = "not an identity; write a login (alice@example.com), group:NAME, idp:NAME, tag:NAME, autogroup:member or autogroup:admin"
	}
	if msg != "" {
		d.errorf(el.StartOffset, "%s: %q: %s", what, s, msg)
		return false
	}
	return true
}

func validLogin(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.ContainsAny(s, " \t\r\n") && !strings.Contains(domain, "@")
}
