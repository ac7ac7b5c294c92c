package policy

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/tailscale/hujson"
)

// decoder walks a hujson syntax tree, collecting every problem it meets with
// its position, and the references to check once the whole file is read.
type decoder struct {
	file  string
	lines lineIndex
	errs  ErrorList
	refs  []ref
}

// refKind says what a name must refer to.
type refKind uint8

const (
	refGroup   refKind = iota // a key of "groups"
	refTag                    // a key of "tagOwners"
	refModel                  // a declared model name
	refPattern                // a model name or glob matching at least one model
)

// ref is a name that must be defined somewhere else in the file.
type ref struct {
	kind refKind
	name string
	off  int
	what string // e.g. `grants[2].src[0]`
}

func (d *decoder) errorf(off int, format string, args ...any) {
	p := d.lines.pos(off)
	d.errs = append(d.errs, &Error{File: d.file, Line: p.Line, Col: p.Col, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) refer(kind refKind, name string, v *hujson.Value, what string) {
	d.refs = append(d.refs, ref{kind: kind, name: name, off: v.StartOffset, what: what})
}

// field is a key an object may hold and how to decode its value.
type field struct {
	name   string
	decode func(v *hujson.Value)
}

// fields decodes object v whose keys must be among fs. Unknown and duplicate
// keys are errors.
func (d *decoder) fields(v *hujson.Value, what string, fs ...field) {
	d.entries(v, what, func(name string, key, val *hujson.Value) {
		i := slices.IndexFunc(fs, func(f field) bool { return f.name == name })
		if i < 0 {
			d.errorf(key.StartOffset, "unknown key %q in %s; %s", name, what, suggestKey(name, fs))
			return
		}
		fs[i].decode(val)
	})
}

// suggestKey tells the author which keys are allowed, pointing out a likely
// misspelling first.
func suggestKey(name string, fs []field) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
		if strings.EqualFold(f.name, name) || strings.EqualFold(strings.ReplaceAll(f.name, "_", ""), strings.ReplaceAll(name, "_", "")) {
			return fmt.Sprintf("did you mean %q?", f.name)
		}
	}
	return "allowed keys are " + quoteList(names)
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// entries calls fn for each member of object v, refusing duplicate keys.
func (d *decoder) entries(v *hujson.Value, what string, fn func(name string, key, val *hujson.Value)) {
	obj, ok := v.Value.(*hujson.Object)
	if !ok {
		d.errorf(v.StartOffset, "%s must be an object {…}, not %s", what, kindName(v))
		return
	}
	seen := make(map[string]int, len(obj.Members))
	for i := range obj.Members {
		m := &obj.Members[i]
		name := m.Name.Value.(hujson.Literal).String()
		if first, dup := seen[name]; dup {
			p := d.lines.pos(first)
			d.errorf(m.Name.StartOffset, "duplicate key %q in %s (first at line %d); keep one", name, what, p.Line)
			continue
		}
		seen[name] = m.Name.StartOffset
		fn(name, &m.Name, &m.Value)
	}
}

// array calls fn for each element of array v.
func (d *decoder) array(v *hujson.Value, what string, fn func(i int, el *hujson.Value)) {
	arr, ok := v.Value.(*hujson.Array)
	if !ok {
		d.errorf(v.StartOffset, "%s must be a list […], not %s", what, kindName(v))
		return
	}
	for i := range arr.Elements {
		fn(i, &arr.Elements[i])
	}
}

// emptyList reports (as an error) whether v is a list with no elements,
// which grants nothing and is almost certainly a slip.
func (d *decoder) emptyList(v *hujson.Value, what string) bool {
	if arr, ok := v.Value.(*hujson.Array); ok && len(arr.Elements) == 0 {
		d.errorf(v.StartOffset, "%s is empty; list at least one entry or remove the key", what)
		return true
	}
	return false
}

// str returns string v, or reports that it is not one.
func (d *decoder) str(v *hujson.Value, what string) (string, bool) {
	lit, ok := v.Value.(hujson.Literal)
	if !ok || lit.Kind() != '"' {
		d.errorf(v.StartOffset, "%s must be a string, not %s", what, kindName(v))
		return "", false
	}
	return lit.String(), true
}

// strs decodes a list of strings, calling check on each that is one.
func (d *decoder) strs(v *hujson.Value, what string, check func(s string, el *hujson.Value, what string) bool) []string {
	var out []string
	d.array(v, what, func(i int, el *hujson.Value) {
		w := fmt.Sprintf("%s[%d]", what, i)
		if s, ok := d.str(el, w); ok && check(s, el, w) {
			out = append(out, s)
		}
	})
	return out
}

// positive decodes a whole number ≥ 1 no larger than max.
func (d *decoder) positive(v *hujson.Value, what string, max int64) (int64, bool) {
	lit, ok := v.Value.(hujson.Literal)
	if !ok || lit.Kind() != '0' {
		d.errorf(v.StartOffset, "%s must be a number, not %s", what, kindName(v))
		return 0, false
	}
	f := lit.Float()
	if f != math.Trunc(f) || f < 1 || f > float64(max) {
		d.errorf(v.StartOffset, "%s must be a whole number from 1 to %d, not %s; leave it out for no limit", what, max, lit)
		return 0, false
	}
	return int64(f), true
}

// duration decodes a string such as "12h" or "7d".
func (d *decoder) duration(v *hujson.Value, what string) (Duration, bool) {
	s, ok := d.str(v, what)
	if !ok {
		return 0, false
	}
	dur, err := ParseDuration(s)
	if err == nil && dur == 0 {
		err = fmt.Errorf("zero duration %q: leave the key out instead", s)
	}
	if err != nil {
		d.errorf(v.StartOffset, "%s: %v", what, err)
		return 0, false
	}
	return dur, true
}

// enum decodes a string that must be one of allowed.
func (d *decoder) enum(v *hujson.Value, what string, allowed ...string) (string, bool) {
	s, ok := d.str(v, what)
	if !ok {
		return "", false
	}
	if !slices.Contains(allowed, s) {
		d.errorf(v.StartOffset, "%s: unknown value %q; use one of %s", what, s, quoteList(allowed))
		return "", false
	}
	return s, true
}

// boolean decodes true or false.
func (d *decoder) boolean(v *hujson.Value, what string) bool {
	lit, ok := v.Value.(hujson.Literal)
	if !ok || (lit.Kind() != 't' && lit.Kind() != 'f') {
		d.errorf(v.StartOffset, "%s must be true or false, not %s", what, kindName(v))
		return false
	}
	return lit.Bool()
}

// kindName names the kind of v for error messages.
func kindName(v *hujson.Value) string {
	switch v.Value.Kind() {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	}
	return "null"
}
