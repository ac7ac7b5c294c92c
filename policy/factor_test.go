package policy

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseMFAObject(t *testing.T) {
	for _, tt := range []struct {
		name, mfa string
		want      Duration
		factor    Factor
	}{
		{"duration", `"12h"`, Duration(12 * time.Hour), FactorAny},
		{"within only", `{"within": "1h"}`, Duration(time.Hour), FactorAny},
		{"phishing-resistant", `{"within": "12h", "phishingResistant": true}`, Duration(12 * time.Hour), FactorPhishingResistant},
		{"device-bound", `{"deviceBound": true}`, 0, FactorDeviceBound},
		{"both", `{"phishingResistant": true, "deviceBound": true}`, 0, FactorDeviceBound},
		{"false", `{"within": "2h", "phishingResistant": false}`, Duration(2 * time.Hour), FactorAny},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("p.hujson", []byte(`{`+defs+`"grants": [{"src": ["group:ml"], "models": ["llama"], "mfa": `+tt.mfa+`}]}`))
			if err != nil {
				t.Fatal(err)
			}
			if g := p.Grants[0]; g.MFA != tt.want || g.MFAFactor != tt.factor {
				t.Fatalf("mfa %s parsed as %v/%q, want %v/%q", tt.mfa, g.MFA, g.MFAFactor, tt.want, tt.factor)
			}
		})
	}
}

func TestParseMFAObjectRefusals(t *testing.T) {
	for _, tt := range []struct{ name, mfa, want string }{
		{"empty", `{}`, `grants[0].mfa is empty; write "mfa": "12h", or an object`},
		{"unknown key", `{"within": "1h", "phishingresistant": true}`, `unknown key "phishingresistant" in grants[0].mfa; did you mean "phishingResistant"?`},
		{"bad within", `{"within": "soon"}`, `grants[0].mfa.within: invalid duration "soon"`},
		{"zero within", `{"within": "0s", "phishingResistant": true}`, `grants[0].mfa.within: zero duration`},
		{"string bool", `{"phishingResistant": "yes"}`, `grants[0].mfa.phishingResistant must be true or false, not a string`},
		{"list", `["12h"]`, `grants[0].mfa must be a string, not a list`},
		{"network only", `{"within": "1h"}`, `sets "mfa", which apply to model and MCP use only`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := `{"src": ["group:ml"], "models": ["llama"], "mfa": ` + tt.mfa + `}`
			if tt.name == "network only" {
				g = `{"src": ["group:ml"], "dst": ["tag:gpu:22"], "mfa": ` + tt.mfa + `}`
			}
			_, err := Parse("p.hujson", []byte(`{`+defs+`"grants": [`+g+`]}`))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("mfa %s: got %v, want an error containing %q", tt.mfa, err, tt.want)
			}
		})
	}
}

// factorPolicy: the ML group may use llama under a generous grant when
// signed in with a passkey within 12h, else under a tight one with any
// factor; "secret" needs a device-bound key.
const factorPolicy = `{
  "groups": { "group:ml": ["alice@example.com"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] }, "secret": { "servedBy": ["tag:gpu"] } },
  "grants": [
    { "src": ["group:ml"], "models": ["llama"], "mfa": {"within": "12h", "phishingResistant": true} },
    { "src": ["group:ml"], "models": ["llama"], "mfa": "12h", "limits": { "rpm": 10 } },
    { "src": ["group:ml"], "models": ["secret"], "mfa": {"within": "1h", "deviceBound": true} },
  ],
}`

func factorTable(t *testing.T) (*Policy, *GuardTable) {
	t.Helper()
	p, err := Check("p.hujson", []byte(factorPolicy))
	if err != nil {
		t.Fatal(err)
	}
	members := []Member{
		{ID: "laptop", Identity: Identity{Login: "alice@example.com"}, Addresses: []netip.Addr{netip.MustParseAddr("100.64.0.1")}},
		{ID: "gpu", Identity: Identity{Tags: []string{"tag:gpu"}}, Models: []string{"llama", "secret"}},
	}
	c, err := p.Compile(members)
	if err != nil {
		t.Fatal(err)
	}
	table, err := c.Member("gpu").GuardTable()
	if err != nil {
		t.Fatal(err)
	}
	return p, table
}

func TestDecideByFactor(t *testing.T) {
	_, table := factorTable(t)
	for _, tt := range []struct {
		model, method string
		age           time.Duration
		grant         string
		verdict       Verdict
	}{
		{"llama", "hwk", time.Hour, "grants[0]", Allow},
		{"llama", "swk", time.Hour, "grants[0]", Allow},
		{"llama", "otp", time.Hour, "grants[1]", Allow}, // a TOTP person gets the tight grant
		{"llama", "mfa", time.Hour, "grants[1]", Allow},
		{"llama", "", time.Hour, "grants[1]", Allow},
		{"llama", "hwk", 13 * time.Hour, "grants[1]", DenyMFA},
		{"secret", "hwk", time.Minute, "grants[2]", Allow},
		{"secret", "swk", time.Minute, "grants[2]", DenyMFA}, // a synced passkey is not device-bound
		{"secret", "otp", time.Minute, "grants[2]", DenyMFA},
		{"secret", "hwk", -1, "grants[2]", DenyMFA},
	} {
		g, v := table.Decide("laptop", tt.model, tt.age, tt.method)
		if v != tt.verdict || g == nil || g.ID != tt.grant {
			t.Errorf("%s by %q %v ago: %v under %v, want %v under %s", tt.model, tt.method, tt.age, v, g, tt.verdict, tt.grant)
		}
	}
}

func TestChainKeepsWeakerFactor(t *testing.T) {
	for _, tt := range []struct {
		a, b Grant
		drop bool
	}{
		{Grant{MFA: 10}, Grant{MFA: 5}, true},
		{Grant{MFA: 10, MFAFactor: FactorPhishingResistant}, Grant{MFA: 10}, false},
		{Grant{MFA: 10}, Grant{MFA: 10, MFAFactor: FactorPhishingResistant}, true},
		{Grant{MFAFactor: FactorDeviceBound}, Grant{MFAFactor: FactorPhishingResistant}, false},
		{Grant{MFAFactor: FactorPhishingResistant}, Grant{MFA: 5, MFAFactor: FactorDeviceBound}, true},
		{Grant{}, Grant{MFAFactor: FactorDeviceBound}, true},
	} {
		if got := implies(&tt.b, &tt.a); got != tt.drop {
			t.Errorf("after %+v, %+v dropped = %v, want %v", tt.a, tt.b, got, tt.drop)
		}
	}
}

func TestExplainFactor(t *testing.T) {
	p, _ := factorTable(t)
	e, err := p.Explain(Identity{Login: "alice@example.com", MFAMethod: "otp"}, "model:secret")
	if err != nil {
		t.Fatal(err)
	}
	out := e.String()
	for _, want := range []string{
		"DENIED: alice@example.com is denied model:secret",
		`grants[2] (p.hujson:8:5) demands a device-bound security key, and alice@example.com's last MFA was by "otp"`,
		"mfa within 1h by a device-bound security key",
	} {
		if e.Allowed || !strings.Contains(out, want) {
			t.Errorf("explain for a TOTP sign-in lacks %q:\n%s", want, out)
		}
	}
	e, _ = p.Explain(Identity{Login: "alice@example.com", MFAMethod: "otp"}, "model:llama")
	if !e.Allowed || e.Grant.ID() != "grants[1]" {
		t.Errorf("llama for a TOTP sign-in: allowed %v by %v, want grants[1]:\n%s", e.Allowed, e.Grant, e)
	}
	e, _ = p.Explain(Identity{Login: "alice@example.com"}, "model:llama")
	out = e.String()
	for _, want := range []string{
		"by grants[0] (p.hujson:6:5): mfa within 12h by a passkey or security key",
		"when the last MFA is older than 12h or not by a passkey or security key, by grants[1]",
		"when the last MFA is older than 12h: denied until the caller signs in with MFA again",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	e, _ = p.Explain(Identity{Login: "alice@example.com", MFAMethod: "hwk"}, "model:secret")
	if !e.Allowed || !strings.Contains(e.String(), "denied until the caller signs in with a device-bound security key again") {
		t.Errorf("secret with a security key:\n%s", e)
	}
}
