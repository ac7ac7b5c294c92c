package wire

import (
	"errors"
	"net/netip"
	"time"
)

// The rules a node enforces, as the coordinator sends them. They are the
// wire's own types (the coordinator fills them from the compiled policy,
// the guard reads them back), so that the protocol does not change when
// the policy package does. Their JSON is the protocol; see Version.

// NodeRules is everything one node enforces beyond its peer list: the
// grants its callers' Access entries point into, its mesh packet filter,
// and the output bounds of the models it serves.
type NodeRules struct {
	Grants []GrantRule  `json:"grants,omitempty"`
	Filter []FilterRule `json:"filter,omitempty"`
	// Models holds the served models whose policy entry sets an output
	// bound; the others (and every model, from an older coordinator) have
	// the policy's defaults.
	Models []ModelRule `json:"models,omitempty"`
	// MCPGrants are the grants the peers' MCPAccess entries point into.
	MCPGrants []GrantRule `json:"mcpGrants,omitempty"`
	// MCPEgress lists, per MCP server the node serves whose policy entry
	// declares any, what it may reach: "HOST:PORT", an IP address or a
	// CIDR network (policy.ParseEgress).
	MCPEgress []MCPEgress `json:"mcpEgress,omitempty"`
}

// ModelRule is what one request of a model may ask for; a zero field
// means the policy's default.
type ModelRule struct {
	Model           string `json:"model"`
	MaxOutputTokens int    `json:"maxOutputTokens,omitempty"` // answer-length cap under grants without maxTokens
	MaxChoices      int    `json:"maxChoices,omitempty"`      // most answers (n, best_of, batched prompts) per request
	// InputPrice and OutputPrice are what a million prompt and answer
	// tokens cost, in micro-units of the policy's currency; 0: free.
	InputPrice  int64 `json:"inputPrice,omitempty"`
	OutputPrice int64 `json:"outputPrice,omitempty"`
	// EncryptedAtRest makes the node refuse the model (503) while its
	// weights file, audit spool or state directory are not on encrypted
	// storage. A node from before ignores it (see Version).
	EncryptedAtRest bool `json:"encryptedAtRest,omitempty"`
}

// GrantRule is one grant as a node enforces it.
type GrantRule struct {
	// ID names the grant in audit records and explanations, e.g.
	// "grants[2]".
	ID string `json:"id"`
	// MFA is the longest time since the caller's last MFA that the grant
	// accepts; 0 means MFA freshness is not checked.
	MFA    Duration   `json:"mfa,omitempty"`
	Limits Limits     `json:"limits,omitzero"`
	Guard  GuardRules `json:"guard,omitzero"`
	Audit  AuditRules `json:"audit,omitzero"`
	// Budgets are the units ("tokens", "money") the policy's budgets may
	// count for callers of the grant; the node leases each for every
	// request (LeaseRequest.Kind). Empty: no budget counts the grant.
	Budgets []string `json:"budgets,omitempty"`

	// MFAFactor is the kind of second factor the grant demands:
	// "phishing-resistant" (amr hwk or swk), "device-bound" (hwk); ""
	// is any.
	MFAFactor string `json:"mfaFactor,omitempty"`
}

// Limits bound what one caller may do under a grant; 0 means no limit.
type Limits struct {
	RPM          int   `json:"rpm,omitempty"`          // requests per minute
	TPM          int   `json:"tpm,omitempty"`          // tokens (in+out) per minute
	Concurrency  int   `json:"concurrency,omitempty"`  // requests in flight at once
	TokensPerDay int64 `json:"tokensPerDay,omitempty"` // tokens (in+out) per UTC day
	MaxTokens    int   `json:"maxTokens,omitempty"`    // cap on a request's answer length; 0: the model's ModelRule.MaxOutputTokens
}

// GuardRules say how the guard screens inputs and outputs; the zero
// value screens nothing.
type GuardRules struct {
	Injection string   `json:"injection,omitempty"` // "", "off", "flag" or "block"
	Redact    []string `json:"redact,omitempty"`    // any of "secrets", "pii"
	Links     string   `json:"links,omitempty"`     // "", "allow" or "block-external"
	// Prompts and Answers override, per category, what the three above
	// imply on that side; "" keeps it.
	Prompts GuardActions `json:"prompts,omitzero"`
	Answers GuardActions `json:"answers,omitzero"`
	// LinkAllow lists hosts, *.domains, IP addresses and CIDR prefixes
	// links may point at without counting as external.
	LinkAllow []string `json:"linkAllow,omitempty"`
	// Detectors are the policy's own screening rules, screened with the
	// actions of their category.
	Detectors []GuardDetector `json:"detectors,omitempty"`
}

// GuardDetector is a screening rule the policy declares: a rule id, a
// bounded Go regular expression, an optional check ("luhn", "mod97",
// "mod11") and a category ("secrets" or "pii").
type GuardDetector struct {
	Name      string `json:"name"`
	Pattern   string `json:"pattern"`
	Validator string `json:"validator,omitempty"`
	Category  string `json:"category"`
}

// GuardActions is, per screening category, "", "off", "flag", "redact"
// or "block".
type GuardActions struct {
	Secrets   string `json:"secrets,omitempty"`
	PII       string `json:"pii,omitempty"`
	Injection string `json:"injection,omitempty"`
	Links     string `json:"links,omitempty"`
}

// AuditRules says what the audit record keeps of a request; the zero
// value keeps metadata only.
type AuditRules struct {
	Prompts   string   `json:"prompts,omitempty"`   // "", "off", "hash" or "full"
	Retention Duration `json:"retention,omitempty"` // 0 = the coordinator's default
}

// ModelAccess says that a caller may use Model on the receiving node under
// the grant at index Grant of its NodeRules.Grants. A caller may have
// several entries for one model, in the order a request tries them.
type ModelAccess struct {
	Model string `json:"model"`
	Grant int    `json:"grant"`
}

// FilterRule lets packets from any of Src reach any of Ports on the node's
// mesh addresses.
type FilterRule struct {
	Src   []netip.Prefix `json:"src"`
	Ports []PortRange    `json:"ports"`
}

// PortRange is an inclusive range of TCP/UDP ports.
type PortRange struct {
	First uint16 `json:"first"`
	Last  uint16 `json:"last"`
}

// Duration is a time.Duration written as Go writes it ("12h0m0s").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; negative durations
// are refused.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return errors.New("negative duration " + string(b))
	}
	*d = Duration(v)
	return nil
}
