package scim

import (
	"fmt"
	"strings"

	scimlib "github.com/elimity-com/scim"
	"github.com/elimity-com/scim/errors"
	filter "github.com/scim2/filter-parser/v2"
)

// applyPatch applies PATCH operations (RFC 7644 §3.5.2) to m in order,
// in the shapes Entra ID and Okta send:
//
//	{"op":"replace","value":{"active":false}}              (no path: Okta)
//	{"op":"Replace","path":"active","value":"False"}       (Entra ID)
//	{"op":"add","path":"members","value":[{"value":"su_…"}]}
//	{"op":"remove","path":"members[value eq \"su_…\"]"}     (Okta)
//	{"op":"Remove","path":"members","value":[{"value":"su_…"}]} (Entra ID)
//	{"op":"Add","path":"emails[type eq \"work\"].value","value":"a@x"}
//
// A filter other than `attr eq value` is refused (400), not guessed at.
func applyPatch(m attrs, ops []scimlib.PatchOperation) error {
	for _, op := range ops {
		if err := applyOp(m, op); err != nil {
			return err
		}
	}
	return nil
}

func applyOp(m attrs, op scimlib.PatchOperation) error {
	kind := strings.ToLower(op.Op)
	if op.Path == nil {
		v, ok := op.Value.(map[string]any)
		if !ok {
			return badRequest("a PATCH operation without a path needs an object value")
		}
		for k, val := range v {
			set(m, k, val, kind == scimlib.PatchOperationAdd)
		}
		return nil
	}
	p := *op.Path
	parent := m
	if uri := p.AttributePath.URIPrefix; uri != nil {
		parent = child(m, *uri)
	}
	name := p.AttributePath.AttributeName
	if p.ValueExpression != nil {
		return applyFiltered(parent, name, p, kind, op.Value)
	}
	if sub := p.AttributePath.SubAttribute; sub != nil {
		parent, name = child(parent, name), *sub
	}
	switch {
	case kind == scimlib.PatchOperationRemove && op.Value != nil:
		k := key(parent, name)
		list, _ := parent[k].([]any)
		parent[k] = without(list, valuesOf(op.Value))
	case kind == scimlib.PatchOperationRemove:
		delete(parent, key(parent, name))
	default:
		set(parent, name, op.Value, kind == scimlib.PatchOperationAdd)
	}
	return nil
}

// set puts v at name in m; add to a multi-valued attribute appends the
// values not yet there (by their "value").
func set(m attrs, name string, v any, add bool) {
	k := key(m, name)
	list, isList := m[k].([]any)
	if !add || !isList {
		m[k] = v
		return
	}
	have := valuesOf(list)
	for _, e := range asList(v) {
		if val := str(asMap(e), "value"); val == "" || !have[val] {
			list = append(list, e)
		}
	}
	m[k] = list
}

// child is the object at name in m, made when absent.
func child(m attrs, name string) attrs {
	k := key(m, name)
	c, ok := m[k].(map[string]any)
	if !ok {
		c = attrs{}
		m[k] = c
	}
	return c
}

// applyFiltered applies an operation whose path selects elements of a
// multi-valued attribute: name[attr eq "v"] or name[attr eq "v"].sub.
func applyFiltered(m attrs, name string, p filter.Path, kind string, v any) error {
	e, ok := p.ValueExpression.(*filter.AttributeExpression)
	if !ok || e.Operator != filter.EQ {
		return badRequest(fmt.Sprintf("unsupported PATCH filter %q: only attr eq value", p.ValueExpression))
	}
	k := key(m, name)
	list, _ := m[k].([]any)
	field, want := e.AttributePath.AttributeName, fmt.Sprint(e.CompareValue)
	matches := func(el any) bool { return strings.EqualFold(fmt.Sprint(get(asMap(el), field)), want) }
	var out []any
	found := false
	for _, el := range list {
		if !matches(el) {
			out = append(out, el)
			continue
		}
		found = true
		if kind == scimlib.PatchOperationRemove && p.SubAttribute == nil {
			continue
		}
		out = append(out, changed(asMap(el), p.SubAttribute, kind, v))
	}
	if !found && kind != scimlib.PatchOperationRemove {
		out = append(out, changed(attrs{field: e.CompareValue}, p.SubAttribute, kind, v))
	}
	m[k] = out
	return nil
}

// changed is element el with the operation applied to its sub-attribute
// sub, or merged with the object v when sub is nil.
func changed(el attrs, sub *string, kind string, v any) attrs {
	switch {
	case sub != nil && kind == scimlib.PatchOperationRemove:
		delete(el, key(el, *sub))
	case sub != nil:
		el[key(el, *sub)] = v
	default:
		for k, val := range asMap(v) {
			el[key(el, k)] = val
		}
	}
	return el
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

// valuesOf is the set of "value"s of the elements of v.
func valuesOf(v any) map[string]bool {
	set := map[string]bool{}
	for _, e := range asList(v) {
		if val := str(asMap(e), "value"); val != "" {
			set[val] = true
		}
	}
	return set
}

func without(list []any, drop map[string]bool) []any {
	out := make([]any, 0, len(list))
	for _, e := range list {
		if !drop[str(asMap(e), "value")] {
			out = append(out, e)
		}
	}
	return out
}

func badRequest(msg string) error {
	e := errors.ScimErrorBadRequest(msg)
	return e
}
