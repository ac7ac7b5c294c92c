package scim

import (
	"encoding/json"
	"strings"
	"testing"

	scimlib "github.com/elimity-com/scim"
	"github.com/elimity-com/scim/filter"
	"github.com/elimity-com/scim/schema"
)

// The PATCH shapes Entra ID and Okta send, applied to a stored user or
// group.
func TestApplyPatch(t *testing.T) {
	user := `{"userName":"a@x","active":true,"emails":[{"type":"work","value":"a@x","primary":true}],"name":{"givenName":"A"}}`
	group := `{"displayName":"ml","members":[{"value":"u1"},{"value":"u2"}]}`
	for _, c := range []struct {
		name, start, op, path, value, want string
	}{
		{"Okta deactivate (no path)", user, "replace", "", `{"active":false}`, `"active":false`},
		{"Entra deactivate (string)", user, "Replace", "active", `"False"`, `"active":"False"`},
		{"Entra sub-attribute", user, "Add", "name.familyName", `"B"`, `"familyName":"B"`},
		{"Entra filtered email", user, "Replace", `emails[type eq "work"].value`, `"b@x"`, `"value":"b@x"`},
		{"new filtered element", user, "Add", `emails[type eq "home"].value`, `"h@x"`, `{"type":"home","value":"h@x"}`},
		{"Entra enterprise extension", user, "Add", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", `"R"`, `"department":"R"`},
		{"add members", group, "add", "members", `[{"value":"u3"},{"value":"u1"}]`, `"members":[{"value":"u1"},{"value":"u2"},{"value":"u3"}]`},
		{"Okta remove member", group, "remove", `members[value eq "u1"]`, ``, `"members":[{"value":"u2"}]`},
		{"Entra remove members", group, "Remove", "members", `[{"value":"u2"}]`, `"members":[{"value":"u1"}]`},
		{"replace displayName", group, "replace", "", `{"displayName":"ml2"}`, `"displayName":"ml2"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := decode([]byte(c.start))
			if err := applyPatch(m, []scimlib.PatchOperation{patchOp(t, c.op, c.path, c.value)}); err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(m)
			if !strings.Contains(string(b), c.want) {
				t.Fatalf("after %s %s: %s, want it to contain %s", c.op, c.path, b, c.want)
			}
		})
	}
}

func TestApplyPatchRefusesOtherFilters(t *testing.T) {
	m := decode([]byte(`{"members":[{"value":"u1"}]}`))
	err := applyPatch(m, []scimlib.PatchOperation{patchOp(t, "remove", `members[value ne "u1"]`, "")})
	if err == nil {
		t.Fatal("a ne filter was applied; want it refused")
	}
}

func patchOp(t *testing.T, op, path, value string) scimlib.PatchOperation {
	t.Helper()
	p := scimlib.PatchOperation{Op: op}
	if path != "" {
		pv, err := filter.NewPathValidator(path, schema.CoreUserSchema(), schema.ExtensionEnterpriseUser())
		if err != nil {
			pv, err = filter.NewPathValidator(path, schema.CoreGroupSchema())
		}
		if err != nil {
			t.Fatal(err)
		}
		fp := pv.Path()
		p.Path = &fp
	}
	if value != "" {
		if err := json.Unmarshal([]byte(value), &p.Value); err != nil {
			t.Fatal(err)
		}
	}
	return p
}
