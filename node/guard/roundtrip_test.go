package guard_test

import (
	"reflect"
	"testing"

	"github.com/moatmesh/moat/mesh/wirepolicy"
	"github.com/moatmesh/moat/node/guard"
	"github.com/moatmesh/moat/policy"
)

// TestGrantRuleRoundTrip: a grant with every field set comes back whole
// from the conversion to the wire (mesh/wirepolicy: the coordinator's
// and a tailnet node's) and the node's conversion back, so that a field added to policy.GrantRule (or one a merge drops
// from a converter, as MFAFactor once was) fails here rather than being
// silently unenforced on the node.
func TestGrantRuleRoundTrip(t *testing.T) {
	var g policy.GrantRule
	fillAll(t, reflect.ValueOf(&g).Elem(), "GrantRule")
	if got := guard.PolicyGrant(wirepolicy.Grant(g)); !reflect.DeepEqual(got, g) {
		t.Errorf("grant changed on its way to the node:\n sent %+v\n  got %+v", g, got)
	}
}

// fillAll sets every exported field of v, recursively, to a value that is
// not zero.
func fillAll(t *testing.T, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x-" + path)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(len(path)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fillAll(t, s.Index(0), path+"[0]")
		v.Set(s)
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				fillAll(t, v.Field(i), path+"."+f.Name)
			}
		}
	default:
		t.Fatalf("%s: fillAll does not know %s; teach it", path, v.Kind())
	}
}
