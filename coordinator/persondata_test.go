package coordinator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/moatmesh/moat/mesh/auditchain"
	"github.com/moatmesh/moat/mesh/promptkey"
	"github.com/moatmesh/moat/mesh/wire"
)

func TestPersonDataSQLite(t *testing.T) { testPersonData(t, func(*Config) {}) }

func TestPersonDataPostgres(t *testing.T) {
	u := pgDatabase(t)
	testPersonData(t, func(c *Config) { c.Database = u })
}

// aliceKey waits for a node netmap in which alice's device carries a
// prompt key (or none, when want is false) and returns it.
func aliceKey(t *testing.T, w *watcher, want bool) (userID string, key []byte) {
	t.Helper()
	w.next(t, fmt.Sprintf("alice's peer with a prompt key: %t", want), func(nm *wire.NetMap) bool {
		for _, p := range nm.Peers {
			if p.Identity.Login == "alice@example.com" && (len(p.Identity.PromptKey) == 32) == want {
				userID, key = p.Identity.UserID, p.Identity.PromptKey
				return true
			}
		}
		return false
	})
	return userID, key
}

// testPersonData: a person who signs in gets a prompt key that nodes see
// in their netmap; a prompt a node seals to it is read back in the
// person's export (admin API), an old prompt kept in clear too; erasing
// the person (with a reason, in the trail) takes the key out of the
// netmaps and makes the sealed prompt unreadable, while the node's chain
// still verifies.
func testPersonData(t *testing.T, mod func(*Config)) {
	tc := startCoord(t, t.TempDir(), newClock(), mod)
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, testPolicy)
	node, res := tc.enrollNode(t, tok, "llama")
	nodeWatch := node.watch(t)
	alice := tc.addPerson(t, "alice@example.com", false)
	tc.signIn(t, alice, "laptop")
	user, pub := aliceKey(t, nodeWatch, true)

	// What a node keeps: one prompt sealed to alice, one from a node of
	// before (in clear), chained.
	sealed, err := promptkey.Seal(pub, user, []byte(`{"messages":"plans for the merger"}`))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	prev := ""
	for i, extra := range []string{`"prompt":{"messages":"old clear prompt"}`, `"promptSealed":` + jsonString(sealed)} {
		body := fmt.Sprintf(`{"id":"p%d","seq":%d,"time":"2026-12-01T10:00:0%dZ","userId":%q,"login":"alice@example.com","decision":"allow",%s,"prev":%q}`,
			i+1, i+1, i, user, extra, prev)
		var line bytes.Buffer
		prev = auditchain.Seal(&line, []byte(body))
		lines = append(lines, line.String())
	}
	if status, body := shipAudit(t, tc.URL, string(res.Credential), "["+strings.Join(lines, ",")+"]"); status != 200 {
		t.Fatalf("ship: %d %s", status, body)
	}

	exp := exportOf(t, tc, tok, "alice@example.com")
	if exp.Person.ID != user || len(exp.Records) != 2 || !exp.Person.Erased.IsZero() {
		t.Fatalf("export: %+v", exp)
	}
	if got := string(exp.Records[0].Prompt); got != `{"messages":"plans for the merger"}` {
		t.Fatalf("sealed prompt in the export: %q", got)
	}
	if got := string(exp.Records[1].Prompt); got != `{"messages":"old clear prompt"}` {
		t.Fatalf("clear prompt in the export: %q", got)
	}

	if status, _ := tc.admin(t, tok, "POST", "/users/"+user+"/erase", `{"reason":""}`); status != http.StatusBadRequest {
		t.Fatalf("erase without a reason: %d, want 400", status)
	}
	if status, _ := tc.admin(t, tok, "POST", "/users/u_nobody/erase", `{"reason":"x"}`); status != http.StatusNotFound {
		t.Fatalf("erase of nobody: %d, want 404", status)
	}
	if status, body := tc.admin(t, tok, "POST", "/users/"+user+"/erase", `{"reason":"GDPR Art. 17 request #7"}`); status != http.StatusNoContent {
		t.Fatalf("erase: %d %s", status, body)
	}
	aliceKey(t, nodeWatch, false)
	exp = exportOf(t, tc, tok, user)
	if exp.Person.Erased.IsZero() || exp.Records[0].Prompt != nil || !exp.Records[0].PromptErased {
		t.Fatalf("export after erasure: %+v", exp.Records[0])
	}
	trail, _ := tc.store.AdminActions(t.Context(), 20)
	if !hasAction(trail, ActionUserErase, "why: GDPR Art. 17 request #7") || !hasAction(trail, actionUserExport, "alice@example.com") {
		t.Fatalf("trail lacks the erasure or the export: %+v", trail)
	}
	if st := chainOfNode(t, tc, string(res.DeviceID)); len(st.Problems) != 0 || st.Records != 2 {
		t.Fatalf("chain after erasure: %+v", st)
	}
	// No new key is made for an erased person, at sign-in or start.
	tc.signIn(t, alice, "phone")
	if err := tc.ensurePromptKeys(t.Context()); err != nil {
		t.Fatal(err)
	}
	if k, err := tc.store.PersonKey(t.Context(), user); err != nil || len(k.Public) != 0 || len(k.Private) != 0 {
		t.Fatalf("erased key after a sign-in: %+v %v", k, err)
	}
}

func exportOf(t *testing.T, tc *testCoord, tok, who string) PersonExport {
	t.Helper()
	status, body := tc.admin(t, tok, "GET", "/users/"+who+"/export", "")
	var exp PersonExport
	if status != http.StatusOK || json.Unmarshal([]byte(body), &exp) != nil {
		t.Fatalf("export %s: %d %s", who, status, body)
	}
	return exp
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
